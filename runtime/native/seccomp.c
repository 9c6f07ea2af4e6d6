/*
 * The syscall allowlist, installed once boot is over (every fd is open, the bundle has run
 * start()). A hand-written classic-BPF filter, no libseccomp: it is short enough to read.
 *
 * Allowed: what the event loop and QuickJS's allocator need, and nothing that opens or creates a file
 * or reaches beyond unix sockets (no open*, execve, fork/clone, kill, ptrace, ioctl):
 *   I/O on fds we hold     read write pread64 pwrite64 preadv pwritev recvmsg close fdatasync fallocate accept4 shutdown
 *   asynchronous storage   io_uring_enter (the rings are restricted to read/write/fsync on their image,
 *                          storage-aio.c), futex (the thread pool's locks; no other thread exists)
 *   vsock to the host      socket(AF_UNIX) connect: a guest connection to host port P connects to the
 *                          unix socket "<uds>_P" (vsock.c builds the path from the board's uds; the
 *                          firmware only gives the number). Any other socket family is refused.
 *   loop                   epoll_wait/epoll_pwait epoll_ctl timerfd_settime
 *   time, entropy          clock_gettime gettimeofday getrandom
 *   memory                 brk mmap munmap mremap madvise mprotect (mmap/mprotect never with PROT_EXEC)
 *   exit, signals          exit exit_group rt_sigreturn rt_sigprocmask
 *   libc                   fstat newfstatat (stdio may stat a stream once)
 * Anything else raises SIGSYS; the handler names the syscall on stderr and exits 159 (128+SIGSYS),
 * so a missing entry is diagnosable rather than silent. Foreign ABIs (x32, a wrong audit arch) are
 * killed outright. The filter is installed with SECCOMP_FILTER_FLAG_TSYNC: it covers every thread of
 * the process (the storage thread pool's workers, started at boot), not only the caller.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "bh.h"

#if defined(__x86_64__)
#define BH_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define BH_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp filter: unsupported architecture"
#endif

static const int allowed[] = {
    SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_preadv, SYS_pwritev, SYS_recvmsg, SYS_close, SYS_fdatasync,
    SYS_fallocate, SYS_accept4, SYS_io_uring_enter, SYS_futex, SYS_shutdown, SYS_connect,
#ifdef SYS_epoll_wait
    SYS_epoll_wait,
#endif
    SYS_epoll_pwait, SYS_epoll_ctl, SYS_timerfd_settime,
    SYS_clock_gettime, SYS_gettimeofday, SYS_getrandom,
    SYS_brk, SYS_munmap, SYS_mremap, SYS_madvise,
    SYS_exit, SYS_exit_group, SYS_rt_sigreturn, SYS_rt_sigprocmask,
    SYS_fstat, SYS_newfstatat,
};

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    /* Async-signal-safe only: format by hand, write, _exit. */
    char msg[80] = "bulkhead-fw: seccomp: forbidden syscall ";
    size_t n = strlen(msg);
    int nr = si->si_syscall;
    char digits[12];
    int d = 0;
    if (nr < 0) nr = -nr;
    do digits[d++] = '0' + nr % 10; while ((nr /= 10) && d < 11);
    while (d) msg[n++] = digits[--d];
    msg[n++] = '\n';
    ssize_t r = write(2, msg, n);
    (void)r;
    _exit(128 + SIGSYS);
}

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))
#define NALLOWED (sizeof allowed / sizeof allowed[0])

/* Drops every capability of this thread (a root-started firmware keeps none). Harmless when already unprivileged. */
void bh_drop_capabilities(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) < 0) bh_log(BH_LOG_DEBUG, "capset: %s", strerror(errno));
}

int bh_seccomp_install(void)
{
    struct sock_filter f[8 + 2 * NALLOWED + 16];
    size_t n = 0;
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, BH_AUDIT_ARCH, 1, 0);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
    f[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1); /* x32 ABI */
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
    for (size_t i = 0; i < NALLOWED; i++) {
        f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)allowed[i], 0, 1);
        f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    /* socket: AF_UNIX only (args[0], low word). */
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)); /* reload for the next test */
    /* mmap and mprotect: allowed unless the protection asks for PROT_EXEC (args[2], low word). */
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mmap, 1, 0);
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]));
    f[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);

    struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSYS, &sa, NULL);
    bh_drop_capabilities();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
    /* TSYNC: every thread gets the filter (and no_new_privs), or none does (the call fails). */
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (r != 0) return r < 0 ? -errno : -ESRCH;
    return 0;
}
