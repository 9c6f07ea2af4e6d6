/*
 * bhq-blkio: random block I/O on a guest block device, for the QEMU tier (docs/qemu.md) — a verify pass
 * in the regular tier, IOPS and latency figures for `bulkhead bench qemu`. Built by scripts/qemu/run.mjs
 * (static, against Debian's liburing) into the guest's initramfs as /sbin/bhq-blkio.
 *
 * Why a program of our own and not fio: Debian's fio links 60 shared libraries (84 MB, 36 MB gzipped:
 * Ceph's librados/librbd, GlusterFS, RDMA, ICU, Kerberos, GnuTLS) for engines never used here; in the
 * busybox initramfs that is a ten times larger image that every TCG boot of the tier unpacks and holds in
 * a 512 MiB guest. What is needed is small: O_DIRECT on the raw device, a queue depth kept full with
 * io_uring (liburing, the library the native runtime uses), per-request latency, and a data check that
 * catches lost, stale or misplaced blocks. The figures mean what fio's do: IOPS = requests completed in the
 * timed window (after `ramp` seconds) / its length; latency = submission to completion of one request
 * (fio's slat + clat), percentiles over every request completed in the window.
 *
 *   bhq-blkio run DEV rw=randread|randwrite [bs=4096] [qd=1] [seconds=5] [ramp=1] [span=BYTES] [seed=N] [label=NAME]
 *     BHQ-IOPS <label> <rw> bs=<B> qd=<N> ios=<n> seconds=<s> iops=<x> p50=<us> p99=<us> mean=<us> max=<us>
 *   bhq-blkio verify DEV [qd=32] [blocks=1024] [seed=N]
 *     writes every block of the first `blocks` 4 KiB blocks (random order), reads and checks them all, then
 *     a mixed pass rewrites a random half while reading the other half, and a last pass checks every block
 *     holds its newest generation. Each block carries its number, generation and the seed in a header and
 *     seeded pseudo-random bytes after it.
 *     BHQ-VERIFY ok blocks=<n> qd=<N> ops=<n> reordered=<n>   (reordered: completions that overtook an
 *     earlier submission), or BHQ-VERIFY FAIL <what> and exit status 1
 *   Either prints BHQ-BLKIO FAIL <what> and exits 1 when the device cannot be opened or set up. DEV may be a
 *   regular file (O_DIRECT on the host's file system) to try it out on a host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_QD 256
#define MAX_SAMPLES (1u << 21) /* latency samples kept (8 MiB); more requests than this are counted, not sampled */
#define VERIFY_BS 4096u
#define VERIFY_MAGIC 0x56514842u /* "BHQV" */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void die(const char *what, int err)
{
    printf("BHQ-BLKIO FAIL %s: %s\n", what, strerror(err));
    fflush(stdout);
    exit(1);
}

static const char *arg(int argc, char **argv, const char *key, const char *dflt)
{
    size_t n = strlen(key);
    for (int i = 3; i < argc; i++)
        if (!strncmp(argv[i], key, n) && argv[i][n] == '=') return argv[i] + n + 1;
    return dflt;
}

static uint64_t num(int argc, char **argv, const char *key, uint64_t dflt)
{
    const char *v = arg(argc, argv, key, NULL);
    if (!v) return dflt;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || *end || end == v) {
        fprintf(stderr, "bhq-blkio: %s=%s is not a number\n", key, v);
        exit(2);
    }
    return x;
}

static int open_dev(const char *dev, uint64_t *size)
{
    int fd = open(dev, O_RDWR | O_DIRECT);
    if (fd < 0) die(dev, errno);
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat", errno);
    if (S_ISREG(st.st_mode)) *size = (uint64_t)st.st_size; /* a file: for trying it out on a host */
    else if (ioctl(fd, BLKGETSIZE64, size) < 0) die("BLKGETSIZE64", errno);
    return fd;
}

static void *aligned(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, n)) die("posix_memalign", ENOMEM);
    memset(p, 0, n);
    return p;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ run: IOPS and latency */

struct run {
    struct io_uring ring;
    int fd, write;
    unsigned bs;
    uint64_t nblocks, seed;
    uint8_t *buf;
    uint64_t t_sub[MAX_QD];
};

/* slot `s` starts a request at a random block */
static void start_one(struct run *R, unsigned s)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&R->ring);
    uint64_t off = (rnd(&R->seed) % R->nblocks) * R->bs;
    if (R->write) io_uring_prep_write(sqe, R->fd, R->buf + (size_t)s * R->bs, R->bs, off);
    else io_uring_prep_read(sqe, R->fd, R->buf + (size_t)s * R->bs, R->bs, off);
    io_uring_sqe_set_data64(sqe, s);
    R->t_sub[s] = now_ns();
}

static int cmd_run(int argc, char **argv)
{
    const char *rw = arg(argc, argv, "rw", "randread");
    int write = !strcmp(rw, "randwrite");
    if (!write && strcmp(rw, "randread")) {
        fprintf(stderr, "bhq-blkio: rw must be randread or randwrite\n");
        return 2;
    }
    unsigned bs = (unsigned)num(argc, argv, "bs", 4096), qd = (unsigned)num(argc, argv, "qd", 1);
    double seconds = (double)num(argc, argv, "seconds", 5), ramp = (double)num(argc, argv, "ramp", 1);
    uint64_t seed = num(argc, argv, "seed", 1) | 1;
    const char *label = arg(argc, argv, "label", argv[2]);
    if (!bs || bs % 512 || bs > (1u << 20) || !qd || qd > MAX_QD || seconds <= 0) {
        fprintf(stderr, "bhq-blkio: bs must be a multiple of 512 up to 1 MiB, qd 1..%d, seconds > 0\n", MAX_QD);
        return 2;
    }
    static struct run R;
    uint64_t size;
    R.fd = open_dev(argv[2], &size);
    R.write = write;
    R.bs = bs;
    R.seed = seed;
    uint64_t span = num(argc, argv, "span", size);
    if (span > size) span = size;
    R.nblocks = span / bs;
    if (!R.nblocks) die("span smaller than one block", EINVAL);

    int r = io_uring_queue_init(qd, &R.ring, 0);
    if (r < 0) die("io_uring_queue_init", -r);
    R.buf = aligned((size_t)qd * bs);
    if (write)
        for (size_t i = 0; i < (size_t)qd * bs; i += 8) {
            uint64_t x = rnd(&R.seed);
            memcpy(R.buf + i, &x, 8);
        }
    uint32_t *lat = malloc(MAX_SAMPLES * sizeof *lat);
    if (!lat) die("malloc", ENOMEM);

    uint64_t start = now_ns();
    uint64_t t_from = start + (uint64_t)(ramp * 1e9), t_to = t_from + (uint64_t)(seconds * 1e9);
    unsigned inflight = 0;
    uint64_t ios = 0, sampled = 0, sum = 0, max = 0;
    for (unsigned s = 0; s < qd; s++, inflight++) start_one(&R, s);
    io_uring_submit(&R.ring);
    while (inflight) {
        struct io_uring_cqe *cqe;
        r = io_uring_wait_cqe(&R.ring, &cqe);
        if (r < 0) die("io_uring_wait_cqe", -r);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&R.ring, head, cqe) {
            unsigned s = (unsigned)io_uring_cqe_get_data64(cqe);
            uint64_t t = now_ns();
            seen++;
            if (cqe->res != (int)bs) {
                printf("BHQ-IOPS %s FAIL %s at slot %u: result %d (%s)\n", label, rw, s, cqe->res, cqe->res < 0 ? strerror(-cqe->res) : "short");
                return 1;
            }
            if (t >= t_from && t <= t_to) {
                uint64_t l = t - R.t_sub[s];
                ios++;
                sum += l;
                if (l > max) max = l;
                if (sampled < MAX_SAMPLES) lat[sampled++] = l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
            }
            if (t < t_to) start_one(&R, s);
            else inflight--;
        }
        io_uring_cq_advance(&R.ring, seen);
        if (inflight) io_uring_submit(&R.ring);
    }
    if (!sampled) die("no request completed in the timed window", EIO);
    qsort(lat, sampled, sizeof *lat, cmp_u32);
    double p50 = lat[(sampled - 1) / 2] / 1e3, p99 = lat[(size_t)((sampled - 1) * 0.99)] / 1e3;
    printf("BHQ-IOPS %s %s bs=%u qd=%u ios=%llu seconds=%.3f iops=%.1f p50=%.1f p99=%.1f mean=%.1f max=%.1f\n", label, rw, bs, qd,
           (unsigned long long)ios, seconds, ios / seconds, p50, p99, (double)sum / ios / 1e3, max / 1e3);
    io_uring_queue_exit(&R.ring);
    close(R.fd);
    return 0;
}

/* ------------------------------------------------------------------ verify: every block holds what was written */

struct op {
    uint32_t block;
    uint32_t gen;  /* written (write) or expected (read) generation */
    int write;
};

static void fill_block(uint8_t *p, uint32_t block, uint32_t gen, uint32_t seed)
{
    uint32_t h[4] = { VERIFY_MAGIC, block, gen, seed };
    memcpy(p, h, sizeof h);
    uint64_t s = ((uint64_t)seed << 32 | block) ^ ((uint64_t)gen * 0x9E3779B97F4A7C15ull) ^ 0xB5AD4ECEDA1CE2A9ull;
    if (!s) s = 1;
    for (unsigned i = sizeof h; i < VERIFY_BS; i += 8) {
        uint64_t x = rnd(&s);
        memcpy(p + i, &x, 8);
    }
}

/* Runs `ops` at queue depth `qd` (no two on the same block in flight: each block appears once), checking
 * every read against the block it should hold. Returns completions that overtook an earlier submission. */
static uint64_t run_ops(struct io_uring *ring, int fd, const struct op *ops, unsigned nops, unsigned qd, uint32_t seed, const char *phase)
{
    static uint8_t *buf, *want;
    if (!buf) {
        buf = aligned((size_t)MAX_QD * VERIFY_BS);
        want = aligned(VERIFY_BS);
    }
    unsigned slot_op[MAX_QD], next = 0, inflight = 0;
    uint64_t slot_seq[MAX_QD], done_max = 0, reordered = 0;
    unsigned free_slots[MAX_QD], nfree = qd;
    for (unsigned i = 0; i < qd; i++) free_slots[i] = qd - 1 - i;
    while (next < nops || inflight) {
        while (next < nops && nfree) {
            unsigned s = free_slots[--nfree];
            const struct op *o = &ops[next];
            struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
            uint8_t *b = buf + (size_t)s * VERIFY_BS;
            if (o->write) {
                fill_block(b, o->block, o->gen, seed);
                io_uring_prep_write(sqe, fd, b, VERIFY_BS, (uint64_t)o->block * VERIFY_BS);
            } else {
                memset(b, 0xa5, VERIFY_BS);
                io_uring_prep_read(sqe, fd, b, VERIFY_BS, (uint64_t)o->block * VERIFY_BS);
            }
            io_uring_sqe_set_data64(sqe, s);
            slot_op[s] = next;
            slot_seq[s] = ++next;
            inflight++;
        }
        int r = io_uring_submit_and_wait(ring, 1);
        if (r < 0) die("io_uring_submit_and_wait", -r);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            unsigned s = (unsigned)io_uring_cqe_get_data64(cqe);
            const struct op *o = &ops[slot_op[s]];
            seen++;
            if (cqe->res != (int)VERIFY_BS) {
                printf("BHQ-VERIFY FAIL %s: %s of block %u returned %d (%s)\n", phase, o->write ? "write" : "read", o->block, cqe->res,
                       cqe->res < 0 ? strerror(-cqe->res) : "short");
                exit(1);
            }
            if (slot_seq[s] < done_max) reordered++;
            else done_max = slot_seq[s];
            if (!o->write) {
                const uint8_t *b = buf + (size_t)s * VERIFY_BS;
                fill_block(want, o->block, o->gen, seed);
                if (memcmp(b, want, VERIFY_BS)) {
                    uint32_t h[4];
                    unsigned first = 0;
                    memcpy(h, b, sizeof h);
                    while (first < VERIFY_BS && b[first] == want[first]) first++;
                    printf("BHQ-VERIFY FAIL %s: block %u (offset %llu) differs from byte %u: expected generation %u, found header magic %#x block %u generation %u seed %u\n",
                           phase, o->block, (unsigned long long)o->block * VERIFY_BS, first, o->gen, h[0], h[1], h[2], h[3]);
                    exit(1);
                }
            }
            free_slots[nfree++] = s;
            inflight--;
        }
        io_uring_cq_advance(ring, seen);
    }
    return reordered;
}

static void shuffle(struct op *ops, unsigned n, uint64_t *s)
{
    for (unsigned i = n - 1; i > 0; i--) {
        unsigned j = (unsigned)(rnd(s) % (i + 1));
        struct op t = ops[i];
        ops[i] = ops[j];
        ops[j] = t;
    }
}

static int cmd_verify(int argc, char **argv)
{
    unsigned qd = (unsigned)num(argc, argv, "qd", 32), blocks = (unsigned)num(argc, argv, "blocks", 1024);
    uint32_t seed = (uint32_t)num(argc, argv, "seed", 1);
    if (!qd || qd > MAX_QD || !blocks || blocks > (1u << 20)) {
        fprintf(stderr, "bhq-blkio: qd 1..%d, blocks 1..2^20\n", MAX_QD);
        return 2;
    }
    uint64_t size;
    int fd = open_dev(argv[2], &size);
    if ((uint64_t)blocks * VERIFY_BS > size) die("blocks beyond the device's end", ENOSPC);
    struct io_uring ring;
    int r = io_uring_queue_init(qd, &ring, 0);
    if (r < 0) die("io_uring_queue_init", -r);
    struct op *ops = calloc(blocks, sizeof *ops);
    uint32_t *gen = calloc(blocks, sizeof *gen);
    if (!ops || !gen) die("calloc", ENOMEM);
    uint64_t s = ((uint64_t)seed << 1) | 1, reordered = 0, nops = 0;

    for (unsigned b = 0; b < blocks; b++) ops[b] = (struct op){ b, gen[b] = 1, 1 };
    shuffle(ops, blocks, &s);
    reordered += run_ops(&ring, fd, ops, blocks, qd, seed, "write pass");
    for (unsigned b = 0; b < blocks; b++) ops[b] = (struct op){ b, gen[b], 0 };
    shuffle(ops, blocks, &s);
    reordered += run_ops(&ring, fd, ops, blocks, qd, seed, "read pass");
    for (unsigned b = 0; b < blocks; b++) {
        int w = (int)(rnd(&s) & 1);
        if (w) gen[b]++;
        ops[b] = (struct op){ b, gen[b], w };
    }
    shuffle(ops, blocks, &s);
    reordered += run_ops(&ring, fd, ops, blocks, qd, seed, "mixed pass");
    for (unsigned b = 0; b < blocks; b++) ops[b] = (struct op){ b, gen[b], 0 };
    shuffle(ops, blocks, &s);
    reordered += run_ops(&ring, fd, ops, blocks, qd, seed, "final read pass");
    nops = 4ull * blocks;
    printf("BHQ-VERIFY ok blocks=%u qd=%u ops=%llu reordered=%llu\n", blocks, qd, (unsigned long long)nops, (unsigned long long)reordered);
    io_uring_queue_exit(&ring);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "run")) return cmd_run(argc, argv);
    if (argc >= 3 && !strcmp(argv[1], "verify")) return cmd_verify(argc, argv);
    fprintf(stderr, "usage: bhq-blkio run DEV rw=randread|randwrite [bs=4096] [qd=1] [seconds=5] [ramp=1] [span=BYTES] [seed=N] [label=NAME]\n"
                    "       bhq-blkio verify DEV [qd=32] [blocks=1024] [seed=N]\n");
    return 2;
}
