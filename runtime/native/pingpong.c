/*
 * bulkhead-pingpong: baselines for the native doorbell benchmarks (runtime/native/bench.mjs).
 *
 *   bulkhead-pingpong eventfd N [A B] two processes ping-pong N times over a pair of eventfds;
 *                                    prints the mean round trip in nanoseconds (the floor); with
 *                                    A B the parent runs on CPU A and the child on CPU B (A = B:
 *                                    one core switching between them; A != B: a wake-up across cores)
 *   bulkhead-pingpong echo SOCKET    an ivshmem peer without JS: every doorbell it gets is rung
 *                                    straight back to every other peer (the frontend's path, minus
 *                                    QuickJS and the FIFO)
 */
#include <errno.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ivshmem-client.h"

static void bounce(int in, int out, long n)
{
    uint64_t v = 1;
    for (long i = 0; i < n; i++) {
        if (read(in, &v, 8) != 8) _exit(1);
        if (write(out, &v, 8) != 8) _exit(1);
    }
}

static void pin_cpu(int cpu)
{
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) { fprintf(stderr, "sched_setaffinity %d: %s\n", cpu, strerror(errno)); exit(1); }
}

static int eventfd_pingpong(long n, int cpu_parent, int cpu_child)
{
    int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
    pid_t child = fork();
    if (child == 0) { pin_cpu(cpu_child); bounce(a, b, n); _exit(0); }
    pin_cpu(cpu_parent);
    uint64_t v = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (write(a, &v, 8) != 8 || read(b, &v, 8) != 8) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waitpid(child, NULL, 0);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n;
    printf("%.0f\n", ns);
    return 0;
}

static int echo(const char *sock)
{
    static struct ivs_client c;
    const char *why = "";
    int r = ivs_connect(&c, sock, &why);
    if (r < 0 || c.my_nvec < 1) { fprintf(stderr, "echo: %s: %s\n", why, strerror(-r)); return 1; }
    fprintf(stderr, "echo: peer %d ready\n", c.my_id);
    for (;;) {
        struct pollfd p[2] = { { c.my_efd[0], POLLIN, 0 }, { c.sock, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0 && errno != EINTR) return 1;
        if ((p[1].revents & (POLLIN | POLLHUP)) && ivs_process(&c) < 0) return 0;
        if ((p[0].revents & POLLIN) && ivs_drain(&c, 0)) ivs_ring(&c, -1, 0);
    }
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && !strcmp(argv[1], "eventfd")) return eventfd_pingpong(atol(argv[2]), -1, -1);
    if (argc == 5 && !strcmp(argv[1], "eventfd")) return eventfd_pingpong(atol(argv[2]), atoi(argv[3]), atoi(argv[4]));
    if (argc == 3 && !strcmp(argv[1], "echo")) return echo(argv[2]);
    fprintf(stderr, "usage: bulkhead-pingpong eventfd N [CPU_PARENT CPU_CHILD] | echo SOCKET\n");
    return 2;
}
