/*
 * Asynchronous storage (docs/hal.md "storageSubmit", docs/native.md "Asynchronous storage"): requests are
 * submitted from the event loop, run in the kernel (io_uring) or on a small thread pool, and complete
 * back into the loop through an eventfd, which makes the loop call bulkhead.onService(h).
 *
 *   io_uring     through Debian's liburing. The ring is created disabled, the image fd registered as
 *                fixed file 0, and restricted (IORING_REGISTER_RESTRICTIONS) to READ/WRITE/READV/
 *                WRITEV/FSYNC on fixed files with no register op after: a compromised firmware that
 *                could reach io_uring_enter still cannot open, connect or touch another fd with it,
 *                so allowing io_uring_enter in the seccomp filter does not widen it.
 *   thread pool  where io_uring is refused (ENOSYS: old kernel or qemu-user; EPERM: seccomp of a
 *                container or kernel.io_uring_disabled) or forced (--aio threads, BULKHEAD_AIO=threads):
 *                BH_AIO_THREADS workers doing preadv/pwritev/fdatasync, created at open, before
 *                seccomp, which is installed with TSYNC so it covers them too.
 *   inline       an image on a memory file system (tmpfs, ramfs: `memory`): its reads and writes never
 *                wait for a device, and such a file takes no non-blocking I/O (RWF_NOWAIT), so io_uring
 *                would hand every request to an io-wq worker thread — a thread hop per request that costs
 *                more than the copy. They run at submit, in the loop's thread, and complete through the
 *                same done FIFO in the same loop turn (the firmware still sees an asynchronous service).
 *                `--aio uring` / `threads` put such an image on io_uring / the pool all the same.
 *
 * Written here rather than taken from a library because it is this project's own glue: liburing does
 * the ring, libc the threads; what is ours is the request table, cancel-and-wait and the bounce.
 *
 * Every request is one slot of a table of BH_AIO_DEPTH, found by the firmware's tag. Its life: FREE →
 * QUEUED (an SQE prepared or a job queued, not yet running) → RUNNING → DONE (result known, in the done
 * FIFO) → FREE when bh_aio_complete hands it to the firmware. Each slot reaches DONE exactly once, so
 * each request completes once. bh_aio_cancel(tag) returns only when the request can no longer touch the
 * window: a job that had not started is dropped (-ECANCELED), anything running is waited for.
 *
 * O_DIRECT: a request whose window segments are not aligned (address to the DIO memory alignment,
 * length to the logical block size) runs through a private aligned bounce buffer: a write's data is
 * copied in at submit, a read's copied out to the window when it completes (unless it was cancelled).
 * Bounce memory in flight is capped (BH_AIO_BOUNCE_CAP): beyond it the caller bounces synchronously.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include "services.h"
#ifdef BH_HAVE_LIBURING
#include <liburing.h>
#endif

enum { S_FREE, S_QUEUED, S_RUNNING, S_DONE };

struct aio_req {
    int state;
    uint32_t tag;
    int op;
    bool cancelled;
    int32_t result;
    uint64_t off;
    size_t total;
    int niov;
    struct iovec iov[BH_AIO_MAX_SEGS]; /* the window segments */
    uint8_t *bounce;                   /* non-NULL: the I/O runs on this aligned copy instead */
    struct iovec biov;
    struct aio_req *next;              /* thread pool: job queue or finished list */
};

struct bh_aio {
    int fd;
    int efd;
    bool uring;
    bool inline_io;                    /* memory-backed image: requests run at submit (header) */
    struct aio_req req[BH_AIO_DEPTH];
    int in_use;                        /* slots not FREE */
    int done[BH_AIO_DEPTH];            /* FIFO of DONE slots not yet handed out */
    int done_head, done_n;
    size_t bounce_bytes;               /* bounce memory of requests in flight */
    struct bh_aio_counters c;
#ifdef BH_HAVE_LIBURING
    struct io_uring ring;
    int unsubmitted;
#endif
    /* thread pool */
    pthread_mutex_t mu;
    pthread_cond_t work, finished_cv;
    struct aio_req *queue_head, *queue_tail, *finished;
    pthread_t threads[BH_AIO_THREADS];
    int started;
};

static size_t total_len(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++) t += iov[i].iov_len;
    return t;
}

/* Main thread: a finished request (result known) joins the done FIFO; a read through a bounce buffer
 * gives its data to the window now, unless it was cancelled (then the window may be someone else's). */
static void finish(struct bh_aio *a, struct aio_req *r, int32_t res)
{
    if (r->op != BH_AIO_FLUSH && res >= 0) res = (size_t)res == r->total ? 0 : -EIO; /* short: past EOF or no space */
    if (r->bounce) {
        if (r->op == BH_AIO_READ && res == 0 && !r->cancelled) {
            size_t p = 0;
            for (int i = 0; i < r->niov; i++) {
                memcpy(r->iov[i].iov_base, r->bounce + p, r->iov[i].iov_len);
                p += r->iov[i].iov_len;
            }
        }
        free(r->bounce);
        r->bounce = NULL;
        a->bounce_bytes -= r->total;
    }
    if (r->cancelled) a->c.cancelled++;
    if (res < 0) a->c.errors++;
    r->result = res;
    r->state = S_DONE;
    a->done[(a->done_head + a->done_n++) % BH_AIO_DEPTH] = (int)(r - a->req);
}

/* --- thread pool ------------------------------------------------------------------------------ */

static int32_t run_job(int fd, struct aio_req *r)
{
    if (r->op == BH_AIO_FLUSH) return fdatasync(fd) < 0 ? -errno : 0;
    struct iovec *iov = r->bounce ? &r->biov : r->iov;
    int n = r->bounce ? 1 : r->niov;
    struct iovec local[BH_AIO_MAX_SEGS];
    memcpy(local, iov, (size_t)n * sizeof *iov);
    size_t done = 0;
    int first = 0;
    while (first < n) {
        ssize_t k = r->op == BH_AIO_READ ? preadv(fd, local + first, n - first, (off_t)(r->off + done))
                                         : pwritev(fd, local + first, n - first, (off_t)(r->off + done));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -errno;
        if (k == 0) break; /* EOF: finish() reports the short transfer */
        done += (size_t)k;
        while (first < n && (size_t)k >= local[first].iov_len) k -= (ssize_t)local[first++].iov_len;
        if (first < n) {
            local[first].iov_base = (uint8_t *)local[first].iov_base + k;
            local[first].iov_len -= (size_t)k;
        }
    }
    return (int32_t)done;
}

static void *worker(void *arg)
{
    struct bh_aio *a = arg;
    bh_drop_capabilities(); /* capabilities are per thread: a root-started firmware's workers keep none either */
    pthread_mutex_lock(&a->mu);
    a->started++;
    pthread_cond_broadcast(&a->finished_cv);
    for (;;) {
        while (!a->queue_head) pthread_cond_wait(&a->work, &a->mu);
        struct aio_req *r = a->queue_head;
        a->queue_head = r->next;
        if (!a->queue_head) a->queue_tail = NULL;
        r->state = S_RUNNING;
        pthread_mutex_unlock(&a->mu);
        int32_t res = run_job(a->fd, r);
        pthread_mutex_lock(&a->mu);
        r->result = res;
        r->next = a->finished;
        a->finished = r;
        pthread_cond_broadcast(&a->finished_cv);
        uint64_t one = 1;
        ssize_t w = write(a->efd, &one, sizeof one);
        (void)w;
    }
    return NULL;
}

/* Main thread, lock held: what the workers finished goes to the done FIFO (oldest first). */
static void harvest_pool_locked(struct bh_aio *a)
{
    struct aio_req *rev = NULL;
    while (a->finished) {
        struct aio_req *r = a->finished;
        a->finished = r->next;
        r->next = rev;
        rev = r;
    }
    for (struct aio_req *r = rev, *nx; r; r = nx) {
        nx = r->next;
        finish(a, r, r->result);
    }
}

/* --- io_uring ---------------------------------------------------------------------------------- */

#ifdef BH_HAVE_LIBURING
static int uring_setup(struct bh_aio *a, int *why)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_R_DISABLED;
    int r = io_uring_queue_init_params(BH_AIO_DEPTH, &a->ring, &p);
    if (r < 0) { *why = -r; return r; }
    struct io_uring_restriction res[8];
    int n = 0;
    static const int ops[] = { IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        memset(&res[n], 0, sizeof res[n]);
        res[n].opcode = IORING_RESTRICTION_SQE_OP;
        res[n++].sqe_op = (uint8_t)ops[i];
    }
    memset(&res[n], 0, sizeof res[n]);
    res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
    res[n++].sqe_flags = IOSQE_FIXED_FILE;
    memset(&res[n], 0, sizeof res[n]);
    res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
    res[n++].sqe_flags = IOSQE_FIXED_FILE;
    if ((r = io_uring_register_files(&a->ring, &a->fd, 1)) < 0 || (r = io_uring_register_eventfd(&a->ring, a->efd)) < 0 ||
        (r = io_uring_register_restrictions(&a->ring, res, (unsigned)n)) < 0 || (r = io_uring_enable_rings(&a->ring)) < 0) {
        *why = -r;
        io_uring_queue_exit(&a->ring);
        return r;
    }
    return 0;
}

static void uring_harvest(struct bh_aio *a)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&a->ring, head, cqe) {
        uint64_t slot = cqe->user_data;
        if (slot < BH_AIO_DEPTH && a->req[slot].state == S_RUNNING) finish(a, &a->req[slot], cqe->res);
        n++;
    }
    io_uring_cq_advance(&a->ring, n);
}

static void uring_flush(struct bh_aio *a)
{
    if (!a->unsubmitted) return;
    int r = io_uring_submit(&a->ring);
    if (r < 0) {
        /* The kernel took none: fail them all rather than leave requests that never complete. */
        bh_log(BH_LOG_ERROR, "io_uring_submit: %s", strerror(-r));
        for (int i = 0; i < BH_AIO_DEPTH; i++)
            if (a->req[i].state == S_QUEUED) finish(a, &a->req[i], r);
    } else {
        for (int i = 0; i < BH_AIO_DEPTH; i++)
            if (a->req[i].state == S_QUEUED) a->req[i].state = S_RUNNING;
    }
    a->unsubmitted = 0;
}
#endif

/* --- the engine's face ------------------------------------------------------------------------- */

struct bh_aio *bh_aio_open(int fd, enum bh_aio_mode mode, bool memory, char *engine, size_t engine_len)
{
    struct bh_aio *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->fd = fd;
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0) { free(a); return NULL; }
    bool force_threads = mode == BH_AIO_ENGINE_THREADS;
    if (memory && mode == BH_AIO_ENGINE_AUTO) {
        a->inline_io = true;
        snprintf(engine, engine_len, "inline (a memory-backed image: requests run at submit, no worker thread)");
        return a;
    }
    int why = 0;
#ifdef BH_HAVE_LIBURING
    if (!force_threads && uring_setup(a, &why) == 0) {
        a->uring = true;
        snprintf(engine, engine_len, "io_uring (depth %d, restricted to read/write/fsync on the image)", BH_AIO_DEPTH);
        return a;
    }
#else
    why = ENOSYS;
#endif
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->work, NULL);
    pthread_cond_init(&a->finished_cv, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024 + BH_AIO_MAX_SEGS * sizeof(struct iovec));
    for (int i = 0; i < BH_AIO_THREADS; i++) {
        if (pthread_create(&a->threads[i], &attr, worker, a) != 0) {
            bh_log(BH_LOG_ERROR, "storage: cannot start aio thread %d", i);
            pthread_attr_destroy(&attr);
            return NULL; /* threads already started block on an empty queue; the process dies at open */
        }
    }
    pthread_attr_destroy(&attr);
    /* Every worker dropped its capabilities before the caller goes on to install seccomp. */
    pthread_mutex_lock(&a->mu);
    while (a->started < BH_AIO_THREADS) pthread_cond_wait(&a->finished_cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    if (force_threads) snprintf(engine, engine_len, "thread pool (%d threads, forced)", BH_AIO_THREADS);
    else snprintf(engine, engine_len, "thread pool (%d threads; io_uring refused: %s)", BH_AIO_THREADS, strerror(why));
    return a;
}

int bh_aio_fd(struct bh_aio *a) { return a->efd; }
const char *bh_aio_engine(struct bh_aio *a) { return a->inline_io ? "inline" : a->uring ? "io_uring" : "threads"; }
const struct bh_aio_counters *bh_aio_counters(struct bh_aio *a) { return &a->c; }

static struct aio_req *find(struct bh_aio *a, uint32_t tag)
{
    for (int i = 0; i < BH_AIO_DEPTH; i++)
        if (a->req[i].state != S_FREE && a->req[i].tag == tag) return &a->req[i];
    return NULL;
}

int bh_aio_submit(struct bh_aio *a, uint32_t tag, int op, uint64_t off, const struct iovec *iov, int n, bool bounce)
{
    if (a->in_use >= BH_AIO_DEPTH) return -EAGAIN;
    if (find(a, tag)) return -EINVAL; /* the firmware reuses a tag only after its completion */
    if (n < 0 || n > BH_AIO_MAX_SEGS) return -EINVAL;
    size_t total = total_len(iov, n);
    uint8_t *buf = NULL;
    if (bounce) {
        if (a->bounce_bytes + total > BH_AIO_BOUNCE_CAP) return -ENOBUFS; /* the caller bounces synchronously */
        buf = aligned_alloc(4096, (total + 4095) & ~(size_t)4095);
        if (!buf) return -ENOBUFS;
    }
    struct aio_req *r = NULL;
    for (int i = 0; i < BH_AIO_DEPTH && !r; i++)
        if (a->req[i].state == S_FREE) r = &a->req[i];
    r->tag = tag;
    r->op = op;
    r->off = off;
    r->cancelled = false;
    r->niov = n;
    r->total = total;
    memcpy(r->iov, iov, (size_t)n * sizeof *iov);
    r->bounce = buf;
    if (buf) {
        if (op == BH_AIO_WRITE) {
            size_t p = 0;
            for (int i = 0; i < n; i++) {
                memcpy(buf + p, iov[i].iov_base, iov[i].iov_len);
                p += iov[i].iov_len;
            }
        }
        r->biov.iov_base = buf;
        r->biov.iov_len = total;
        a->bounce_bytes += total;
        a->c.bounced++;
        a->c.bounced_bytes += total;
    }
    a->in_use++;
    a->c.submitted++;
    if (a->in_use > a->c.peak) a->c.peak = a->in_use;
    if (a->inline_io) {
        /* Done now; the loop hands it to the firmware after the submitting call returned (bh_aio_ready). */
        r->state = S_RUNNING;
        finish(a, r, run_job(a->fd, r));
        return 0;
    }
#ifdef BH_HAVE_LIBURING
    if (a->uring) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
        if (!sqe) { uring_flush(a); sqe = io_uring_get_sqe(&a->ring); }
        r->state = S_QUEUED;
        if (!sqe) { finish(a, r, -EAGAIN); return 0; } /* cannot happen: the ring has BH_AIO_DEPTH entries */
        const struct iovec *v = buf ? &r->biov : r->iov;
        int nv = buf ? 1 : n;
        if (op == BH_AIO_FLUSH) io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
        else if (nv == 1 && op == BH_AIO_READ) io_uring_prep_read(sqe, 0, v[0].iov_base, (unsigned)v[0].iov_len, off);
        else if (nv == 1) io_uring_prep_write(sqe, 0, v[0].iov_base, (unsigned)v[0].iov_len, off);
        else if (op == BH_AIO_READ) io_uring_prep_readv(sqe, 0, v, (unsigned)nv, off);
        else io_uring_prep_writev(sqe, 0, v, (unsigned)nv, off);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, (uint64_t)(r - a->req));
        a->unsubmitted++;
        return 0;
    }
#endif
    pthread_mutex_lock(&a->mu);
    r->state = S_QUEUED;
    r->next = NULL;
    if (a->queue_tail) a->queue_tail->next = r;
    else a->queue_head = r;
    a->queue_tail = r;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* A request the caller already finished (a synchronous fallback) completes through the FIFO like any other. */
int bh_aio_post(struct bh_aio *a, uint32_t tag, int op, int32_t result)
{
    if (a->in_use >= BH_AIO_DEPTH) return -EAGAIN;
    if (find(a, tag)) return -EINVAL;
    struct aio_req *r = NULL;
    for (int i = 0; i < BH_AIO_DEPTH && !r; i++)
        if (a->req[i].state == S_FREE) r = &a->req[i];
    memset(r, 0, offsetof(struct aio_req, iov));
    r->tag = tag;
    r->op = BH_AIO_FLUSH; /* finish() takes the result as it is */
    (void)op;
    a->in_use++;
    a->c.submitted++;
    finish(a, r, result);
    uint64_t one = 1;
    ssize_t w = write(a->efd, &one, sizeof one);
    (void)w;
    return 0;
}

/* Submissions wait in the SQ until the loop's turn ends (one io_uring_enter for a whole pass). */
void bh_aio_flush(struct bh_aio *a)
{
#ifdef BH_HAVE_LIBURING
    if (a->uring) uring_flush(a);
#else
    (void)a;
#endif
}

/* Moves whatever finished into the done FIFO; true when completions wait for the firmware. */
bool bh_aio_event(struct bh_aio *a)
{
    uint64_t v;
    ssize_t r = read(a->efd, &v, sizeof v);
    (void)r;
#ifdef BH_HAVE_LIBURING
    if (a->uring) uring_harvest(a);
    else
#endif
    {
        pthread_mutex_lock(&a->mu);
        harvest_pool_locked(a);
        pthread_mutex_unlock(&a->mu);
    }
    return a->done_n > 0;
}

/* Completions that can be taken now, without waiting for the eventfd's epoll turn: inline requests, and
 * with io_uring those already in the CQ ring (a read served from the page cache completes inside the
 * submitting io_uring_enter). */
bool bh_aio_ready(struct bh_aio *a)
{
    if (a->inline_io) return a->done_n > 0;
#ifdef BH_HAVE_LIBURING
    if (a->uring && io_uring_cq_ready(&a->ring)) return bh_aio_event(a);
#endif
    return false;
}

/* Completions wait that the loop will not take this turn: the eventfd wakes its next one. */
void bh_aio_wake(struct bh_aio *a)
{
    uint64_t one = 1;
    ssize_t w = write(a->efd, &one, sizeof one);
    (void)w;
}

int bh_aio_complete(struct bh_aio *a, int32_t *out, int max)
{
#ifdef BH_HAVE_LIBURING
    if (a->uring) uring_harvest(a); /* what finished since the eventfd fired comes along */
#endif
    int k = 0;
    while (k < max && a->done_n > 0) {
        struct aio_req *r = &a->req[a->done[a->done_head]];
        a->done_head = (a->done_head + 1) % BH_AIO_DEPTH;
        a->done_n--;
        out[2 * k] = (int32_t)r->tag;
        out[2 * k + 1] = r->result;
        r->state = S_FREE;
        a->in_use--;
        a->c.completed++;
        k++;
    }
    return k;
}

int bh_aio_cancel(struct bh_aio *a, uint32_t tag)
{
    struct aio_req *r = find(a, tag);
    if (!r) return -ENOENT;
    if (r->state == S_DONE) return -ENOENT; /* finished: it touches nothing any more; its completion waits */
    r->cancelled = true;
#ifdef BH_HAVE_LIBURING
    if (a->uring) {
        uring_flush(a);
        while (r->state != S_DONE) {
            struct io_uring_cqe *cqe;
            int w = io_uring_wait_cqe(&a->ring, &cqe);
            if (w < 0 && w != -EINTR) {
                bh_log(BH_LOG_ERROR, "io_uring_wait_cqe: %s", strerror(-w));
                return w;
            }
            uring_harvest(a);
        }
        return 0;
    }
#endif
    pthread_mutex_lock(&a->mu);
    if (r->state == S_QUEUED) {
        /* Not started: take it off the queue; it completes as cancelled without running. */
        struct aio_req **p = &a->queue_head, *prev = NULL;
        while (*p && *p != r) { prev = *p; p = &(*p)->next; }
        if (*p) {
            *p = r->next;
            if (a->queue_tail == r) a->queue_tail = prev;
            harvest_pool_locked(a);
            finish(a, r, -ECANCELED);
            pthread_mutex_unlock(&a->mu);
            return 0;
        }
    }
    while (r->state != S_DONE) {
        harvest_pool_locked(a);
        if (r->state != S_DONE) pthread_cond_wait(&a->finished_cv, &a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return 0;
}
