/*
 * The peer side of QEMU's ivshmem client-server protocol (docs/specs/ivshmem-spec.txt):
 * every message is one little-endian int64, optionally carrying one fd by SCM_RIGHTS.
 *   version (0), our id, -1 + shm fd, then per existing peer N x (id + eventfd),
 *   then N x (our id + eventfd) for our own vectors; later: id + fd (peer joined, one per
 *   vector) or id without fd (peer left).
 * Shared by the firmware and the node addon. Memory is bounded: at most BH_MAX_PEERS peers and
 * BH_MAX_VECTORS vectors each are remembered; extra fds are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "ivshmem-client.h"

/* Receives up to the rest of one 8-byte message; *fd gets an attached descriptor. Returns bytes
 * read (>0), 0 on EOF, -1 with errno. Reading exactly what a message needs keeps SCM_RIGHTS
 * attached to the right message: the kernel never merges data across an fd boundary. */
static ssize_t recv_part(int sock, uint8_t *buf, size_t want, int *fd, int flags)
{
    struct iovec iov = { buf, want };
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * 4)]; } cm;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b };
    ssize_t n;
    do n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[4];
        memcpy(fds, CMSG_DATA(c), sizeof(int) * (nfd > 4 ? 4 : nfd));
        for (int i = 0; i < nfd && i < 4; i++) {
            if (*fd < 0) *fd = fds[i];
            else close(fds[i]); /* protocol allows one fd per message: drop extras */
        }
    }
    return n;
}

struct ivs_peer *ivs_find(struct ivs_client *c, int id)
{
    for (int i = 0; i < BH_MAX_PEERS; i++)
        if (c->peers[i].id == id) return &c->peers[i];
    return NULL;
}

static void peer_drop(struct ivs_peer *p)
{
    for (int v = 0; v < p->nvec; v++) close(p->efd[v]);
    p->id = -1;
    p->nvec = 0;
}

/* One complete message: (value, fd or -1). */
static void handle(struct ivs_client *c, int64_t v, int fd)
{
    if (v < 0 || v > 0xFFFF) { /* -1 + fd is only valid in the handshake */
        if (fd >= 0) close(fd);
        return;
    }
    int id = (int)v;
    if (id == c->my_id) {
        if (fd < 0) return;
        if (c->my_nvec < BH_MAX_VECTORS) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            c->my_efd[c->my_nvec++] = fd;
        } else close(fd);
        return;
    }
    struct ivs_peer *p = ivs_find(c, id);
    if (fd < 0) { /* peer left */
        if (p) peer_drop(p);
        return;
    }
    if (!p) p = ivs_find(c, -1);
    if (!p || p->nvec >= BH_MAX_VECTORS) { close(fd); return; }
    p->id = id;
    p->efd[p->nvec++] = fd;
}

static int64_t le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return (int64_t)v;
}

/* Blocking read of one whole message (handshake only), with a timeout so a dead server cannot
 * hang us forever. */
static int read_msg(int sock, int64_t *v, int *fd)
{
    uint8_t b[8];
    size_t have = 0;
    *fd = -1;
    while (have < 8) {
        struct pollfd pfd = { sock, POLLIN, 0 };
        if (poll(&pfd, 1, 5000) <= 0) { errno = ETIMEDOUT; return -1; }
        ssize_t n = recv_part(sock, b + have, 8 - have, fd, 0);
        if (n == 0) { errno = ECONNRESET; return -1; }
        if (n < 0) return -1;
        have += n;
    }
    *v = le64(b);
    return 0;
}

int ivs_connect(struct ivs_client *c, const char *path, const char **why)
{
    memset(c, 0, sizeof *c);
    c->sock = c->shm_fd = c->my_id = c->rfd = -1;
    for (int i = 0; i < BH_MAX_PEERS; i++) c->peers[i].id = -1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) { *why = "socket path too long"; return -ENAMETOOLONG; }
    strcpy(sa.sun_path, path);
    c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->sock < 0) { *why = "socket"; return -errno; }
    if (connect(c->sock, (struct sockaddr *)&sa, sizeof sa) < 0) { *why = "connect"; goto fail; }
    int64_t v;
    int fd;
    if (read_msg(c->sock, &v, &fd) < 0) { *why = "reading the protocol version"; goto fail; }
    if (fd >= 0) close(fd);
    if (v != 0) { *why = "unsupported ivshmem protocol version"; errno = EPROTO; goto fail; }
    if (read_msg(c->sock, &v, &fd) < 0) { *why = "reading our peer id"; goto fail; }
    if (fd >= 0) close(fd);
    if (v < 0 || v > 0xFFFF) { *why = "bad peer id"; errno = EPROTO; goto fail; }
    c->my_id = (int)v;
    if (read_msg(c->sock, &v, &fd) < 0) { *why = "reading the shared memory fd"; goto fail; }
    if (v != -1 || fd < 0) { if (fd >= 0) close(fd); *why = "no shared memory fd"; errno = EPROTO; goto fail; }
    c->shm_fd = fd;
    /* Existing peers, then our own vectors. Our vectors are complete when a message for another id
     * (or nothing) follows; the server sends them last, so read until the socket is quiet. */
    for (;;) {
        if (read_msg(c->sock, &v, &fd) < 0) { *why = "reading the doorbell fds"; goto fail; }
        handle(c, v, fd);
        if (c->my_nvec > 0) {
            struct pollfd pfd = { c->sock, POLLIN, 0 };
            if (poll(&pfd, 1, 20) <= 0) break;
        }
    }
    fcntl(c->sock, F_SETFL, fcntl(c->sock, F_GETFL) | O_NONBLOCK);
    return 0;
fail:;
    int e = errno ? errno : EIO;
    ivs_close(c);
    return -e;
}

int ivs_process(struct ivs_client *c)
{
    for (int guard = 0; guard < 1024; guard++) { /* bounded per wake-up */
        ssize_t n = recv_part(c->sock, c->rbuf + c->rhave, 8 - c->rhave, &c->rfd, MSG_DONTWAIT);
        if (n == 0) return -1;
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        c->rhave += n;
        if (c->rhave < 8) continue;
        handle(c, le64(c->rbuf), c->rfd);
        c->rhave = 0;
        c->rfd = -1;
    }
    return 0;
}

int ivs_ring(struct ivs_client *c, int id, int vec)
{
    uint64_t one = 1;
    int rung = 0;
    for (int i = 0; i < BH_MAX_PEERS; i++) {
        struct ivs_peer *p = &c->peers[i];
        if (p->id < 0 || (id >= 0 && p->id != id) || vec >= p->nvec) continue;
        /* EAGAIN means the counter is saturated: the peer already has a pending doorbell. */
        if (write(p->efd[vec], &one, sizeof one) == sizeof one || errno == EAGAIN) rung++;
    }
    return rung;
}

bool ivs_drain(struct ivs_client *c, int vec)
{
    uint64_t v;
    if (vec >= c->my_nvec) return false;
    return read(c->my_efd[vec], &v, sizeof v) == sizeof v;
}

void ivs_close(struct ivs_client *c)
{
    for (int i = 0; i < BH_MAX_PEERS; i++)
        if (c->peers[i].id >= 0) peer_drop(&c->peers[i]);
    for (int v = 0; v < c->my_nvec; v++) close(c->my_efd[v]);
    c->my_nvec = 0;
    if (c->shm_fd >= 0) close(c->shm_fd);
    if (c->sock >= 0) close(c->sock);
    if (c->rfd >= 0) close(c->rfd);
    c->shm_fd = c->sock = c->rfd = -1;
}
