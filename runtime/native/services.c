/*
 * Backing services (docs/hal.md "Services"): bytes move between a backing and the window by window
 * offset, never through JS. Every offset/length is re-checked here against the window (-EFAULT)
 * and the backing size (-EIO), whatever the firmware already validated. Errors are -errno.
 *
 *   storage  pread/pwrite/fdatasync on a file or block device; discard = fallocate(PUNCH_HOLE),
 *            write-zeroes = fallocate(ZERO_RANGE); both fall back to writing zeroes. Asynchronous
 *            (the default; `io: "sync"` or `,sync` turns it off): submit/complete/cancel through
 *            storage-aio.c. `direct` opens the image O_DIRECT: offsets and lengths must be multiples
 *            of its logical block size (-EINVAL), misaligned window segments are bounced (counted)
 *   stream   stdio | null | pty | unix:PATH (listening socket, one client at a time)
 *   entropy  getrandom(2)
 *   packet   a port on the in-process switch, optionally with a TAP behind it (packet.c)
 *   vsock    unix sockets in Firecracker's convention: <uds> and <uds>_PORT (vsock.c)
 *   i2c      a bus with the board's simulated targets (i2c.c)
 *   gpio     named lines, and their host side on a control socket (gpio.c)
 *
 * Every service fd is opened during boot, before seccomp: afterwards only read/write-class calls
 * (and accept4 for a console socket; socket(AF_UNIX)/connect/shutdown for vsock) are allowed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include "services.h"

enum stream_backing { ST_NULL, ST_STDIO, ST_PTY, ST_UNIX };

struct service {
    bool used;
    enum bh_svc_kind kind;
    char name[64];
    /* storage */
    int fd;
    int zero_fd;    /* where zeroes are written when fallocate cannot: fd, or a buffered fd beside an O_DIRECT one */
    double size;
    bool read_only;
    bool direct;
    unsigned lbs, mem_align; /* O_DIRECT: file offset/length and buffer address alignment (1 when buffered) */
    struct bh_aio *aio;      /* NULL: synchronous */
    char engine[112];
    unsigned long sync_bounced, sync_bounced_bytes;
    /* stream: in_fd/out_fd are the same fd except for stdio; listen_fd for unix: */
    enum stream_backing backing;
    int in_fd, out_fd, listen_fd;
    bool want_out;  /* a write came back short: tell the firmware when there is room */
    bool in_armed;  /* watch input until we told the firmware; its next streamRead re-arms */
};

static struct service svc[BH_MAX_SERVICES];

/* --- command-line overrides: --service name=value ----------------------------------------------- */
static struct { char name[64]; char value[512]; } overrides[BH_MAX_SERVICES];
static int n_overrides;

int bh_services_override(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || eq - arg >= 64 || strlen(eq + 1) >= 512 || n_overrides == BH_MAX_SERVICES) return -1;
    memcpy(overrides[n_overrides].name, arg, eq - arg);
    overrides[n_overrides].name[eq - arg] = 0;
    strcpy(overrides[n_overrides].value, eq + 1);
    n_overrides++;
    return 0;
}

const char *bh_services_override_for(const char *name)
{
    for (int i = n_overrides - 1; i >= 0; i--)
        if (!strcmp(overrides[i].name, name)) return overrides[i].value;
    return NULL;
}

static int alloc(enum bh_svc_kind kind, const char *name)
{
    for (int h = 0; h < BH_MAX_SERVICES; h++) {
        if (svc[h].used) continue;
        memset(&svc[h], 0, sizeof svc[h]);
        svc[h].used = true;
        svc[h].kind = kind;
        snprintf(svc[h].name, sizeof svc[h].name, "%s", name);
        svc[h].fd = svc[h].zero_fd = svc[h].in_fd = svc[h].out_fd = svc[h].listen_fd = -1;
        return h;
    }
    return -EMFILE;
}

static struct service *get(int h, enum bh_svc_kind kind)
{
    if (h < 0 || h >= BH_MAX_SERVICES || !svc[h].used || svc[h].kind != kind) return NULL;
    return &svc[h];
}

/* --- storage --------------------------------------------------------------------------------- */

enum bh_aio_mode bh_storage_aio_mode = BH_AIO_ENGINE_AUTO;

/* An image on a memory file system (tmpfs, ramfs): its I/O never waits for a device (storage-aio.c "inline"). */
static bool memory_backed(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

/* O_DIRECT alignment of an open fd: statx's DIOALIGN where the kernel reports it (6.1+), a block
 * device's logical block size, else 512 (the sector every Linux block device accepts). */
static void dio_alignment(int fd, const struct stat *st, unsigned *lbs, unsigned *mem)
{
    *lbs = *mem = 512;
#ifdef STATX_DIOALIGN
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
        *lbs = sx.stx_dio_offset_align;
        *mem = sx.stx_dio_mem_align ? sx.stx_dio_mem_align : sx.stx_dio_offset_align;
        return;
    }
#endif
    int ss;
    if (S_ISBLK(st->st_mode) && ioctl(fd, BLKSSZGET, &ss) == 0 && ss > 0) *lbs = *mem = (unsigned)ss;
}

/* The completion eventfd of an asynchronous storage is ready (event.c calls this from the loop): true
 * when completions wait, so onService(h) is due. */
static bool storage_event(int fd, uint32_t events, int h)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    return s && s->aio && bh_aio_event(s->aio);
}

int bh_storage_open(const char *name, const char *path, bool read_only, bool direct, bool async)
{
    int h = alloc(BH_SVC_STORAGE, name);
    if (h < 0) return h;
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    int fd = open(path, flags | (direct ? O_DIRECT : 0));
    if (fd < 0) {
        int e = errno;
        if (direct && e == EINVAL) bh_log(BH_LOG_ERROR, "storage %s: cannot open %s with O_DIRECT: its filesystem does not support direct I/O", name, path);
        else bh_log(BH_LOG_ERROR, "storage %s: cannot open %s: %s", name, path, strerror(e));
        svc[h].used = false;
        return -e;
    }
    struct service *s = &svc[h];
    struct stat st;
    fstat(fd, &st);
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0) size = 0;
    s->fd = s->zero_fd = fd;
    s->size = (double)size;
    s->read_only = read_only;
    s->direct = direct;
    s->lbs = s->mem_align = 1;
    if (direct) {
        dio_alignment(fd, &st, &s->lbs, &s->mem_align);
        /* Zeroes written by hand (no fallocate) need no alignment on a buffered descriptor of the same file. */
        if (!read_only) s->zero_fd = open(path, flags);
        if (s->zero_fd < 0) s->zero_fd = fd;
    }
    if (async) {
        s->aio = bh_aio_open(fd, bh_storage_aio_mode, memory_backed(fd), s->engine, sizeof s->engine);
        if (!s->aio) bh_die("storage %s: cannot start asynchronous I/O", name);
        bh_event_watch(bh_aio_fd(s->aio), EPOLLIN, storage_event, h);
    }
    char how[64] = "buffered";
    if (direct) snprintf(how, sizeof how, "O_DIRECT (block %u, buffer alignment %u)", s->lbs, s->mem_align);
    bh_log(BH_LOG_INFO, "storage %s: %s, %llu bytes%s, %s, %s%s", name, path, (unsigned long long)size, read_only ? ", read-only" : "", how,
           async ? "asynchronous: " : "synchronous", async ? s->engine : "");
    return h;
}

int bh_storage_info(int h, double *size, int *ro, int *depth, int *block_size)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s) return -EBADF;
    *size = s->size;
    *ro = s->read_only;
    *depth = s->aio ? BH_AIO_DEPTH : 0;
    *block_size = s->direct && s->lbs > 512 ? (int)s->lbs : 512;
    return 0;
}

static bool file_range_ok(struct service *s, double off, double len)
{
    return off >= 0 && len >= 0 && off == (double)(uint64_t)off && len == (double)(uint64_t)len && off + len <= s->size;
}

/* True when an O_DIRECT transfer of these segments needs no bounce (always, for a buffered fd). */
static bool dio_aligned(const struct service *s, const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++)
        if ((uintptr_t)iov[i].iov_base % s->mem_align || iov[i].iov_len % s->lbs) return false;
    return true;
}

/* Plain transfer of all segments at `off`, restarting after short transfers and EINTR. */
static int rw_all(int fd, bool write, uint64_t off, const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            ssize_t k = write ? pwrite(fd, p, left, (off_t)off) : pread(fd, p, left, (off_t)off);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) return k < 0 ? -errno : -EIO; /* short read past EOF */
            p += k; left -= (size_t)k; off += (uint64_t)k;
        }
    }
    return 0;
}

/* A misaligned O_DIRECT transfer, synchronously through one aligned buffer, a chunk at a time. */
static int bounce_rw(struct service *s, bool write, uint64_t off, const struct iovec *iov, int n)
{
    enum { CHUNK = 1 << 20 };
    static uint8_t buf[CHUNK] __attribute__((aligned(4096)));
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    s->sync_bounced++;
    s->sync_bounced_bytes += total;
    int seg = 0;
    size_t seg_pos = 0;
    for (size_t done = 0; done < total;) {
        size_t len = total - done < CHUNK ? total - done : CHUNK; /* a multiple of lbs: total and CHUNK are */
        struct iovec b = { buf, len };
        if (!write) {
            int r = rw_all(s->fd, false, off + done, &b, 1);
            if (r < 0) return r;
        }
        for (size_t p = 0; p < len;) { /* gather into / scatter from the chunk */
            size_t t = iov[seg].iov_len - seg_pos < len - p ? iov[seg].iov_len - seg_pos : len - p;
            uint8_t *w = (uint8_t *)iov[seg].iov_base + seg_pos;
            if (write) memcpy(buf + p, w, t);
            else memcpy(w, buf + p, t);
            p += t;
            seg_pos += t;
            if (seg_pos == iov[seg].iov_len) { seg++; seg_pos = 0; }
        }
        if (write) {
            int r = rw_all(s->fd, true, off + done, &b, 1);
            if (r < 0) return r;
        }
        done += len;
    }
    return 0;
}

/* One synchronous transfer (any segments), with O_DIRECT's checks and bounce. */
static int transfer(struct service *s, bool write, uint64_t off, const struct iovec *iov, int n)
{
    if (!s->direct || dio_aligned(s, iov, n)) return rw_all(s->fd, write, off, iov, n);
    return bounce_rw(s, write, off, iov, n);
}

static int storage_rw(int h, bool write, double foff, double woff, double len)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s) return -EBADF;
    if (!bh_window_range_ok(woff, len)) return -EFAULT;
    if (write && s->read_only) return -EROFS;
    if (!file_range_ok(s, foff, len)) return -EIO;
    if (((uint64_t)foff | (uint64_t)len) % s->lbs) return -EINVAL;
    /* The frontend may change these bytes while we copy: that is its own data race, and only ever
     * affects the bytes it asked us to write. */
    struct iovec v = { bh_win.base + (size_t)woff, (size_t)len };
    return transfer(s, write, (uint64_t)foff, &v, 1);
}

int bh_storage_read(int h, double foff, double woff, double len) { return storage_rw(h, false, foff, woff, len); }
int bh_storage_write(int h, double foff, double woff, double len) { return storage_rw(h, true, foff, woff, len); }

int bh_storage_submit(int h, double tag, double op, double foff, const uint32_t *ranges, double n)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s || !s->aio) return -EBADF;
    if (!(tag >= 0 && tag <= 0x7fffffff) || tag != (double)(uint32_t)tag) return -EINVAL;
    if (op == BH_AIO_FLUSH) return bh_aio_submit(s->aio, (uint32_t)tag, BH_AIO_FLUSH, 0, NULL, 0, false);
    if (op != BH_AIO_READ && op != BH_AIO_WRITE) return -EINVAL;
    bool write = op == BH_AIO_WRITE;
    if (!(n >= 1 && n <= BH_AIO_MAX_SEGS) || n != (double)(int)n || !ranges) return -EINVAL;
    if (write && s->read_only) return -EROFS;
    struct iovec iov[BH_AIO_MAX_SEGS];
    double total = 0;
    for (int i = 0; i < (int)n; i++) {
        double o = ranges[2 * i], l = ranges[2 * i + 1];
        if (!bh_window_range_ok(o, l)) return -EFAULT;
        iov[i].iov_base = bh_win.base + (size_t)o;
        iov[i].iov_len = (size_t)l;
        total += l;
    }
    if (!file_range_ok(s, foff, total)) return -EIO;
    if (((uint64_t)foff | (uint64_t)total) % s->lbs) return -EINVAL;
    bool bounce = s->direct && !dio_aligned(s, iov, (int)n);
    int r = bh_aio_submit(s->aio, (uint32_t)tag, (int)op, (uint64_t)foff, iov, (int)n, bounce);
    if (r != -ENOBUFS) return r;
    /* Bounce memory in flight is at its cap: this one is bounced synchronously, its completion queued. */
    return bh_aio_post(s->aio, (uint32_t)tag, (int)op, bounce_rw(s, write, (uint64_t)foff, iov, (int)n));
}

int bh_storage_complete(int h, int32_t *out, int max)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s || !s->aio) return -EBADF;
    return bh_aio_complete(s->aio, out, max);
}

int bh_storage_cancel(int h, double tag)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s || !s->aio) return -EBADF;
    if (!(tag >= 0 && tag <= 0x7fffffff)) return -ENOENT;
    return bh_aio_cancel(s->aio, (uint32_t)tag);
}

void bh_storage_flush_submissions(void)
{
    for (int h = 0; h < BH_MAX_SERVICES; h++)
        if (svc[h].used && svc[h].kind == BH_SVC_STORAGE && svc[h].aio) bh_aio_flush(svc[h].aio);
}

void bh_storage_wake_ready(void)
{
    for (int h = 0; h < BH_MAX_SERVICES; h++)
        if (svc[h].used && svc[h].kind == BH_SVC_STORAGE && svc[h].aio && bh_aio_ready(svc[h].aio)) bh_aio_wake(svc[h].aio);
}

uint32_t bh_storage_take_ready(void)
{
    uint32_t due = 0;
    for (int h = 0; h < BH_MAX_SERVICES; h++)
        if (svc[h].used && svc[h].kind == BH_SVC_STORAGE && svc[h].aio && bh_aio_ready(svc[h].aio)) due |= 1u << h;
    return due;
}

char *bh_storage_stats(void)
{
    size_t cap = 256 + BH_MAX_SERVICES * 512, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    n += (size_t)snprintf(out + n, cap - n, "{");
    bool first = true;
    for (int h = 0; h < BH_MAX_SERVICES; h++) {
        struct service *s = &svc[h];
        if (!s->used || s->kind != BH_SVC_STORAGE) continue;
        struct bh_aio_counters z = { 0 };
        const struct bh_aio_counters *c = s->aio ? bh_aio_counters(s->aio) : &z;
        n += (size_t)snprintf(out + n, cap - n,
                              "%s\"%s\":{\"io\":\"%s\",\"engine\":\"%s\",\"direct\":%s,\"blockSize\":%u,\"submitted\":%lu,\"completed\":%lu,"
                              "\"cancelled\":%lu,\"errors\":%lu,\"peakInFlight\":%d,\"bounced\":%lu,\"bouncedBytes\":%lu}",
                              first ? "" : ",", s->name, s->aio ? "async" : "sync", s->aio ? bh_aio_engine(s->aio) : "none",
                              s->direct ? "true" : "false", s->direct ? s->lbs : 512, c->submitted, c->completed, c->cancelled, c->errors, c->peak,
                              c->bounced + s->sync_bounced, c->bounced_bytes + s->sync_bounced_bytes);
        first = false;
    }
    snprintf(out + n, cap - n, "}");
    return out;
}

int bh_storage_flush(int h)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s) return -EBADF;
    if (s->read_only) return 0;
    return fdatasync(s->fd) < 0 ? -errno : 0;
}

void bh_storage_flush_all(void)
{
    for (int h = 0; h < BH_MAX_SERVICES; h++)
        if (svc[h].used && svc[h].kind == BH_SVC_STORAGE && !svc[h].read_only) fdatasync(svc[h].fd);
}

static int write_zeroes(struct service *s, off_t off, size_t len)
{
    static const uint8_t zero[65536];
    while (len) {
        size_t n = len < sizeof zero ? len : sizeof zero;
        ssize_t w = pwrite(s->zero_fd, zero, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        off += w; len -= w;
    }
    return 0;
}

/* mode: the fallocate mode to try first; if the filesystem or device cannot, write zeroes (reads of
 * the range return zeroes either way, which is all the HAL promises). */
static int zero_range(int h, double foff, double len, int mode)
{
    struct service *s = get(h, BH_SVC_STORAGE);
    if (!s) return -EBADF;
    if (s->read_only) return -EROFS;
    if (!file_range_ok(s, foff, len)) return -EIO;
    if (len == 0) return 0;
    if (fallocate(s->fd, mode, (off_t)foff, (off_t)len) == 0) return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL && errno != ENODEV) return -errno;
    return write_zeroes(s, (off_t)foff, (size_t)len);
}

int bh_storage_discard(int h, double foff, double len)
{
    return zero_range(h, foff, len, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
}

int bh_storage_write_zeroes(int h, double foff, double len)
{
    return zero_range(h, foff, len, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
}

/* --- stream ---------------------------------------------------------------------------------- */

/* A private non-blocking description of an inherited fd: O_NONBLOCK on a dup would change the
 * parent's terminal or pipe too. /proc/self/fd reopens pipes, ttys and files; sockets cannot be
 * reopened, so they get MSG_DONTWAIT-free O_NONBLOCK on a dup as a last resort. */
static int private_nonblock(int fd, int flags)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int nfd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (nfd >= 0) return nfd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (nfd >= 0) fcntl(nfd, F_SETFL, fcntl(nfd, F_GETFL) | O_NONBLOCK);
    return nfd;
}

static bool stream_event(int fd, uint32_t events, int h);

static void watch(int fd, uint32_t events, int h) { bh_event_watch(fd, events, stream_event, h); }

static void stream_watch(int h)
{
    struct service *s = &svc[h];
    if (s->listen_fd >= 0 && s->in_fd < 0) { watch(s->listen_fd, EPOLLIN, h); return; }
    if (s->in_fd >= 0) {
        uint32_t ev = s->in_armed ? EPOLLIN : 0;
        if (s->want_out && s->out_fd == s->in_fd) ev |= EPOLLOUT;
        watch(s->in_fd, ev, h);
    }
    if (s->out_fd >= 0 && s->out_fd != s->in_fd) watch(s->out_fd, s->want_out ? EPOLLOUT : 0, h);
}

int bh_stream_open(const char *name, const char *backing)
{
    const char *ov = bh_services_override_for(name);
    if (ov) backing = ov;
    if (!backing || !strcmp(backing, "memory")) backing = "null"; /* no host memory stream natively */
    int h = alloc(BH_SVC_STREAM, name);
    if (h < 0) return h;
    struct service *s = &svc[h];
    s->in_armed = true;
    if (!strcmp(backing, "null")) {
        s->backing = ST_NULL;
    } else if (!strcmp(backing, "stdio")) {
        s->backing = ST_STDIO;
        s->in_fd = private_nonblock(0, O_RDONLY);
        s->out_fd = private_nonblock(1, O_WRONLY);
    } else if (!strcmp(backing, "pty")) {
        s->backing = ST_PTY;
        int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 || grantpt(fd) < 0 || unlockpt(fd) < 0) goto fail;
        s->in_fd = s->out_fd = fd;
        /* Hold the slave open ourselves: a master whose slave is closed reports HUP forever. */
        if (open(ptsname(fd), O_RDWR | O_NOCTTY | O_CLOEXEC) < 0) goto fail;
        bh_log(BH_LOG_INFO, "stream %s: pty %s", name, ptsname(fd));
    } else if (!strncmp(backing, "unix:", 5)) {
        s->backing = ST_UNIX;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(backing + 5) >= sizeof sa.sun_path) { errno = ENAMETOOLONG; goto fail; }
        strcpy(sa.sun_path, backing + 5);
        unlink(sa.sun_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) goto fail;
        s->listen_fd = fd;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) goto fail;
        bh_log(BH_LOG_INFO, "stream %s: listening on %s", name, sa.sun_path);
    } else {
        bh_log(BH_LOG_ERROR, "stream %s: unknown backing '%s' (stdio, null, pty, unix:PATH)", name, backing);
        s->used = false;
        return -EINVAL;
    }
    stream_watch(h);
    return h;
fail:;
    int e = errno;
    bh_log(BH_LOG_ERROR, "stream %s (%s): %s", name, backing, strerror(e));
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->in_fd >= 0) close(s->in_fd);
    s->used = false;
    return -e;
}

static void stream_hangup(int h)
{
    struct service *s = &svc[h];
    if (s->backing == ST_UNIX && s->in_fd >= 0) { /* client left: accept the next one */
        watch(s->in_fd, 0, h);
        close(s->in_fd);
        s->in_fd = s->out_fd = -1;
        s->want_out = false;
    } else if (s->backing == ST_STDIO && s->in_fd >= 0) { /* stdin closed: output goes on */
        watch(s->in_fd, 0, h);
        close(s->in_fd);
        s->in_fd = -1;
        return;
    }
    stream_watch(h);
}

int bh_stream_write(int h, double woff, double len)
{
    struct service *s = get(h, BH_SVC_STREAM);
    if (!s) return -EBADF;
    if (!bh_window_range_ok(woff, len)) return -EFAULT;
    if (s->backing == ST_NULL) return (int)len;
    if (s->out_fd < 0) return (int)len; /* nobody attached: console output is dropped, not queued */
    if (len > 1 << 20) len = 1 << 20;
    ssize_t n = write(s->out_fd, bh_win.base + (size_t)woff, (size_t)len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) n = 0;
        else if (errno == EPIPE || errno == ECONNRESET || errno == EIO) { stream_hangup(h); return (int)len; }
        else return -errno;
    }
    if (n < len && !s->want_out) { s->want_out = true; stream_watch(h); }
    return (int)n;
}

int bh_stream_read(int h, double woff, double maxlen)
{
    struct service *s = get(h, BH_SVC_STREAM);
    if (!s) return -EBADF;
    if (!bh_window_range_ok(woff, maxlen)) return -EFAULT;
    if (s->in_fd < 0 || maxlen == 0) return 0;
    if (!s->in_armed) { s->in_armed = true; stream_watch(h); }
    if (maxlen > 1 << 20) maxlen = 1 << 20;
    ssize_t n = read(s->in_fd, bh_win.base + (size_t)woff, (size_t)maxlen);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (n == 0 || (n < 0 && (errno == EIO || errno == ECONNRESET))) { stream_hangup(h); return 0; }
    if (n < 0) return -errno;
    return (int)n;
}

/* A stream fd is ready (event.c calls this from the loop); returns true when the firmware should hear
 * of it (onService). Input is reported once, then unwatched until the firmware reads again: a firmware
 * that has no buffers for console input does not make the loop spin, and nothing is queued on our side. */
static bool stream_event(int fd, uint32_t events, int h)
{
    struct service *s = get(h, BH_SVC_STREAM);
    bool notify = false;
    if (!s) return false;
    if (fd == s->listen_fd) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) return false;
        if (s->in_fd >= 0) { close(c); return false; } /* one client at a time */
        watch(fd, 0, h);
        s->in_fd = s->out_fd = c;
        s->in_armed = true;
        stream_watch(h);
        return true; /* room appeared */
    }
    if ((events & EPOLLOUT) && s->want_out) { s->want_out = false; notify = true; }
    if ((events & EPOLLIN) && s->in_armed) { s->in_armed = false; notify = true; }
    if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) { stream_hangup(h); return notify; }
    stream_watch(h);
    return notify;
}

/* --- entropy --------------------------------------------------------------------------------- */

int bh_entropy_open(const char *name)
{
    return alloc(BH_SVC_ENTROPY, name);
}

int bh_entropy_read(int h, double woff, double len)
{
    if (!get(h, BH_SVC_ENTROPY)) return -EBADF;
    if (!bh_window_range_ok(woff, len)) return -EFAULT;
    uint8_t *p = bh_win.base + (size_t)woff;
    size_t left = (size_t)len;
    while (left) {
        ssize_t n = getrandom(p, left, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        p += n; left -= n;
    }
    return (int)len;
}

/* --- packet ---------------------------------------------------------------------------------- */

/* A handle in the same numbering as the other services; the port itself lives in packet.c. */
int bh_packet_open(const char *name, const char *sw, const char *tap)
{
    int h = alloc(BH_SVC_PACKET, name);
    if (h < 0) return h;
    int r = bh_packet_attach(h, name, sw, tap);
    if (r < 0) { svc[h].used = false; return r; }
    return h;
}

/* --- vsock ------------------------------------------------------------------------------------ */

/* A handle in the same numbering as the other services; the connections live in vsock.c. */
int bh_vsock_open(const char *name, const char *uds)
{
    const char *ov = bh_services_override_for(name);
    if (ov) uds = ov;
    int h = alloc(BH_SVC_VSOCK, name);
    if (h < 0) return h;
    int r = bh_vsock_attach(h, name, uds);
    if (r < 0) { svc[h].used = false; return r; }
    return h;
}

/* --- i2c, gpio: handles in this numbering, the buses and lines in i2c.c and gpio.c ------------- */

int bh_i2c_open(const char *name, const struct bh_i2c_target_cfg *cfg, int n)
{
    int h = alloc(BH_SVC_I2C, name);
    if (h < 0) return h;
    int r = bh_i2c_attach(h, name, cfg, n);
    if (r < 0) { svc[h].used = false; return r; }
    return h;
}

int bh_gpio_open(const char *name, const char *const *names, int n, const char *control)
{
    const char *ov = bh_services_override_for(name);
    int h = alloc(BH_SVC_GPIO, name);
    if (h < 0) return h;
    int r = bh_gpio_attach(h, name, names, n, ov ? ov : control);
    if (r < 0) { svc[h].used = false; return r; }
    return h;
}
