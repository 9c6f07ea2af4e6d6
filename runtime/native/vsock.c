/*
 * vsock services (docs/hal.md vsock rows, docs/vsock.md): the host side of virtio-vsock as unix
 * sockets, in Firecracker's convention:
 *
 *   guest -> host   a guest connection to host port P connects to the unix socket "<uds>_P" (a host
 *                   program listens there); nobody listening: the firmware answers the guest with RST
 *   host -> guest   host clients connect to "<uds>" (we listen, bound at boot) and send "CONNECT P\n";
 *                   once the guest accepted they read "OK <host port>\n", then the stream. A guest
 *                   that refuses, or a bad line, closes the client without a word.
 *
 * Connection ids are indexes of a table of VS_MAX_CONN (the firmware's VSOCK_MAX_CONNECTIONS).
 * Towards the host a send writes what the socket takes at once; the rest waits in a per-connection
 * ring of VS_HOST_BUFFER bytes (allocated while it holds bytes, freed when drained), flushed on
 * EPOLLOUT. A send that would overflow it takes nothing (-ENOBUFS): the firmware's credit keeps an
 * honest guest below it. Towards the guest nothing is buffered here: the firmware reads the socket
 * straight into the window when the guest has credit and an rx buffer.
 *
 * Readiness, as for streams: input is reported once (VSOCK_EV_READABLE) and watched again only after
 * the firmware read and found nothing, so a guest without credit never makes the loop spin. A host
 * end that closed entirely is reported once (VSOCK_EV_HUP) and its fd leaves the epoll set (a hung-up
 * fd is always ready); what it wrote before is still read. Every path in "<uds>_P" is built here
 * from the board's uds and a port number: the firmware never names a file.
 *
 * Syscalls after seccomp (seccomp.c): socket(AF_UNIX only), connect, accept4, shutdown, read, write,
 * close.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "services.h"

#define VS_MAX_CONN 32               /* firmware/services.ts VSOCK_HOST_CONNECTIONS */
#define VS_HOST_BUFFER (128 * 1024)  /* firmware/services.ts VSOCK_HOST_BUFFER */
#define VS_MAX_SERVICES 2               /* vsock services per board (Linux drives one device) */
#define VS_LINE_MAX 24               /* "CONNECT 4294967295\n" is 19 bytes */
#define VS_ACCEPT_BURST 8            /* host clients accepted per wake-up */

/* vsockPoll flags and vsockShutdown bits (firmware/services.ts) */
#define EV_READABLE 1
#define EV_WRITABLE 2
#define EV_HUP 4
#define EV_ACCEPT 8
#define SHUT_RD_BIT 1
#define SHUT_WR_BIT 2

enum cstate { C_FREE, C_LINE, C_AWAIT, C_OPEN };

struct vconn {
    enum cstate state;
    int fd;
    uint32_t port;      /* the guest port a host client asked for */
    uint8_t *buf;       /* ring of VS_HOST_BUFFER bytes towards the host, NULL while empty */
    uint32_t head, len;
    bool shut_wr_pending, shut_rd, in_armed, hup;
    uint32_t watched;   /* epoll events registered, 0: not in the set */
    uint32_t news;      /* EV_* not yet polled */
    char line[VS_LINE_MAX]; /* the CONNECT line so far (C_LINE) */
    uint8_t line_len;
};

struct vsvc {
    bool used;
    int h;
    char name[64];
    char uds[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int listen_fd;
    unsigned long refused, bad_lines;
    struct vconn c[VS_MAX_CONN];
};

static struct vsvc vs[VS_MAX_SERVICES];
static bool on_fd(int fd, uint32_t events, int h);

static struct vsvc *svc_of(int h)
{
    for (int i = 0; i < VS_MAX_SERVICES; i++)
        if (vs[i].used && vs[i].h == h) return &vs[i];
    return NULL;
}

static struct vconn *conn_of(int h, double id, struct vsvc **out)
{
    struct vsvc *s = svc_of(h);
    if (!s || !(id >= 0 && id < VS_MAX_CONN) || id != (double)(int)id) return NULL;
    struct vconn *c = &s->c[(int)id];
    if (c->state == C_FREE) return NULL;
    if (out) *out = s;
    return c;
}

/* Registers what `c` needs: EPOLLIN while armed, EPOLLOUT while bytes wait; a host client waiting for
 * the guest only for its hangup (edge-triggered: a half-closed client must not spin the loop). */
static void rewatch(struct vsvc *s, struct vconn *c)
{
    uint32_t ev = 0;
    if (c->hup) ev = 0;
    else if (c->state == C_LINE) ev = EPOLLIN;
    else if (c->state == C_AWAIT) ev = EPOLLRDHUP | EPOLLET;
    else {
        if (c->in_armed && !c->shut_rd) ev |= EPOLLIN;
        if (c->len) ev |= EPOLLOUT;
    }
    if (ev == c->watched) return;
    c->watched = ev;
    bh_event_watch(c->fd, ev, on_fd, s->h);
}

int bh_vsock_attach(int h, const char *name, const char *uds)
{
    struct vsvc *s = NULL;
    for (int i = 0; i < VS_MAX_SERVICES && !s; i++)
        if (!vs[i].used) s = &vs[i];
    if (!s) return -EMFILE;
    if (!uds || !*uds) {
        bh_log(BH_LOG_ERROR, "vsock %s: no uds path (the board's \"uds\", or --service %s=PATH)", name, name);
        return -EINVAL;
    }
    /* "<uds>_4294967295" must fit sun_path as well as "<uds>". */
    if (strlen(uds) + 11 >= sizeof s->uds) {
        bh_log(BH_LOG_ERROR, "vsock %s: uds path %s is too long for a unix socket with a _PORT suffix (%zu bytes at most)", name, uds, sizeof s->uds - 12);
        return -ENAMETOOLONG;
    }
    memset(s, 0, sizeof *s);
    s->h = h;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->uds, sizeof s->uds, "%s", uds);
    for (int i = 0; i < VS_MAX_CONN; i++) s->c[i].fd = -1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, uds);
    unlink(uds);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        bh_log(BH_LOG_ERROR, "vsock %s: cannot listen on %s: %s", name, uds, strerror(e));
        return -e;
    }
    s->listen_fd = fd;
    s->used = true;
    bh_event_watch(fd, EPOLLIN, on_fd, h);
    bh_log(BH_LOG_INFO, "vsock %s: host clients on %s (CONNECT <port>), guest connections to %s_<port>", name, uds, uds);
    return 0;
}

static void free_conn(struct vsvc *s, struct vconn *c)
{
    if (c->watched) bh_event_watch(c->fd, 0, NULL, s->h);
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static int free_slot(struct vsvc *s)
{
    for (int i = 0; i < VS_MAX_CONN; i++)
        if (s->c[i].state == C_FREE) return i;
    return -1;
}

/* --- host clients: accept, then the CONNECT line ------------------------------------------------ */

static void accept_clients(struct vsvc *s)
{
    for (int n = 0; n < VS_ACCEPT_BURST; n++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int i = free_slot(s);
        if (i < 0) { /* no room: the client sees its connection closed, as a refused CONNECT */
            s->refused++;
            close(fd);
            continue;
        }
        struct vconn *c = &s->c[i];
        c->state = C_LINE;
        c->fd = fd;
        rewatch(s, c);
    }
}

/* "CONNECT <decimal port>\n" exactly; returns false for anything else. */
static bool parse_line(const char *l, size_t n, uint32_t *port)
{
    static const char verb[] = "CONNECT ";
    if (n < sizeof verb + 1 || memcmp(l, verb, sizeof verb - 1) != 0 || l[n - 1] != '\n') return false;
    uint64_t v = 0;
    size_t digits = 0;
    for (size_t i = sizeof verb - 1; i < n - 1; i++, digits++) {
        if (l[i] < '0' || l[i] > '9' || digits == 10) return false;
        v = v * 10 + (uint64_t)(l[i] - '0');
    }
    if (digits == 0 || v > 0xffffffffu) return false;
    *port = (uint32_t)v;
    return true;
}

/*
 * Reads the CONNECT line a byte at a time, so that not one byte of the stream behind it is taken (the
 * client may write data right after the line). Bytes read so far are kept: a client that sends part of
 * a line and waits costs nothing until it sends more (no peek that would leave the socket readable).
 */
static bool read_line(struct vsvc *s, struct vconn *c)
{
    for (;;) {
        char ch;
        ssize_t n = read(c->fd, &ch, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n <= 0) break; /* EOF or an error before the line ended */
        c->line[c->line_len++] = ch;
        if (ch == '\n') {
            uint32_t port;
            if (!parse_line(c->line, c->line_len, &port)) break;
            c->port = port;
            c->state = C_AWAIT;
            c->news |= EV_ACCEPT;
            rewatch(s, c);
            return true;
        }
        if (c->line_len == VS_LINE_MAX) break; /* no newline within the limit */
    }
    s->bad_lines++;
    bh_log(BH_LOG_DEBUG, "vsock %s: a host client sent no valid CONNECT line; closed", s->name);
    free_conn(s, c);
    return false;
}

/* --- towards the host: the ring ------------------------------------------------------------------- */

/* Writes buffered bytes while the socket takes them; false when the host end is gone. */
static bool flush(struct vconn *c)
{
    while (c->len) {
        uint32_t chunk = VS_HOST_BUFFER - c->head < c->len ? VS_HOST_BUFFER - c->head : c->len;
        ssize_t n = write(c->fd, c->buf + c->head, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        if (n <= 0) return false;
        c->head = (c->head + (uint32_t)n) % VS_HOST_BUFFER;
        c->len -= (uint32_t)n;
    }
    free(c->buf);
    c->buf = NULL;
    c->head = 0;
    if (c->shut_wr_pending) {
        c->shut_wr_pending = false;
        shutdown(c->fd, SHUT_WR);
    }
    return true;
}

/* --- events ----------------------------------------------------------------------------------------- */

/* event.c's callback for the listening socket and every connection: true when onService(h) is due. */
static bool on_fd(int fd, uint32_t events, int h)
{
    struct vsvc *s = svc_of(h);
    if (!s) return false;
    if (fd == s->listen_fd) {
        accept_clients(s);
        return false;
    }
    struct vconn *c = NULL;
    for (int i = 0; i < VS_MAX_CONN && !c; i++)
        if (s->c[i].state != C_FREE && s->c[i].fd == fd) c = &s->c[i];
    if (!c) return false;
    if (c->state == C_LINE) {
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) return read_line(s, c);
        return false;
    }
    uint32_t before = c->news;
    if (events & (EPOLLHUP | EPOLLERR)) {
        /* Entirely closed: report once, leave the set; what it wrote before can still be read. */
        c->hup = true;
        c->news |= EV_HUP | (c->state == C_OPEN ? EV_READABLE : 0);
    } else if (c->state == C_OPEN) {
        if ((events & EPOLLIN) && c->in_armed) {
            c->in_armed = false;
            c->news |= EV_READABLE;
        }
        if ((events & EPOLLOUT) && c->len) {
            uint32_t had = c->len;
            if (!flush(c)) {
                c->hup = true;
                c->news |= EV_HUP | EV_READABLE;
            }
            if (c->len < had) c->news |= EV_WRITABLE;
        }
    }
    rewatch(s, c);
    return c->news != before;
}

/* --- the HAL functions -------------------------------------------------------------------------------- */

int bh_vsock_connect(int h, double port)
{
    struct vsvc *s = svc_of(h);
    if (!s) return -EBADF;
    if (!(port >= 0 && port <= 4294967295.0) || port != (double)(uint32_t)port) return -EINVAL;
    int i = free_slot(s);
    if (i < 0) return -EMFILE;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s_%u", s->uds, (uint32_t)port);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        /* Nobody listening (ENOENT, ECONNREFUSED) or a backlog that is full (EAGAIN): refused. */
        return e == EAGAIN ? -ECONNREFUSED : -e;
    }
    struct vconn *c = &s->c[i];
    c->state = C_OPEN;
    c->fd = fd;
    c->in_armed = true;
    rewatch(s, c);
    return i;
}

int bh_vsock_established(int h, double id, double local_port)
{
    struct vsvc *s;
    struct vconn *c = conn_of(h, id, &s);
    if (!c) return -EBADF;
    if (c->state != C_AWAIT) return -EINVAL;
    char ok[24];
    int n = snprintf(ok, sizeof ok, "OK %u\n", (uint32_t)local_port);
    /* A fresh socket's send buffer takes a dozen bytes at once; anything else means the client left. */
    if (c->hup || write(c->fd, ok, (size_t)n) != n) return -EPIPE;
    c->state = C_OPEN;
    c->in_armed = true;
    rewatch(s, c);
    return 0;
}

int bh_vsock_send(int h, double id, double woff, double len)
{
    struct vsvc *s;
    struct vconn *c = conn_of(h, id, &s);
    if (!c) return -EBADF;
    if (!bh_window_range_ok(woff, len)) return -EFAULT;
    if (c->state != C_OPEN) return -ENOTCONN;
    if (c->hup || c->shut_wr_pending) return -EPIPE;
    size_t l = (size_t)len;
    if (c->len + l > VS_HOST_BUFFER) return -ENOBUFS; /* checked first: nothing is taken */
    const uint8_t *p = bh_win.base + (size_t)woff;
    if (c->len == 0) {
        while (l) {
            ssize_t n = write(c->fd, p, l);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n <= 0) return -EPIPE;
            p += n;
            l -= (size_t)n;
        }
        if (l == 0) return 0;
    }
    if (!c->buf && !(c->buf = malloc(VS_HOST_BUFFER))) return -ENOBUFS;
    for (size_t done = 0; done < l;) {
        uint32_t tail = (c->head + c->len) % VS_HOST_BUFFER;
        size_t chunk = VS_HOST_BUFFER - tail < l - done ? VS_HOST_BUFFER - tail : l - done;
        memcpy(c->buf + tail, p + done, chunk);
        c->len += (uint32_t)chunk;
        done += chunk;
    }
    rewatch(s, c);
    return (int)c->len;
}

int bh_vsock_recv(int h, double id, double woff, double maxlen)
{
    struct vsvc *s;
    struct vconn *c = conn_of(h, id, &s);
    if (!c) return -EBADF;
    if (!bh_window_range_ok(woff, maxlen)) return -EFAULT;
    if (c->state != C_OPEN) return -ENOTCONN;
    if (c->shut_rd) return -ESHUTDOWN;
    if (maxlen == 0) return 0;
    for (;;) {
        ssize_t n = read(c->fd, bh_win.base + (size_t)woff, (size_t)maxlen);
        if (n > 0) return (int)n;
        if (n == 0) return -ESHUTDOWN;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!c->in_armed) {
                c->in_armed = true; /* nothing now: the next bytes are reported */
                rewatch(s, c);
            }
            return 0;
        }
        return errno == ECONNRESET ? -ECONNRESET : -errno;
    }
}

int bh_vsock_shutdown(int h, double id, double how)
{
    struct vsvc *s;
    struct vconn *c = conn_of(h, id, &s);
    if (!c) return -EBADF;
    int b = (int)how;
    if (c->state != C_OPEN) return 0;
    if (b & SHUT_RD_BIT && !c->shut_rd) {
        c->shut_rd = true;
        shutdown(c->fd, SHUT_RD); /* the host program's writes now fail */
    }
    if (b & SHUT_WR_BIT) {
        if (c->len) c->shut_wr_pending = true; /* after the buffered bytes */
        else shutdown(c->fd, SHUT_WR);
    }
    rewatch(s, c);
    return 0;
}

int bh_vsock_close(int h, double id)
{
    struct vsvc *s;
    struct vconn *c = conn_of(h, id, &s);
    if (!c) return -EBADF;
    free_conn(s, c);
    return 0;
}

int bh_vsock_poll(int h, uint32_t *out, int max)
{
    struct vsvc *s = svc_of(h);
    if (!s) return -EBADF;
    int n = 0;
    for (int i = 0; i < VS_MAX_CONN && n < max; i++) {
        struct vconn *c = &s->c[i];
        if (c->state == C_FREE || !c->news) continue;
        out[3 * n] = (uint32_t)i;
        out[3 * n + 1] = c->news;
        out[3 * n + 2] = (c->news & EV_ACCEPT) ? c->port : c->len;
        c->news = 0;
        n++;
    }
    return n;
}

void bh_vsock_log_counters(int level)
{
    for (int i = 0; i < VS_MAX_SERVICES; i++)
        if (vs[i].used && (vs[i].refused || vs[i].bad_lines))
            bh_log(level, "vsock %s: %lu host clients refused (no room), %lu bad CONNECT lines", vs[i].name, vs[i].refused, vs[i].bad_lines);
}
