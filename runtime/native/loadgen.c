/*
 * bulkhead-loadgen: a JS-free frontend that measures the backend alone.
 *
 * It attaches to an ivshmem server as the frontend peer, speaks the window layout
 * (docs/window-layout.md) and virtio-msg (docs/transport.md) itself, brings up the first virtio-blk
 * device, or the first two virtio-net devices (GET_DEVICES, GET_DEVICE_INFO, status handshake,
 * VERSION_1 | ACCESS_PLATFORM | EVENT_IDX (+ MAC for net), the queues it uses placed in the pool with
 * SET_VQUEUE, DRIVER_OK) and drives it:
 *
 *   bulkhead-loadgen SOCKET ping     [opts]   PING round trips through the FIFOs
 *   bulkhead-loadgen SOCKET randread [opts]   4 KiB random reads, --qd requests always in flight
 *   bulkhead-loadgen SOCKET net      [opts]   frames from the first virtio-net device (A) to the
 *                                             second (B) through the backend's switch: every receive
 *                                             buffer of B posted, --window frames in flight, each
 *                                             received frame's length and sequence number checked
 *
 *   --qd N            requests in flight (randread; 1..64, default 32)
 *   --size BYTES      frame size without the virtio_net_hdr (net; 18..1518, default 64)
 *   --window N        frames sent and not yet received (net; 1..128, default 128)
 *   --seconds S       measured time (default 1; a warm-up of S/5 comes first)
 *   --spin            spin on the used ring / FIFO instead of sleeping on our eventfd
 *   --cpu C           pin this process to CPU C
 *   --backend-pid P   read P's CPU time, all its threads (/proc/P/task/TID/schedstat), around the measured run
 *   --pin-backend C   pin P to CPU C first (with --backend-pid)
 *   --verify          every 4 KiB block of the image holds its block number (u64 LE) at offset 0:
 *                     check it in every completed read
 *   --ring R          split (default) or packed: negotiate VIRTIO_F_RING_PACKED and drive packed
 *                     virtqueues (virtio 1.3 §2.8) instead of split ones (§2.7)
 *
 * Prints one JSON object on stdout: ops (measured), opsTotal (with the warm-up), seconds, ops/s, µs per op, doorbells to the backend and
 * from it per op, backend CPU µs per op (with --backend-pid). Exit 1 with a reason on any failure
 * (a response that never comes, a status other than OK, a wrong block).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ivshmem-client.h"

/* docs/window-layout.md */
#define WIN_MAGIC 0x4B4C4842u
#define BACKEND_READY 2
#define FIFO_HEAD 0
#define FIFO_TAIL 64
#define FIFO_SLOTS 128
/* docs/transport.md */
#define T_RESPONSE 1
#define T_BUS 2
#define BUS_GET_DEVICES 0x02
#define BUS_PING 0x03
#define MSG_GET_DEVICE_INFO 0x02
#define MSG_GET_DEVICE_FEATURES 0x03
#define MSG_SET_DRIVER_FEATURES 0x04
#define MSG_GET_CONFIG 0x05
#define MSG_SET_DEVICE_STATUS 0x08
#define MSG_SET_VQUEUE 0x0a
#define MSG_EVENT_CONFIG 0x40
#define MSG_EVENT_AVAIL 0x41
#define MSG_EVENT_USED 0x42
/* virtio 1.3 */
#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 64
#define F_EVENT_IDX_LO (1u << 29)
#define F_VERSION_1_HI (1u << 0)
#define F_ACCESS_PLATFORM_HI (1u << 1)
#define F_RING_PACKED_HI (1u << 2)
#define VIRTIO_ID_BLOCK 2
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_AVAIL (1u << 7)     /* packed (§2.8.1) */
#define DESC_F_USED (1u << 15)
#define EVENT_F_DISABLE 1          /* packed event suppression (§2.8.10) */
#define EVENT_F_DESC 2

#define QSIZE 128
#define MAX_QD 64
#define BLOCK 4096

static uint8_t *win;
static size_t win_size;
static struct ivs_client ivs;
static int backend_id = -1;
static int spin;
static uint32_t slot_size, d2v_off, d2v_n, v2d_off, v2d_n, pool_off, pool_size;
static uint32_t d2v_head, v2d_tail;
static uint16_t token = 1;
static unsigned long rings_out, rings_in;
static int packed;                /* --ring packed */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bulkhead-loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(1);
}

static inline void fence(void) { atomic_thread_fence(memory_order_seq_cst); }
static inline volatile uint16_t *u16p(uint32_t off) { return (volatile uint16_t *)(win + off); }
static inline volatile uint32_t *u32p(uint32_t off) { return (volatile uint32_t *)(win + off); }
static inline volatile uint64_t *u64p(uint32_t off) { return (volatile uint64_t *)(win + off); }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void ring_backend(void)
{
    rings_out++;
    if (ivs_ring(&ivs, backend_id, 0) < 1) die("no backend peer %d to ring", backend_id);
}

/* Waits for a doorbell (or, spinning, just yields the pipeline); counts doorbells received. */
static void wait_doorbell(double deadline)
{
    uint64_t v;
    if (spin) {
        if (read(ivs.my_efd[0], &v, 8) == 8) rings_in += v;
        if (now_s() > deadline) die("no answer from the backend in time");
        return;
    }
    struct pollfd p = { ivs.my_efd[0], POLLIN, 0 };
    int ms = (int)((deadline - now_s()) * 1000) + 1;
    if (ms <= 0 || poll(&p, 1, ms) == 0) die("no doorbell from the backend in time");
    if (read(ivs.my_efd[0], &v, 8) == 8) rings_in += v;
}

/* --- FIFOs ---------------------------------------------------------------------------------- */

/* Writes one message into the driver→device FIFO; published by `publish()`. */
static void push(uint8_t type, uint8_t id, uint16_t dev, uint16_t tok, const void *payload, uint16_t plen)
{
    double deadline = now_s() + 5;
    while (d2v_head - *u32p(d2v_off + FIFO_TAIL) >= d2v_n) wait_doorbell(deadline);
    uint8_t *m = win + d2v_off + FIFO_SLOTS + (d2v_head & (d2v_n - 1)) * slot_size;
    uint16_t size = 8 + plen;
    m[0] = type;
    m[1] = id;
    memcpy(m + 2, &dev, 2);
    memcpy(m + 4, &tok, 2);
    memcpy(m + 6, &size, 2);
    memcpy(m + 8, payload, plen);
    d2v_head++;
}

static void publish(void)
{
    fence();
    *u32p(d2v_off + FIFO_HEAD) = d2v_head;
    fence();
    ring_backend();
}

static unsigned long events_used, events_config;

/* Consumes device→driver messages; copies the one answering `want` (token) into `out`. */
static int consume(uint16_t want, uint8_t *out)
{
    int found = 0;
    uint32_t head = *u32p(v2d_off + FIFO_HEAD);
    fence();
    while (v2d_tail != head) {
        const uint8_t *m = win + v2d_off + FIFO_SLOTS + (v2d_tail & (v2d_n - 1)) * slot_size;
        uint16_t tok, size;
        memcpy(&tok, m + 4, 2);
        memcpy(&size, m + 6, 2);
        if (size > slot_size) size = slot_size;
        if ((m[0] & T_RESPONSE) && want && tok == want) {
            memcpy(out, m, size);
            found = 1;
        } else if (m[1] == MSG_EVENT_USED) events_used++;
        else if (m[1] == MSG_EVENT_CONFIG) {
            uint32_t st;
            memcpy(&st, m + 8, 4);
            events_config++;
            if (st & S_NEEDS_RESET) die("the device reports DEVICE_NEEDS_RESET (status 0x%x)", st);
        }
        v2d_tail++;
    }
    fence();
    *u32p(v2d_off + FIFO_TAIL) = v2d_tail;
    return found;
}

/* One request, its answer copied into `out` (264 bytes). */
static void request(uint8_t type, uint8_t id, uint16_t dev, const void *payload, uint16_t plen, uint8_t *out)
{
    uint16_t t = token;
    token = token == 0xffff ? 1 : token + 1;
    push(type, id, dev, t, payload, plen);
    publish();
    double deadline = now_s() + 5;
    while (!consume(t, out)) wait_doorbell(deadline);
    if (out[1] != id) die("answer to msg 0x%x has msg_id 0x%x", id, out[1]);
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* --- bring-up ------------------------------------------------------------------------------- */

static void attach(const char *sock)
{
    const char *why = "";
    int r = ivs_connect(&ivs, sock, &why);
    if (r < 0 || ivs.my_nvec < 1) die("%s: %s", why, strerror(-r));
    struct stat st;
    if (fstat(ivs.shm_fd, &st) < 0) die("fstat shm: %s", strerror(errno));
    win_size = st.st_size;
    win = mmap(NULL, win_size, PROT_READ | PROT_WRITE, MAP_SHARED, ivs.shm_fd, 0);
    if (win == MAP_FAILED) die("mmap: %s", strerror(errno));
    if (*u32p(0) != WIN_MAGIC || *u16p(4) != 1) die("no version-1 window header");
    if (*u32p(0x28) != BACKEND_READY) die("backend state %u, not READY", *u32p(0x28));
    slot_size = *u32p(0x0c);
    d2v_off = *u32p(0x10); d2v_n = *u32p(0x14);
    v2d_off = *u32p(0x18); v2d_n = *u32p(0x1c);
    pool_off = *u32p(0x20); pool_size = *u32p(0x24);
    if (slot_size < 72 || !d2v_n || (d2v_n & (d2v_n - 1)) || !v2d_n || (v2d_n & (v2d_n - 1)) ||
        (uint64_t)pool_off + pool_size > win_size)
        die("implausible window header");
    backend_id = *u16p(0x40);
    if (backend_id == 0xffff) backend_id = -1;
    *u16p(0x42) = (uint16_t)ivs.my_id;
    *u32p(0x30) = 1;
    d2v_head = *u32p(d2v_off + FIFO_HEAD);
    v2d_tail = *u32p(v2d_off + FIFO_TAIL);
    uint64_t v;
    while (read(ivs.my_efd[0], &v, 8) == 8) {}
    consume(0, NULL);
}

/* One virtqueue placed in the pool (window offsets), split or packed (--ring). */
struct vq {
    uint16_t dev, index, size;
    uint32_t desc, avail, used;   /* split: table, avail ring, used ring; packed: ring, driver and device event */
    uint16_t avail_idx, last_used, kicked; /* split: free-running indices */
    /* packed: next descriptor to fill and the Driver Ring Wrap Counter, next used descriptor and its
     * wrap counter, descriptors made available since the last kick, descriptors per buffer id */
    uint16_t next_avail, avail_wrap, next_used, used_wrap, added;
    uint16_t count[256];
};

struct blk {
    struct vq q;
    uint32_t hdr, data;           /* per request: 16-byte header + 1 status byte; 4 KiB data */
    uint64_t blocks;              /* capacity in 4 KiB blocks */
};

static void set_status(uint16_t dev, uint32_t s, uint8_t *a)
{
    request(0, MSG_SET_DEVICE_STATUS, dev, &s, 4, a);
}

/* The `nth` (0-based) device on the bus with virtio device ID `id`, or -1. */
static int find_device(uint32_t id, int nth)
{
    uint8_t a[512], info[512];
    uint16_t q[2] = { 0, 64 };
    request(T_BUS, BUS_GET_DEVICES, 0, q, 4, a);
    for (int n = 0; n < 64; n++) {
        if (!(a[8 + 6 + n / 8] >> (n % 8) & 1)) continue;
        request(0, MSG_GET_DEVICE_INFO, n, NULL, 0, info);
        if (rd32(info + 8) == id && nth-- == 0) return n;
    }
    return -1;
}

/* Reset, ACKNOWLEDGE, DRIVER, the features asked for (all must be offered), FEATURES_OK. */
static void negotiate(uint16_t dev, uint32_t want_lo, uint32_t want_hi)
{
    uint8_t a[512];
    set_status(dev, 0, a);
    set_status(dev, S_ACK, a);
    set_status(dev, S_ACK | S_DRIVER, a);
    uint32_t gf[2] = { 0, 2 };
    request(0, MSG_GET_DEVICE_FEATURES, dev, gf, 8, a);
    uint32_t lo = rd32(a + 16), hi = rd32(a + 20);
    if ((lo & want_lo) != want_lo || (hi & want_hi) != want_hi) die("device %u offers 0x%08x%08x", dev, hi, lo);
    uint32_t sf[4] = { 0, 2, want_lo, want_hi };
    request(0, MSG_SET_DRIVER_FEATURES, dev, sf, 16, a);
    set_status(dev, S_ACK | S_DRIVER | S_FEATURES_OK, a);
    if (!(rd32(a + 8) & S_FEATURES_OK)) die("device %u refused FEATURES_OK", dev);
}

/* Places queue `index` of `dev` (`size` entries) at pool offset *p, advances *p, SET_VQUEUE. */
static void vq_place(struct vq *q, uint16_t dev, uint16_t index, uint16_t size, uint32_t *p)
{
    uint8_t a[512];
    if (size > 256) die("queue size %u > 256", size);
    *q = (struct vq){ .dev = dev, .index = index, .size = size, .avail_wrap = 1, .used_wrap = 1 };
    *p = (*p + 15) & ~15u;
    q->desc = *p; *p += 16 * size;
    if (packed) {
        q->avail = *p; *p += 4;   /* driver event suppression */
        q->used = *p; *p += 4;    /* device event suppression */
    } else {
        q->avail = *p; *p += 6 + 2 * size; *p = (*p + 3) & ~3u;
        q->used = *p; *p += 6 + 8 * size;
    }
    *p = (*p + 15) & ~15u;
    if (*p > pool_off + pool_size) die("pool too small");
    memset(win + q->desc, 0, *p - q->desc);
    uint32_t sv[10] = { index, 0, size, 0, q->desc, 0, q->avail, 0, q->used, 0 };
    request(0, MSG_SET_VQUEUE, dev, sv, 40, a);
}

static void driver_ok(uint16_t dev)
{
    uint8_t a[512];
    set_status(dev, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, a);
    if (!(rd32(a + 8) & S_DRIVER_OK)) die("device %u refused DRIVER_OK (status 0x%x)", dev, rd32(a + 8));
}

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct pdesc { uint64_t addr; uint32_t len; uint16_t id, flags; };   /* packed (§2.8.13) */
struct seg { uint32_t addr, len; int write; };

/* Makes buffer `id` of `n` segments available. Split: descriptors id..id+n-1 of the table (the caller
 * spaces its ids by their lists' lengths), head id, published by vq_kick. Packed: descriptors from the
 * next position with buffer id `id` (< size), the head's flags written last (§2.8.21.1). */
static void vq_add(struct vq *q, uint16_t id, const struct seg *sg, int n)
{
    if (!packed) {
        struct desc *t = (void *)(win + q->desc);
        for (int k = 0; k < n; k++)
            t[id + k] = (struct desc){ sg[k].addr, sg[k].len, (sg[k].write ? DESC_F_WRITE : 0) | (k < n - 1 ? DESC_F_NEXT : 0), id + k + 1 };
        *u16p(q->avail + 4 + 2 * (q->avail_idx & (q->size - 1))) = id;
        q->avail_idx++;
        return;
    }
    volatile struct pdesc *r = (volatile struct pdesc *)(win + q->desc);
    uint16_t head = q->next_avail, head_flags = 0;
    for (int k = 0; k < n; k++) {
        uint16_t f = (sg[k].write ? DESC_F_WRITE : 0) | (k < n - 1 ? DESC_F_NEXT : 0) | (q->avail_wrap ? DESC_F_AVAIL : DESC_F_USED);
        volatile struct pdesc *d = &r[q->next_avail];
        d->addr = sg[k].addr;
        d->len = sg[k].len;
        d->id = id;
        if (k) d->flags = f;
        else head_flags = f;
        if (++q->next_avail == q->size) q->next_avail = 0, q->avail_wrap ^= 1;
    }
    fence();
    r[head].flags = head_flags;
    q->count[id] = n;
    q->added += n;
}

/* Publishes what vq_add made available (split: avail.idx) and queues EVENT_AVAIL only if the device
 * asked (split: avail_event, §2.7.10; packed: the device event suppression, §2.8.10 — vring_need_event
 * either way). Returns 1 when a message was queued (the caller publishes the FIFO and rings). */
static int vq_kick(struct vq *q)
{
    int need;
    fence();
    if (!packed) {
        uint16_t old = q->kicked;
        if (old == q->avail_idx) return 0;
        *u16p(q->avail + 2) = q->avail_idx;
        q->kicked = q->avail_idx;
        fence();
        uint16_t ev = *u16p(q->used + 4 + 8 * q->size);
        need = (uint16_t)(q->avail_idx - ev - 1) < (uint16_t)(q->avail_idx - old);
    } else {
        if (!q->added) return 0;
        uint32_t ev = *u32p(q->used);
        uint16_t mode = (ev >> 16) & 3;
        need = mode != EVENT_F_DISABLE;
        if (mode == EVENT_F_DESC) {
            int off = (int)(ev & 0x7fff) - (((ev >> 15) & 1) != q->avail_wrap ? q->size : 0);
            need = (uint16_t)(q->next_avail - off - 1) < (uint16_t)q->added;
        }
        q->added = 0;
    }
    if (!need) return 0;
    uint32_t pl[2] = { q->index, 0 };
    push(0, MSG_EVENT_AVAIL, q->dev, 0, pl, 8);
    return 1;
}

/* The next used buffer's id (its length in *len), or -1 when the device has returned nothing more. */
static int64_t vq_pop_used(struct vq *q, uint32_t *len)
{
    if (!packed) {
        if (q->last_used == *u16p(q->used + 2)) return -1;
        fence();
        uint32_t e = q->used + 4 + 8 * (q->last_used++ & (q->size - 1));
        *len = *u32p(e + 4);
        return *u32p(e);
    }
    volatile struct pdesc *d = (volatile struct pdesc *)(win + q->desc) + q->next_used;
    uint16_t f = d->flags, want = q->used_wrap ? DESC_F_AVAIL | DESC_F_USED : 0;
    if ((f & (DESC_F_AVAIL | DESC_F_USED)) != want) return -1;
    fence();
    uint16_t id = d->id;
    *len = d->len;
    if (id >= q->size || !q->count[id]) die("used buffer id %u was not in flight", id);
    q->next_used += q->count[id]; /* skip the rest of that buffer's descriptors (§2.8.6) */
    q->count[id] = 0;
    if (q->next_used >= q->size) q->next_used -= q->size, q->used_wrap ^= 1;
    q->last_used++;
    return id;
}

/* Asks for a doorbell at the next used buffer (`want`), or for none from this queue; 1 if a used
 * buffer is already there. Split: used_event; packed: the driver event suppression (DESC or DISABLE). */
static int vq_arm(struct vq *q, int want)
{
    if (!packed) {
        *u16p(q->avail + 4 + 2 * q->size) = want ? q->last_used : (uint16_t)(q->last_used - 1);
        fence();
        return *u16p(q->used + 2) != q->last_used;
    }
    *u32p(q->avail) = want ? (uint32_t)EVENT_F_DESC << 16 | q->next_used | (uint32_t)q->used_wrap << 15 : (uint32_t)EVENT_F_DISABLE << 16;
    fence();
    uint16_t f = ((volatile struct pdesc *)(win + q->desc))[q->next_used].flags;
    return (f & (DESC_F_AVAIL | DESC_F_USED)) == (q->used_wrap ? DESC_F_AVAIL | DESC_F_USED : 0);
}

/* Features every loadgen device negotiates (upper half): VERSION_1, ACCESS_PLATFORM, RING_PACKED with --ring packed. */
static uint32_t features_hi(void) { return F_VERSION_1_HI | F_ACCESS_PLATFORM_HI | (packed ? F_RING_PACKED_HI : 0); }

static void blk_up(struct blk *b)
{
    int dev = find_device(VIRTIO_ID_BLOCK, 0);
    if (dev < 0) die("no virtio-blk device on the bus");
    negotiate(dev, F_EVENT_IDX_LO, features_hi());
    uint8_t a[512];
    uint32_t gc[2] = { 0, 8 };
    request(0, MSG_GET_CONFIG, dev, gc, 8, a);
    uint64_t sectors;
    memcpy(&sectors, a + 8 + 12, 8);
    b->blocks = sectors / 8;
    if (b->blocks < 1) die("disk smaller than 4 KiB");
    /* Pool: the queue, headers, data buffers. */
    uint32_t p = pool_off;
    vq_place(&b->q, dev, 0, QSIZE, &p);
    b->hdr = p; p += 32 * MAX_QD; p = (p + 4095) & ~4095u;
    b->data = p; p += BLOCK * MAX_QD;
    if (p > pool_off + pool_size) die("pool too small");
    driver_ok(dev);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static uint64_t req_block[MAX_QD];

/* Fills request r (a read of a random block) and makes head 3r available (not yet published). */
static void blk_add(struct blk *b, int r)
{
    uint64_t blk = next_rand() % b->blocks;
    req_block[r] = blk;
    uint32_t h = b->hdr + 32 * r;
    *u32p(h) = 0;                 /* VIRTIO_BLK_T_IN */
    *u32p(h + 4) = 0;
    *u64p(h + 8) = blk * 8;       /* sector */
    win[h + 16] = 0xff;           /* status, overwritten by the device */
    const struct seg sg[3] = { { h, 16, 0 }, { b->data + BLOCK * r, BLOCK, 1 }, { h + 16, 1, 1 } };
    vq_add(&b->q, 3 * r, sg, 3);
}

static void blk_kick(struct blk *b)
{
    if (vq_kick(&b->q)) publish();
}

static int verify;

/* Reaps completed reads (checked); with `refill`, makes each request available again. */
static unsigned long blk_complete(struct blk *b, int refill)
{
    unsigned long n = 0;
    int64_t id;
    uint32_t len;
    while ((id = vq_pop_used(&b->q, &len)) >= 0) {
        if (id % 3 || id / 3 >= MAX_QD) die("used id %lld is not a head we made available", (long long)id);
        int r = id / 3;
        if (len != BLOCK + 1) die("used length %u, expected %u", len, BLOCK + 1);
        uint8_t st = win[b->hdr + 32 * r + 16];
        if (st != 0) die("request for block %llu completed with status %u", (unsigned long long)req_block[r], st);
        if (verify && *u64p(b->data + BLOCK * r) != req_block[r])
            die("block %llu read back as %llu", (unsigned long long)req_block[r], (unsigned long long)*u64p(b->data + BLOCK * r));
        n++;
        if (refill) blk_add(b, r);
    }
    return n;
}

/* Keeps `qd` reads in flight until `until`; returns how many completed. */
static unsigned long blk_run(struct blk *b, int qd, double until)
{
    unsigned long done = 0;
    for (;;) {
        unsigned long n = blk_complete(b, 1);
        done += n;
        if (n) blk_kick(b);
        consume(0, NULL);
        if (now_s() >= until) return done;
        /* Ask for a doorbell at the next completion, then look once more before sleeping. */
        if (vq_arm(&b->q, 1)) continue;
        wait_doorbell(now_s() + 5);
    }
}

/* --- net: frames from device A's transmitq1 to device B's receiveq1 through the switch ------ */

#define VIRTIO_ID_NET 1
#define F_NET_MAC_LO (1u << 5)
#define NET_HDR 12                /* struct virtio_net_hdr with VERSION_1 */
#define NET_QSIZE 256
#define NET_MAX_WINDOW (NET_QSIZE / 2)
#define NET_MAX_FRAME 1518        /* MTU 1500 + Ethernet header + VLAN tag */
#define NET_BUF 1536              /* stride of one buffer: header + largest frame, rounded */
#define NET_SEQ_OFF 14            /* u32 sequence number right after the Ethernet header */

struct net {
    struct vq tx, rx;             /* A's transmitq1 (queue 1), B's receiveq1 (queue 0) */
    uint32_t txbuf, rxbuf;        /* NET_QSIZE buffers each; descriptor i is buffer i */
    uint8_t mac_a[6], mac_b[6];
    uint16_t txfree[NET_QSIZE];   /* transmit descriptors not in flight */
    int ntxfree;
    uint32_t size, window;
    uint32_t sent, received;      /* sequence numbers: next to send, next expected */
};

/* Makes receive buffer `i` (device-writable, one descriptor) available again. */
static void net_post_rx(struct net *n, uint16_t i)
{
    const struct seg sg = { n->rxbuf + NET_BUF * i, NET_HDR + NET_MAX_FRAME, 1 };
    vq_add(&n->rx, i, &sg, 1);
}

static void net_mac(uint16_t dev, uint8_t *mac)
{
    uint8_t a[512];
    uint32_t gc[2] = { 0, 6 };
    request(0, MSG_GET_CONFIG, dev, gc, 8, a);
    if (rd32(a + 16) != 6) die("net device %u: GET_CONFIG of the MAC refused", dev);
    memcpy(mac, a + 20, 6);
}

static void net_up(struct net *n)
{
    int a = find_device(VIRTIO_ID_NET, 0), b = find_device(VIRTIO_ID_NET, 1);
    if (a < 0 || b < 0) die("the board needs two virtio-net devices");
    uint32_t p = pool_off;
    for (int d = 0; d < 2; d++) {
        uint16_t dev = d ? b : a;
        negotiate(dev, F_EVENT_IDX_LO | F_NET_MAC_LO, features_hi());
        net_mac(dev, d ? n->mac_b : n->mac_a);
        if (d) vq_place(&n->rx, dev, 0, NET_QSIZE, &p);
        else vq_place(&n->tx, dev, 1, NET_QSIZE, &p);
    }
    n->txbuf = p; p += NET_BUF * NET_QSIZE;
    n->rxbuf = p; p += NET_BUF * NET_QSIZE;
    if (p > pool_off + pool_size) die("pool too small");
    /* Transmit frames: B's address, A's, a local experimental EtherType, the sequence number, zeros;
     * every virtio_net_hdr zero (no checksum offload, GSO_NONE). */
    memset(win + n->txbuf, 0, 2 * NET_BUF * NET_QSIZE);
    for (int i = 0; i < NET_QSIZE; i++) {
        uint8_t *f = win + n->txbuf + NET_BUF * i + NET_HDR;
        memcpy(f, n->mac_b, 6);
        memcpy(f + 6, n->mac_a, 6);
        f[12] = 0x88, f[13] = 0xb5;
        n->txfree[i] = NET_QSIZE - 1 - i;
    }
    n->ntxfree = NET_QSIZE;
    driver_ok(a);
    driver_ok(b);
    /* Every receive buffer posted (device-writable, one descriptor each). */
    for (int i = 0; i < NET_QSIZE; i++) net_post_rx(n, i);
    if (vq_kick(&n->rx)) publish();
}

/* Reaps A's transmit completions: their descriptors are free again. */
static void net_reap_tx(struct net *n)
{
    int64_t id;
    uint32_t len;
    while ((id = vq_pop_used(&n->tx, &len)) >= 0) {
        if (id >= NET_QSIZE) die("transmit used id %lld is not a head we made available", (long long)id);
        n->txfree[n->ntxfree++] = id;
    }
}

/* Reaps B's received frames, checks each one's length and sequence number, posts the buffer again. */
static unsigned long net_reap_rx(struct net *n)
{
    unsigned long got = 0;
    int64_t id;
    uint32_t len;
    while ((id = vq_pop_used(&n->rx, &len)) >= 0) {
        if (id >= NET_QSIZE) die("receive used id %lld is not a head we made available", (long long)id);
        if (len != NET_HDR + n->size) die("frame %u received with length %u, sent %u", n->received, len, NET_HDR + n->size);
        uint32_t seq = *u32p(n->rxbuf + NET_BUF * id + NET_HDR + NET_SEQ_OFF);
        if (seq != n->received) die("received frame %u, expected %u (lost or reordered)", seq, n->received);
        n->received++;
        net_post_rx(n, id);
        got++;
    }
    return got;
}

/* Keeps `window` frames between A's transmit and B's receive until `until`; returns frames received. */
static unsigned long net_run(struct net *n, double until)
{
    unsigned long done = 0;
    for (;;) {
        net_reap_tx(n);
        done += net_reap_rx(n);
        while (n->sent - n->received < n->window && n->ntxfree) {
            uint16_t d = n->txfree[--n->ntxfree];
            uint32_t buf = n->txbuf + NET_BUF * d;
            *u32p(buf + NET_HDR + NET_SEQ_OFF) = n->sent++;
            const struct seg sg = { buf, NET_HDR + n->size, 0 };
            vq_add(&n->tx, d, &sg, 1);
        }
        int rang = vq_kick(&n->rx);
        rang |= vq_kick(&n->tx);
        if (rang) publish();
        consume(0, NULL);
        if (now_s() >= until) return done;
        /* A doorbell at the next received frame (and at the next transmit completion only when every
         * transmit descriptor is in flight), then look once more before sleeping. */
        int ready = vq_arm(&n->tx, !n->ntxfree);
        ready |= vq_arm(&n->rx, 1);
        if (!ready) wait_doorbell(now_s() + 5);
    }
}

/* Waits for the frames in flight, then resets both devices. */
static void net_down(struct net *n)
{
    double end = now_s() + 5;
    while (n->received != n->sent) {
        net_reap_rx(n);
        if (n->received == n->sent) break;
        if (!vq_arm(&n->rx, 1)) wait_doorbell(end);
        consume(0, NULL);
        if (now_s() > end) die("%u frames in flight never arrived", n->sent - n->received);
    }
    uint8_t a[512];
    set_status(n->tx.dev, 0, a);
    set_status(n->rx.dev, 0, a);
}

/* --- measurements --------------------------------------------------------------------------- */

/* CPU time of every thread of process `pid` (the main loop and its storage workers: the thread pool's,
 * io_uring's io-wq) from /proc/PID/task/TID/schedstat; a thread that exits mid-run loses its share. */
static double cpu_s(int pid)
{
    if (pid <= 0) return 0;
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) die("cannot read %s", path);
    unsigned long long total = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns = 0;
        if (f && fscanf(f, "%llu", &ns) == 1) total += ns;
        if (f) fclose(f);
    }
    closedir(d);
    return total / 1e9;
}

static void pin(int pid, int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(pid, sizeof s, &s) < 0) die("pin %d to cpu %d: %s", pid, cpu, strerror(errno));
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 3) {
        fprintf(stderr, "usage: bulkhead-loadgen SOCKET ping|randread [--qd N] [--seconds S] [--spin] [--cpu C] "
                        "[--backend-pid P [--pin-backend C]] [--verify] [--ring split|packed]\n"
                        "       bulkhead-loadgen SOCKET net [--size BYTES] [--window N] [same options]\n");
        return 2;
    }
    const char *mode = argv[2];
    int qd = 32, cpu = -1, bpid = -1, bcpu = -1, size = 64, window = NET_MAX_WINDOW;
    double seconds = 1;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--spin")) spin = 1;
        else if (!strcmp(a, "--verify")) verify = 1;
        else if (v && !strcmp(a, "--qd")) qd = atoi(v), i++;
        else if (v && !strcmp(a, "--size")) size = atoi(v), i++;
        else if (v && !strcmp(a, "--window")) window = atoi(v), i++;
        else if (v && !strcmp(a, "--seconds")) seconds = atof(v), i++;
        else if (v && !strcmp(a, "--cpu")) cpu = atoi(v), i++;
        else if (v && !strcmp(a, "--backend-pid")) bpid = atoi(v), i++;
        else if (v && !strcmp(a, "--pin-backend")) bcpu = atoi(v), i++;
        else if (v && !strcmp(a, "--ring")) {
            if (!strcmp(v, "packed")) packed = 1;
            else if (strcmp(v, "split")) die("--ring must be split or packed, not %s", v);
            i++;
        } else die("unknown or incomplete option %s", a);
    }
    if (qd < 1 || qd > MAX_QD) die("--qd must be 1..%d", MAX_QD);
    if (!(seconds > 0)) die("--seconds must be positive");
    if (size < NET_SEQ_OFF + 4 || size > NET_MAX_FRAME) die("--size must be %d..%d", NET_SEQ_OFF + 4, NET_MAX_FRAME);
    if (window < 1 || window > NET_MAX_WINDOW) die("--window must be 1..%d", NET_MAX_WINDOW);
    if (cpu >= 0) pin(0, cpu);
    if (bcpu >= 0 && bpid > 0) pin(bpid, bcpu);
    attach(argv[1]);

    unsigned long ops = 0, warm_ops = 0; /* measured; warm-up (for opsTotal: what the backend served in all) */
    double t0, t1, c0, c1;
    unsigned long r0, i0;
    if (!strcmp(mode, "ping")) {
        uint8_t a[512];
        uint32_t x = 0;
        double warm = now_s() + seconds / 5;
        while (now_s() < warm) request(T_BUS, BUS_PING, 0, &x, 4, a), warm_ops++;
        r0 = rings_out, i0 = rings_in, c0 = cpu_s(bpid), t0 = now_s();
        double until = t0 + seconds;
        do {
            for (int k = 0; k < 64; k++, ops++, x++) {
                request(T_BUS, BUS_PING, 0, &x, 4, a);
                if (rd32(a + 8) != x) die("PING echoed %u, sent %u", rd32(a + 8), x);
            }
        } while (now_s() < until);
        t1 = now_s(), c1 = cpu_s(bpid);
    } else if (!strcmp(mode, "randread")) {
        static struct blk b;
        blk_up(&b);
        for (int r = 0; r < qd; r++) blk_add(&b, r);
        blk_kick(&b);
        warm_ops = blk_run(&b, qd, now_s() + seconds / 5);
        r0 = rings_out, i0 = rings_in, c0 = cpu_s(bpid), t0 = now_s();
        ops = blk_run(&b, qd, t0 + seconds);
        t1 = now_s(), c1 = cpu_s(bpid);
        /* Let the requests in flight finish so the device is idle, then leave it reset. */
        double end = now_s() + 5;
        for (unsigned long left = qd; left; ) {
            left -= blk_complete(&b, 0);
            if (left && !vq_arm(&b.q, 1)) wait_doorbell(end);
            consume(0, NULL);
            if (now_s() > end) die("requests in flight never completed");
        }
        uint8_t a[512];
        set_status(b.q.dev, 0, a);
    } else if (!strcmp(mode, "net")) {
        static struct net n;
        net_up(&n);
        n.size = size, n.window = window;
        warm_ops = net_run(&n, now_s() + seconds / 5);
        r0 = rings_out, i0 = rings_in, c0 = cpu_s(bpid), t0 = now_s();
        ops = net_run(&n, t0 + seconds);
        t1 = now_s(), c1 = cpu_s(bpid);
        net_down(&n);
        qd = window;
    } else die("mode must be ping, randread or net, not %s", mode);

    double s = t1 - t0;
    printf("{\"mode\":\"%s\",\"ring\":\"%s\",\"qd\":%d,\"spin\":%s,\"ops\":%lu,\"opsTotal\":%lu,\"seconds\":%.4f,\"opsPerSec\":%.0f,\"usPerOp\":%.3f,"
           "\"doorbellsToBackendPerOp\":%.4f,\"doorbellsFromBackendPerOp\":%.4f",
           mode, packed ? "packed" : "split", !strcmp(mode, "ping") ? 1 : qd, spin ? "true" : "false", ops, ops + warm_ops, s, ops / s, s * 1e6 / ops,
           (double)(rings_out - r0) / ops, (double)(rings_in - i0) / ops);
    if (!strcmp(mode, "net")) printf(",\"frameBytes\":%d,\"MBPerSec\":%.2f", size, (double)ops * size / s / 1e6);
    if (bpid > 0) printf(",\"backendCpuUsPerOp\":%.3f,\"backendCpuShare\":%.3f", (c1 - c0) * 1e6 / ops, (c1 - c0) / s);
    printf("}\n");
    return 0;
}
