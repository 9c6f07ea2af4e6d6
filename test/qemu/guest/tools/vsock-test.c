/*
 * vsock-test: the QEMU tier's guest end of virtio-vsock (busybox has no AF_VSOCK). Built static by
 * scripts/qemu/run.mjs into the initramfs; written here rather than taken from a package because no
 * Debian package ships a small static vsock echo/verify tool.
 *
 *   vsock-test client PORT BYTES SEED   connect to the host (CID 2) port PORT, send BYTES of the PRNG
 *                                       stream SEED while reading the echo back and checking every byte
 *   vsock-test server PORT BYTES SEED   listen on guest port PORT, accept one connection, check BYTES of
 *                                       the PRNG stream SEED as they arrive and echo them back
 *   vsock-test hold PORT BYTES SEED     connect to the host port PORT, send BYTES of the stream, read them
 *                                       back, then wait for the connection to end; prints
 *                                       "vsock-test HOLD-END <errno name or EOF>" (a backend restart
 *                                       must end it with ECONNRESET, not leave it hanging)
 *
 * The stream is the one scripts/qemu/run.mjs and test/vsock/_vsock.ts generate: byte i is byte i % 4 of
 * xorshift32(seed ^ (i / 4 + 1) * 0x9e3779b1). Both ends stop reading now and then (PAUSE_EVERY bytes,
 * PAUSE_MS), so the other side's credit runs out on the way; a lost, duplicated or reordered byte is
 * reported with its offset. Prints one line: "vsock-test OK <mode> <bytes> <seconds> <MB/s> <pauses>"
 * or "vsock-test FAIL <why>" (exit 1).
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>

#define CHUNK 65536
#define PAUSE_EVERY (8u << 20)
#define PAUSE_MS 150

static uint32_t seed;

static uint8_t stream_byte(uint64_t i)
{
    uint32_t x = seed ^ (uint32_t)((uint32_t)(i / 4 + 1) * 0x9e3779b1u);
    if (!x) x = 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return (uint8_t)(x >> (8 * (i % 4)));
}

static void fill(uint8_t *b, uint64_t from, size_t n)
{
    for (size_t k = 0; k < n; k++) b[k] = stream_byte(from + k);
}

static int check(const uint8_t *b, uint64_t from, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (b[k] != stream_byte(from + k)) {
            printf("vsock-test FAIL byte %llu is 0x%02x, the stream has 0x%02x\n", (unsigned long long)(from + k), b[k], stream_byte(from + k));
            return -1;
        }
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int fail(const char *what)
{
    printf("vsock-test FAIL %s: %s\n", what, strerror(errno));
    return 1;
}

/*
 * Sends `total` stream bytes (client) and/or receives them: `echo` receives what arrives and sends it
 * back (server); otherwise it sends the stream and checks what comes back (client). One poll loop,
 * non-blocking socket.
 */
static int pump(int fd, uint64_t total, int echo, const char *mode)
{
    static uint8_t out[CHUNK], in[CHUNK];
    uint64_t sent = 0, got = 0, next_pause = PAUSE_EVERY;
    size_t out_len = 0, out_pos = 0;
    unsigned pauses = 0;
    double t0 = now();
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (got < total || sent < total) {
        if (out_pos == out_len && sent < total && !echo) {
            out_len = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
            fill(out, sent, out_len);
            out_pos = 0;
        }
        /* An echo holds what it read until it went out again (one buffer): it reads only when that is empty. */
        bool can_read = got < total && (!echo || out_pos == out_len);
        struct pollfd p = { .fd = fd, .events = (out_pos < out_len ? POLLOUT : 0) | (can_read ? POLLIN : 0) };
        if (poll(&p, 1, 60000) <= 0) {
            printf("vsock-test FAIL %s: stalled 60 s at sent %llu, received %llu\n", mode, (unsigned long long)sent, (unsigned long long)got);
            return 1;
        }
        if (p.revents & (POLLERR | POLLNVAL)) { errno = ECONNRESET; return fail(mode); }
        if ((p.revents & POLLOUT) && out_pos < out_len) {
            ssize_t n = write(fd, out + out_pos, out_len - out_pos);
            if (n < 0 && errno != EAGAIN) return fail("write");
            if (n > 0) { out_pos += (size_t)n; sent += (uint64_t)n; }
        }
        if ((p.revents & (POLLIN | POLLHUP)) && can_read) {
            ssize_t n = read(fd, in, sizeof in);
            if (n < 0 && errno != EAGAIN) return fail("read");
            if (n == 0) {
                printf("vsock-test FAIL %s: EOF after %llu of %llu bytes\n", mode, (unsigned long long)got, (unsigned long long)total);
                return 1;
            }
            if (n > 0) {
                if (check(in, got, (size_t)n)) return 1;
                if (echo) { memcpy(out, in, (size_t)n); out_pos = 0; out_len = (size_t)n; }
                got += (uint64_t)n;
                if (got >= next_pause && got < total) { /* stop reading for a while: the peer's credit runs out */
                    next_pause += PAUSE_EVERY;
                    pauses++;
                    usleep(PAUSE_MS * 1000);
                }
            }
        }
    }
    double s = now() - t0;
    printf("vsock-test OK %s %llu %.2f %.1f %u\n", mode, (unsigned long long)total, s, total / s / 1e6, pauses);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: vsock-test client|server|hold PORT BYTES SEED\n");
        return 2;
    }
    unsigned port = (unsigned)strtoul(argv[2], NULL, 10);
    uint64_t total = strtoull(argv[3], NULL, 10);
    seed = (uint32_t)strtoul(argv[4], NULL, 10);
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) return fail("socket(AF_VSOCK)");
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_port = port };
    if (!strcmp(argv[1], "client")) {
        a.svm_cid = VMADDR_CID_HOST;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
        int r = pump(fd, total, 0, "client");
        shutdown(fd, SHUT_RDWR);
        close(fd);
        return r;
    }
    if (!strcmp(argv[1], "hold")) {
        a.svm_cid = VMADDR_CID_HOST;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
        if (pump(fd, total, 0, "hold")) return 1;
        fflush(stdout);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        uint8_t b;
        ssize_t n = read(fd, &b, 1);
        int e = errno;
        printf("vsock-test HOLD-END %s\n", n == 0 ? "EOF" : n > 0 ? "DATA" : e == ECONNRESET ? "ECONNRESET" : strerror(e));
        return n < 0 && e == ECONNRESET ? 0 : 1;
    }
    if (!strcmp(argv[1], "server")) {
        a.svm_cid = VMADDR_CID_ANY;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return fail("bind");
        if (listen(fd, 1) < 0) return fail("listen");
        printf("vsock-test listening on %u\n", port);
        fflush(stdout);
        int c = accept(fd, NULL, NULL);
        if (c < 0) return fail("accept");
        int r = pump(c, total, 1, "server");
        close(c);
        close(fd);
        return r;
    }
    fprintf(stderr, "usage: vsock-test client|server|hold PORT BYTES SEED\n");
    return 2;
}
