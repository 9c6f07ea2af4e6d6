/*
 * Packet services (docs/hal.md packet rows, docs/net.md): a learning Ethernet switch inside the
 * firmware process, and TAP devices as host ports on it. The node runtime's runtime/node/switch.ts
 * is the reference; this file has the same semantics so firmware/devices/net.ts runs unchanged.
 *
 *   switch   every packet service naming the same `switch` is a port of it. Source MACs are
 *            learned (SWITCH_MAC_TABLE, cleared when full); known unicast goes to its port, the rest
 *            floods. A device port queues at most PORT_QUEUE_FRAMES frames; beyond that frames are
 *            dropped and counted, never buffered. Delivering marks the port's handle pending; the
 *            loop calls bulkhead.onService(h) after the current call returned (never re-entrantly).
 *   checksum a frame keeps its NEEDS_CSUM metadata in the switch; a port whose consumer did not
 *            accept partial checksums (packetSetOffloads(h, 1)) gets a private completed copy,
 *            marked DATA_VALID.
 *   TAP      /dev/net/tun with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR and TUN_F_CSUM, opened at boot
 *            (before seccomp), non-blocking. The kernel reads and writes the virtio_net_hdr itself,
 *            so NEEDS_CSUM/DATA_VALID cross as flags (the TAP port accepts partial checksums); GSO
 *            is never enabled, so gso_type is always NONE (anything else is dropped). Frames from
 *            the TAP fd enter the switch from the event loop; frames towards the TAP are written at
 *            once, and a write the kernel refuses drops and counts (it never blocks the loop).
 *
 * Frames are malloc'd once per switch hop and shared (reference counted) when flooded; checksum
 * completion copies a shared frame first.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "services.h"

#define PKT_F_NEEDS_CSUM 1
#define PKT_F_DATA_VALID 2
#define PKT_F_MORE 0x100
#define PKT_MAX_FRAME (65535 + 14)
#define PORT_QUEUE_FRAMES 256
#define SWITCH_MAC_TABLE 1024
#define MAC_SLOTS 2048 /* open addressing, at most half full */
#define MAX_PORTS (2 * BH_MAX_SERVICES)
#define MAX_SWITCHES BH_MAX_SERVICES
#define VNET_HDR 10      /* struct virtio_net_hdr, as the TAP reads and writes it */
#define TAP_READ_BURST 64 /* frames taken from a TAP per wake-up */

struct frame {
    uint32_t refs, len;
    uint16_t flags, csum_start, csum_offset;
    uint8_t room[VNET_HDR]; /* the TAP's virtio_net_hdr goes right before the bytes: one write(2) */
    uint8_t data[];
};

struct counters {
    uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes, rx_dropped_queue_full, rx_dropped_link_down, tx_errors,
        csum_completed;
};

struct port {
    bool used;
    char name[64];
    int sw;
    int handle; /* service handle, -1 for a TAP */
    int tap_fd;
    int tap_port; /* a device port: the TAP its service named (its link follows it), else -1 */
    bool link_up, partial_csum;
    struct frame *q[PORT_QUEUE_FRAMES];
    unsigned head, count, rx_pos;
    uint8_t *tx;  /* gather buffer for MORE fragments (PKT_MAX_FRAME, allocated on first use) */
    uint32_t tx_len;
    struct counters c;
};

struct sw {
    char name[64];
    int ports[MAX_PORTS], n_ports;
    uint64_t mac_key[MAC_SLOTS]; /* MAC + 1 (0: empty slot) */
    uint8_t mac_port[MAC_SLOTS];
    unsigned mac_count;
    uint64_t forwarded, flooded, learned;
};

static struct port ports[MAX_PORTS];
static struct sw switches[MAX_SWITCHES];
static int n_switches;
static int port_of_handle[BH_MAX_SERVICES] = { [0 ... BH_MAX_SERVICES - 1] = -1 };

/* --- checksums and the flow hash (same arithmetic as switch.ts) ------------------------------- */

static uint32_t ones_sum(const uint8_t *b, size_t start, size_t end, uint64_t sum)
{
    size_t i = start;
    for (; i + 1 < end; i += 2) sum += (uint32_t)b[i] << 8 | b[i + 1];
    if (i < end) sum += (uint32_t)b[i] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint32_t)sum;
}

/* RFC 1071 over [csum_start, end), stored inverted at csum_start + csum_offset; 0 is sent as 0xffff
 * (CSUM_MANGLED_0, as Linux: for UDP a 0 means "no checksum"). Offsets were checked at send. */
static void complete_checksum(struct frame *f)
{
    uint32_t at = f->csum_start + f->csum_offset;
    uint16_t v = (uint16_t)~ones_sum(f->data, f->csum_start, f->len, 0);
    if (v == 0) v = 0xffff;
    f->data[at] = v >> 8;
    f->data[at + 1] = v & 0xff;
}

/* Symmetric over both directions of an IPv4/IPv6 TCP/UDP flow, 0 for other frames, < 2^31. */
static uint32_t flow_hash(const uint8_t *b, uint32_t len)
{
    if (len < 14) return 0;
    unsigned type = b[12] << 8 | b[13], proto, l4 = 0;
    uint32_t a = 0;
    if (type == 0x0800 && len >= 34) {
        unsigned ihl = (b[14] & 0x0f) * 4;
        proto = b[23];
        for (int i = 26; i < 34; i += 2) a += b[i] << 8 | b[i + 1]; /* unfolded, as switch.ts */
        if (ihl >= 20) l4 = 14 + ihl;
    } else if (type == 0x86dd && len >= 54) {
        proto = b[20];
        for (int i = 22; i < 54; i += 2) a += b[i] << 8 | b[i + 1];
        l4 = 54;
    } else {
        return 0;
    }
    uint32_t p = 0;
    if ((proto == 6 || proto == 17) && l4 > 0 && l4 + 4 <= len) p = (b[l4] << 8 | b[l4 + 1]) + (b[l4 + 2] << 8 | b[l4 + 3]);
    uint32_t h = (a ^ (p << 3) ^ (proto << 24)) * 0x9e3779b1u;
    h ^= h >> 15;
    return (h >> 1) ? (h >> 1) : 1;
}

/* --- frames and queues ------------------------------------------------------------------------ */

static struct frame *frame_new(uint32_t len)
{
    struct frame *f = malloc(sizeof *f + len);
    if (f) { f->refs = 1; f->len = len; f->flags = f->csum_start = f->csum_offset = 0; }
    return f;
}

static void frame_put(struct frame *f)
{
    if (f && --f->refs == 0) free(f);
}

static bool csum_offsets_ok(uint32_t len, unsigned start, unsigned offset)
{
    return (uint64_t)start + offset + 2 <= len;
}

/* Input or a link change: the consumer's onService is due (event.c). */
static void mark_pending(struct port *p)
{
    if (p->handle >= 0) bh_event_due(p->handle);
}

static void shift(struct port *p)
{
    frame_put(p->q[p->head]);
    p->q[p->head] = NULL;
    p->head = (p->head + 1) % PORT_QUEUE_FRAMES;
    p->count--;
    p->rx_pos = 0;
}

static void tap_write(struct port *p, struct frame *f);

/* Link down drops what is queued (counted) and tells the consumer (it reports STATUS). */
static void set_link(struct port *p, bool up)
{
    if (p->link_up == up) return;
    p->link_up = up;
    if (!up) {
        p->c.rx_dropped_link_down += p->count;
        while (p->count) shift(p);
    }
    mark_pending(p);
}

/* The switch hands a port a frame (takes a reference if queued). */
static void deliver(struct port *p, struct frame *f)
{
    if (!p->link_up) { p->c.rx_dropped_link_down++; return; }
    if (p->tap_fd >= 0) { tap_write(p, f); return; }
    if (p->count >= PORT_QUEUE_FRAMES) { p->c.rx_dropped_queue_full++; return; }
    f->refs++;
    p->q[(p->head + p->count) % PORT_QUEUE_FRAMES] = f;
    p->count++;
    mark_pending(p);
}

/* --- the learning switch ---------------------------------------------------------------------- */

static uint64_t mac_at(const uint8_t *b)
{
    return (uint64_t)b[0] << 40 | (uint64_t)b[1] << 32 | (uint64_t)b[2] << 24 | (uint64_t)b[3] << 16 | (uint64_t)b[4] << 8 | b[5];
}

static unsigned mac_slot(const struct sw *s, uint64_t key)
{
    unsigned i = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 53) % MAC_SLOTS;
    while (s->mac_key[i] && s->mac_key[i] != key) i = (i + 1) % MAC_SLOTS;
    return i;
}

static int mac_lookup(const struct sw *s, uint64_t mac)
{
    unsigned i = mac_slot(s, mac + 1);
    return s->mac_key[i] ? s->mac_port[i] : -1;
}

static void mac_learn(struct sw *s, uint64_t mac, int port)
{
    unsigned i = mac_slot(s, mac + 1);
    if (!s->mac_key[i]) {
        if (s->mac_count >= SWITCH_MAC_TABLE) {
            memset(s->mac_key, 0, sizeof s->mac_key);
            s->mac_count = 0;
            i = mac_slot(s, mac + 1);
        }
        s->mac_key[i] = mac + 1;
        s->mac_count++;
    }
    s->mac_port[i] = (uint8_t)port;
    s->learned++;
}

/* Learns the source and delivers to the destination port, or floods. Consumes the caller's reference. */
static void forward(int from, struct frame *f)
{
    struct sw *s = &switches[ports[from].sw];
    const uint8_t *d = f->data;
    if (f->len >= 14) {
        uint64_t src = mac_at(d + 6);
        if (!(d[6] & 1) && mac_lookup(s, src) != from) mac_learn(s, src, from);
        int to = d[0] & 1 ? -1 : mac_lookup(s, mac_at(d));
        if (to >= 0) {
            if (to != from) { s->forwarded++; deliver(&ports[to], f); }
        } else {
            s->flooded++;
            for (int i = 0; i < s->n_ports; i++)
                if (s->ports[i] != from) deliver(&ports[s->ports[i]], f);
        }
    }
    frame_put(f);
}

/* --- TAP ------------------------------------------------------------------------------------- */

static void tap_write(struct port *p, struct frame *f)
{
    uint8_t *h = f->room;
    memset(h, 0, VNET_HDR);
    h[0] = (uint8_t)(f->flags & (PKT_F_NEEDS_CSUM | PKT_F_DATA_VALID));
    if (f->flags & PKT_F_NEEDS_CSUM) {
        memcpy(h + 6, &f->csum_start, 2); /* host order = the TAP's (little-endian targets only) */
        memcpy(h + 8, &f->csum_offset, 2);
    }
    ssize_t n = write(p->tap_fd, h, VNET_HDR + f->len);
    if (n == (ssize_t)(VNET_HDR + f->len)) { p->c.rx_frames++; p->c.rx_bytes += f->len; return; }
    if (n < 0 && errno == EIO) p->c.rx_dropped_link_down++; /* interface down */
    else p->c.rx_dropped_queue_full++;                     /* EAGAIN, ENOBUFS, ENOMEM: the host is full */
}

/* The TAP device was deleted (or moved into a namespace that was deleted): the fd only reports
 * errors from now on. Stop watching it (level-triggered epoll would spin) and take the links of the
 * device ports behind it down. */
static void tap_gone(int port, int err)
{
    struct port *p = &ports[port];
    bh_log(BH_LOG_WARN, "packet %s: the TAP is gone (%s); its ports are down", p->name, strerror(err));
    bh_event_watch(p->tap_fd, 0, NULL, -1);
    set_link(p, false);
    for (int i = 0; i < MAX_PORTS; i++)
        if (ports[i].used && ports[i].tap_port == port) set_link(&ports[i], false);
}

/* The TAP is readable (event.c calls this from the loop): up to TAP_READ_BURST frames into the
 * switch (level-triggered epoll brings us back for the rest). Delivering marks the consumers due. */
static bool tap_event(int fd, uint32_t events, int port)
{
    static uint8_t buf[VNET_HDR + PKT_MAX_FRAME];
    struct port *p = &ports[port];
    if (!p->link_up) return false;
    for (int k = 0; k < TAP_READ_BURST; k++) {
        ssize_t n = read(p->tap_fd, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false; /* drained */
        if (n < 0) { tap_gone(port, errno); return false; }
        if (n < VNET_HDR + 14 || buf[1] != 0 /* gso_type NONE */) { p->c.tx_errors++; continue; }
        uint16_t cs, co;
        memcpy(&cs, buf + 6, 2);
        memcpy(&co, buf + 8, 2);
        uint32_t len = (uint32_t)n - VNET_HDR;
        uint16_t flags = buf[0] & (PKT_F_NEEDS_CSUM | PKT_F_DATA_VALID);
        if ((flags & PKT_F_NEEDS_CSUM) && !csum_offsets_ok(len, cs, co)) { p->c.tx_errors++; continue; }
        struct frame *f = frame_new(len);
        if (!f) { p->c.tx_errors++; continue; }
        memcpy(f->data, buf + VNET_HDR, len);
        f->flags = flags;
        if (flags & PKT_F_NEEDS_CSUM) { f->csum_start = cs; f->csum_offset = co; }
        p->c.tx_frames++;
        p->c.tx_bytes += len;
        forward(port, f);
    }
    return false;
}

static int tap_open(const char *ifname)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    int hdr = VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
        ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* --- ports ------------------------------------------------------------------------------------ */

static int switch_named(const char *name)
{
    for (int i = 0; i < n_switches; i++)
        if (!strcmp(switches[i].name, name)) return i;
    if (n_switches == MAX_SWITCHES) return -EMFILE;
    snprintf(switches[n_switches].name, sizeof switches[0].name, "%s", name);
    return n_switches++;
}

static int port_new(int sw, const char *name, int handle)
{
    struct sw *s = &switches[sw];
    for (int i = 0; i < MAX_PORTS; i++) {
        if (ports[i].used) continue;
        if (s->n_ports == MAX_PORTS) return -EMFILE;
        struct port *p = &ports[i];
        memset(p, 0, sizeof *p);
        p->used = true;
        snprintf(p->name, sizeof p->name, "%s", name);
        p->sw = sw;
        p->handle = handle;
        p->tap_fd = -1;
        p->tap_port = -1;
        p->link_up = true;
        s->ports[s->n_ports++] = i;
        return i;
    }
    return -EMFILE;
}

int bh_packet_attach(int h, const char *name, const char *sw_name, const char *tap)
{
    char own[24]; /* "tap:" + IFNAMSIZ */
    if (h < 0 || h >= BH_MAX_SERVICES) return -EBADF;
    if (tap && strlen(tap) >= IFNAMSIZ) return -ENAMETOOLONG;
    if (!sw_name) { /* a TAP with no switch named gets a switch of its own; otherwise sw0, as in node */
        snprintf(own, sizeof own, "tap:%s", tap ? tap : "");
        sw_name = tap ? own : "sw0";
    }
    int sw = switch_named(sw_name);
    if (sw < 0) return sw;
    int tap_port = -1;
    if (tap) {
        int fd = tap_open(tap);
        if (fd < 0) {
            bh_log(BH_LOG_ERROR, "packet %s: cannot open TAP %s: %s", name, tap, strerror(-fd));
            return fd;
        }
        char tname[24];
        snprintf(tname, sizeof tname, "tap:%s", tap);
        tap_port = port_new(sw, tname, -1);
        if (tap_port < 0) { close(fd); return tap_port; }
        ports[tap_port].tap_fd = fd;
        ports[tap_port].partial_csum = true; /* the kernel takes NEEDS_CSUM frames as they are */
        bh_event_watch(fd, EPOLLIN, tap_event, tap_port);
    }
    int p = port_new(sw, name, h);
    if (p < 0) return p;
    ports[p].tap_port = tap_port;
    port_of_handle[h] = p;
    bh_log(BH_LOG_DEBUG, "packet %s: port %d on switch %s%s%s", name, p, sw_name, tap ? ", TAP " : "", tap ? tap : "");
    return 0;
}

static struct port *get(int h)
{
    return h >= 0 && h < BH_MAX_SERVICES && port_of_handle[h] >= 0 ? &ports[port_of_handle[h]] : NULL;
}

/* --- the HAL ---------------------------------------------------------------------------------- */

int bh_packet_send(int h, double woff, double len, double flags_d, double cs_d, double co_d)
{
    struct port *p = get(h);
    if (!p) return -EBADF;
    if (!bh_window_range_ok(woff, len)) return -EFAULT;
    unsigned flags = flags_d >= 0 && flags_d < 65536 ? (unsigned)flags_d : 0;
    const uint8_t *src = bh_win.base + (size_t)woff;
    uint32_t n = (uint32_t)len;
    if (p->tx_len + (uint64_t)n > PKT_MAX_FRAME) {
        p->tx_len = 0;
        p->c.tx_errors++;
        return -EMSGSIZE;
    }
    if (flags & PKT_F_MORE) {
        if (!p->tx && !(p->tx = malloc(PKT_MAX_FRAME))) return -ENOMEM;
        memcpy(p->tx + p->tx_len, src, n);
        p->tx_len += n;
        return 0;
    }
    struct frame *f = frame_new(p->tx_len + n);
    if (!f) { p->tx_len = 0; return -ENOMEM; }
    if (p->tx_len) memcpy(f->data, p->tx, p->tx_len);
    memcpy(f->data + p->tx_len, src, n); /* the frontend may race on these bytes: only its own frame */
    p->tx_len = 0;
    if (!p->link_up) { frame_put(f); p->c.tx_errors++; return -ENETDOWN; }
    f->flags = flags & (PKT_F_NEEDS_CSUM | PKT_F_DATA_VALID);
    if (f->flags & PKT_F_NEEDS_CSUM) {
        bool ok = cs_d >= 0 && co_d >= 0 && cs_d < 65536 && co_d < 65536 && csum_offsets_ok(f->len, (unsigned)cs_d, (unsigned)co_d);
        if (!ok) { frame_put(f); p->c.tx_errors++; return -EINVAL; }
        f->csum_start = (uint16_t)cs_d;
        f->csum_offset = (uint16_t)co_d;
    }
    p->c.tx_frames++;
    p->c.tx_bytes += f->len;
    uint32_t hash = flow_hash(f->data, f->len);
    forward((int)(p - ports), f);
    return (int)hash;
}

/* The port of handle h (NULL: *err is -EBADF, or -ENETDOWN when its link is down) and in *at the queue
 * position of the frame k places behind the next one (k from JS: any double), -1 when there is none. A
 * frame abandoned half-read is dropped first. */
static struct port *queued_at(int h, double k, int *at, int *err)
{
    struct port *p = get(h);
    *err = !p ? -EBADF : !p->link_up ? -ENETDOWN : 0;
    if (*err) return NULL;
    if (p->rx_pos > 0) shift(p); /* a frame abandoned half-read is dropped */
    *at = k >= 0 && k < p->count && k == (double)(unsigned)k ? (int)((p->head + (unsigned)k) % PORT_QUEUE_FRAMES) : -1;
    return p;
}

/* The frame k places behind the next one (0: the next): [len, flags, csumStart, csumOffset, dstHi16,
 * dstLo32, flowHash]; 1, or 0 (no such frame), -ENETDOWN, -EBADF. Completes NEEDS_CSUM first unless
 * the port accepts partial checksums. */
int bh_packet_peek(int h, double out[7], double k)
{
    int at, err;
    struct port *p = queued_at(h, k, &at, &err);
    if (!p) return err;
    if (at < 0) return 0;
    struct frame *f = p->q[at];
    if ((f->flags & PKT_F_NEEDS_CSUM) && !p->partial_csum) {
        if (f->refs > 1) { /* shared with another port: complete a private copy */
            struct frame *c = frame_new(f->len);
            if (!c) return 0;
            memcpy(c, f, sizeof *f + f->len);
            c->refs = 1;
            frame_put(f);
            p->q[at] = f = c;
        }
        complete_checksum(f);
        f->flags = PKT_F_DATA_VALID;
        f->csum_start = f->csum_offset = 0;
        p->c.csum_completed++;
    }
    const uint8_t *d = f->data;
    out[0] = f->len;
    out[1] = f->flags;
    out[2] = f->csum_start;
    out[3] = f->csum_offset;
    out[4] = d[0] << 8 | d[1];
    out[5] = (double)((uint32_t)d[2] << 24 | d[3] << 16 | d[4] << 8 | d[5]);
    out[6] = flow_hash(d, f->len);
    return 1;
}

/* Moves the frame k places behind the next one to the front; the k frames it passes keep their order.
 * 1, or 0 (no such frame), -ENETDOWN, -EBADF. */
int bh_packet_promote(int h, double k)
{
    int at, err;
    struct port *p = queued_at(h, k, &at, &err);
    if (!p) return err;
    if (at < 0) return 0;
    struct frame *f = p->q[at];
    for (unsigned i = (unsigned)k; i > 0; i--)
        p->q[(p->head + i) % PORT_QUEUE_FRAMES] = p->q[(p->head + i - 1) % PORT_QUEUE_FRAMES];
    p->q[p->head] = f;
    return 1;
}

int bh_packet_recv(int h, double woff, double maxlen, double flags)
{
    struct port *p = get(h);
    if (!p) return -EBADF;
    if (!bh_window_range_ok(woff, maxlen)) return -EFAULT;
    if (!p->count) return 0;
    struct frame *f = p->q[p->head];
    uint32_t rest = f->len - p->rx_pos, max = (uint32_t)maxlen;
    bool partial = flags >= 0 && flags < 65536 && ((unsigned)flags & PKT_F_MORE);
    if (!partial && rest > max) { shift(p); return -EMSGSIZE; }
    uint32_t n = rest < max ? rest : max;
    memcpy(bh_win.base + (size_t)woff, f->data + p->rx_pos, n);
    p->rx_pos += n;
    if (p->rx_pos == f->len) {
        p->c.rx_frames++;
        p->c.rx_bytes += f->len;
        shift(p);
    }
    return (int)n;
}

int bh_packet_set_offloads(int h, double offloads)
{
    struct port *p = get(h);
    if (!p) return -EBADF;
    p->partial_csum = offloads >= 1 && offloads < 65536 && ((unsigned)offloads & 1);
    return 0;
}

/* One line per port and switch (at stop, and for tests that read counters from stderr). */
void bh_packet_log_counters(int level)
{
    for (int i = 0; i < MAX_PORTS; i++) {
        struct port *p = &ports[i];
        if (!p->used) continue;
        struct counters *c = &p->c;
        bh_log(level, "packet %s (switch %s): txFrames %llu txBytes %llu rxFrames %llu rxBytes %llu rxDroppedQueueFull %llu "
               "rxDroppedLinkDown %llu txErrors %llu csumCompleted %llu queued %u", p->name, switches[p->sw].name,
               (unsigned long long)c->tx_frames, (unsigned long long)c->tx_bytes, (unsigned long long)c->rx_frames,
               (unsigned long long)c->rx_bytes, (unsigned long long)c->rx_dropped_queue_full,
               (unsigned long long)c->rx_dropped_link_down, (unsigned long long)c->tx_errors,
               (unsigned long long)c->csum_completed, p->count);
    }
    for (int i = 0; i < n_switches; i++)
        bh_log(level, "switch %s: forwarded %llu flooded %llu learned %llu", switches[i].name,
               (unsigned long long)switches[i].forwarded, (unsigned long long)switches[i].flooded,
               (unsigned long long)switches[i].learned);
}
