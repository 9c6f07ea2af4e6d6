/*
 * bulkhead-ivshmem-server: the server side of QEMU's ivshmem protocol (Debian ships no server).
 * QEMU's ivshmem-doorbell device (-chardev socket,path=SOCKET) and bulkhead-fw --ivshmem SOCKET
 * attach to it as peers; it hands each peer the shared memory and everybody's doorbell eventfds.
 *
 *   bulkhead-ivshmem-server -S SOCKET -M SHM_NAME -l SIZE [-n VECTORS] [-F] [-p PIDFILE] [-v]
 *
 * Flags follow QEMU's contrib/ivshmem-server. Protocol (docs/specs/ivshmem-spec.txt): every message
 * is one little-endian int64, optionally with one fd (SCM_RIGHTS). On connect: version 0, the peer's
 * id, -1 + shm fd, every existing peer's vectors (id + eventfd, N times each), then the new peer's
 * own vectors; the existing peers get the new peer's vectors. On disconnect: the id without fd.
 *
 * Robustness: a peer that disconnects, sends garbage, or stops reading (its socket buffer full) is
 * dropped; the server goes on. Sends never block. Peers are bounded (MAX_PEERS).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_PEERS 64
#define MAX_VECTORS 64

struct peer {
    int sock;   /* -1: free slot */
    int id;
    int efd[MAX_VECTORS];
};

static struct peer peers[MAX_PEERS];
static int nvec = 1, verbose, listen_fd = -1, shm_fd = -1;
static const char *sock_path, *shm_name, *pid_path;
static volatile sig_atomic_t quit;

static void logf_(const char *fmt, ...)
{
    if (!verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ivshmem-server: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bulkhead-ivshmem-server: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* One message, never blocking: a peer whose buffer is full is treated as broken. */
static int send_msg(int sock, int64_t v, int fd)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)v >> (8 * i));
    struct iovec iov = { b, 8 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&cm, 0, sizeof cm);
        mh.msg_control = cm.buf;
        mh.msg_controllen = sizeof cm.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 8 ? 0 : -1;
}

static void peer_free(struct peer *p)
{
    close(p->sock);
    for (int v = 0; v < nvec; v++) close(p->efd[v]);
    p->sock = -1;
}

static void peer_remove(struct peer *p);

/* Tells every other peer about p (joined: its vectors; left: its id alone). A peer that cannot take
 * the message is removed in turn (bounded: each removal frees a slot). */
static void announce(struct peer *p, bool joined)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *q = &peers[i];
        if (q->sock < 0 || q == p) continue;
        int bad = 0;
        if (joined)
            for (int v = 0; v < nvec && !bad; v++) bad = send_msg(q->sock, p->id, p->efd[v]);
        else
            bad = send_msg(q->sock, p->id, -1);
        if (bad) {
            logf_("peer %d does not take messages: dropping it", q->id);
            peer_remove(q);
        }
    }
}

static void peer_remove(struct peer *p)
{
    if (p->sock < 0) return;
    int id = p->id;
    peer_free(p);
    logf_("peer %d left", id);
    p->id = id;          /* announce needs the id; the slot is already free */
    announce(p, false);
}

static bool id_in_use(int id)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (peers[i].sock >= 0 && peers[i].id == id) return true;
    return false;
}

static void accept_peer(void)
{
    static int next_id;
    int s = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (s < 0) return;
    struct peer *p = NULL;
    for (int i = 0; i < MAX_PEERS && !p; i++)
        if (peers[i].sock < 0) p = &peers[i];
    if (!p) { logf_("too many peers: refusing one"); close(s); return; }
    int id = next_id;
    for (int tries = 0; id_in_use(id) && tries < 65536; tries++) id = (id + 1) & 0xFFFF;
    next_id = (id + 1) & 0xFFFF;
    p->id = id;
    for (int v = 0; v < nvec; v++) {
        p->efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd[v] < 0) {
            while (v--) close(p->efd[v]);
            close(s);
            logf_("eventfd: %s", strerror(errno));
            return;
        }
    }
    p->sock = s;
    int bad = send_msg(s, 0, -1) || send_msg(s, id, -1) || send_msg(s, -1, shm_fd);
    for (int i = 0; i < MAX_PEERS && !bad; i++) {
        struct peer *q = &peers[i];
        if (q->sock < 0 || q == p) continue;
        for (int v = 0; v < nvec && !bad; v++) bad = send_msg(s, q->id, q->efd[v]);
    }
    for (int v = 0; v < nvec && !bad; v++) bad = send_msg(s, id, p->efd[v]);
    if (bad) {
        logf_("new peer %d failed the handshake", id);
        peer_free(p);
        return;
    }
    logf_("peer %d joined", id);
    announce(p, true);
}

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    case 0: break;
    default: die("bad size %s", s);
    }
    if (v < 4096) die("size %s is too small", s);
    return (size_t)v;
}

static void on_signal(int sig) { quit = 1; }

static void cleanup(void)
{
    if (sock_path) unlink(sock_path);
    if (shm_name) shm_unlink(shm_name);
    if (pid_path) unlink(pid_path);
}

static const char usage[] =
    "usage: bulkhead-ivshmem-server -S SOCKET -M SHM_NAME -l SIZE [-n VECTORS] [-F] [-p PIDFILE] [-v]\n"
    "  -S SOCKET   unix socket path peers connect to (QEMU: -chardev socket,path=SOCKET)\n"
    "  -M NAME     POSIX shared memory object (/dev/shm/NAME), created, removed on exit\n"
    "  -l SIZE     shared memory size, K/M/G suffixes (default 4M)\n"
    "  -n VECTORS  doorbell vectors per peer (default 1)\n"
    "  -F          stay in the foreground   -p PIDFILE  write our pid   -v  log peers to stderr\n";

int main(int argc, char **argv)
{
    size_t size = 4 << 20;
    bool foreground = false;
    int c;
    while ((c = getopt(argc, argv, "S:M:m:l:n:Fp:vh")) != -1) {
        switch (c) {
        case 'S': sock_path = optarg; break;
        case 'M': shm_name = optarg; break;
        case 'm': die("-m (hugetlbfs directory) is not supported; use -M");
        case 'l': size = parse_size(optarg); break;
        case 'n': nvec = atoi(optarg); break;
        case 'F': foreground = true; break;
        case 'p': pid_path = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!sock_path || !shm_name) { fputs(usage, stderr); return 2; }
    if (nvec < 1 || nvec > MAX_VECTORS) die("-n must be 1..%d", MAX_VECTORS);
    for (int i = 0; i < MAX_PEERS; i++) peers[i].sock = -1;

    char shm_path[256];
    snprintf(shm_path, sizeof shm_path, "%s%s", shm_name[0] == '/' ? "" : "/", shm_name);
    /* Before anything is created: a unix socket path has at most 107 bytes (sun_path). */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock_path) + 1 >= sizeof sa.sun_path) /* + 1: the temporary name it is bound under first */
        die("socket path too long: %s is %zu bytes, the server takes at most %zu (use a shorter folder)", sock_path, strlen(sock_path), sizeof sa.sun_path - 2);
    shm_name = strdup(shm_path);
    shm_fd = shm_open(shm_name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (shm_fd < 0) die("shm_open %s: %s", shm_name, strerror(errno));
    if (ftruncate(shm_fd, size) < 0) die("ftruncate %s: %s", shm_name, strerror(errno));

    /* Bound under a temporary name and renamed into place once it listens: whoever sees the path can
     * connect (a peer that polls for the file never meets ECONNREFUSED between bind and listen). */
    char tmp_path[sizeof sa.sun_path];
    snprintf(tmp_path, sizeof tmp_path, "%s~", sock_path);
    strcpy(sa.sun_path, tmp_path);
    unlink(tmp_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(listen_fd, 16) < 0 || rename(tmp_path, sock_path) < 0)
        die("listen on %s: %s", sock_path, strerror(errno));

    if (!foreground) {
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid > 0) _exit(0);
        setsid();
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); if (!verbose) dup2(nul, 2); close(nul); }
    }
    if (pid_path) {
        FILE *f = fopen(pid_path, "w");
        if (!f) die("pidfile %s: %s", pid_path, strerror(errno));
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction act = { .sa_handler = on_signal };
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    logf_("listening on %s, shm %s (%zu bytes), %d vector(s)", sock_path, shm_name, size, nvec);

    while (!quit) {
        struct pollfd pfd[MAX_PEERS + 1];
        struct peer *who[MAX_PEERS + 1];
        int n = 0;
        pfd[n] = (struct pollfd){ listen_fd, POLLIN, 0 };
        who[n++] = NULL;
        for (int i = 0; i < MAX_PEERS; i++)
            if (peers[i].sock >= 0) { pfd[n] = (struct pollfd){ peers[i].sock, POLLIN, 0 }; who[n++] = &peers[i]; }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll: %s", strerror(errno));
        }
        for (int i = 1; i < n; i++) {
            if (!pfd[i].revents || who[i]->sock != pfd[i].fd) continue;
            /* Peers never talk to the server: anything but EAGAIN ends the peer (EOF, error, data). */
            char junk[64];
            ssize_t r = recv(pfd[i].fd, junk, sizeof junk, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r > 0) logf_("peer %d sent data: dropping it", who[i]->id);
            peer_remove(who[i]);
        }
        if (pfd[0].revents & POLLIN) accept_peer();
    }
    logf_("exiting");
    return 0;
}
