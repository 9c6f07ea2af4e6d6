/*
 * --uio /dev/uioN: the window and the doorbells of an ivshmem-doorbell device seen from inside a VM,
 * for a backend partition that is itself a VM (docs/qemu.md, "Backend as a VM"). The device is bound
 * to runtime/native/linux/bulkhead_uio.ko, which exposes
 *   map 0  BAR0, the ivshmem registers: IVPosition (our peer id), Doorbell
 *   map 1  BAR2, the shared memory: the window
 *   read() the interrupt count (MSI-X vector 0: a peer rang our vector 0); poll() when it changed
 * so this is the --ivshmem attach without the server protocol: no peer list, and ringing a peer is a
 * register write of (peer << 16) | vector.
 *
 * Raising toFrontend rings vector 0 of the peer named in the header's frontendPeerId (0x42), read at
 * every raise: the only window field the C side reads. It is frontend-written, so it is used as a
 * doorbell target and nothing else; a wrong value rings a peer that does not exist (the device
 * ignores it) or nobody (0xFFFF, or ourselves).
 */
#include "bh.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define UIO_NAME "bulkhead-ivshmem-uio"
#define REG_IVPOSITION 8
#define REG_DOORBELL 12
#define HDR_FRONTEND_PEER_ID 0x42
#define NO_PEER 0xFFFF

static int uio_fd = -1;
static volatile uint32_t *regs;
static int my_id = -1;

/* /sys/class/uio/uioN/<rel>, one line */
static bool sysfs_read(const char *uio, const char *rel, char *buf, size_t len)
{
    char p[256];
    snprintf(p, sizeof p, "/sys/class/uio/%s/%s", uio, rel);
    FILE *f = fopen(p, "re");
    if (!f) return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (ok) buf[strcspn(buf, "\n")] = 0;
    return ok;
}

static unsigned long map_attr(const char *uio, int map, const char *attr)
{
    char rel[64], v[64];
    snprintf(rel, sizeof rel, "maps/map%d/%s", map, attr);
    if (!sysfs_read(uio, rel, v, sizeof v)) bh_die("--uio: cannot read /sys/class/uio/%s/%s", uio, rel);
    return strtoul(v, NULL, 0);
}

void bh_uio_attach(const char *dev, size_t window_size)
{
    const char *uio = strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev;
    char name[64];
    if (!sysfs_read(uio, "name", name, sizeof name))
        bh_die("--uio %s: no /sys/class/uio/%s (is bulkhead_uio.ko loaded and bound?)", dev, uio);
    if (strcmp(name, UIO_NAME) != 0) bh_die("--uio %s: the device is '%s', not %s", dev, name, UIO_NAME);
    uio_fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (uio_fd < 0) bh_die("--uio %s: %s", dev, strerror(errno));
    long pg = sysconf(_SC_PAGESIZE);

    unsigned long rsize = map_attr(uio, 0, "size"), roff = map_attr(uio, 0, "offset");
    if (rsize < roff + REG_DOORBELL + 4) bh_die("--uio %s: register map of %lu bytes is too small", dev, rsize);
    void *r = mmap(NULL, rsize, PROT_READ | PROT_WRITE, MAP_SHARED, uio_fd, 0 * pg);
    if (r == MAP_FAILED) bh_die("--uio %s: mmap registers: %s", dev, strerror(errno));
    regs = (volatile uint32_t *)((uint8_t *)r + roff);

    unsigned long wsize = map_attr(uio, 1, "size"), woff = map_attr(uio, 1, "offset");
    if (woff != 0) bh_die("--uio %s: the window BAR is not page aligned (offset %lu)", dev, woff);
    if (wsize < window_size) bh_die("window: shared memory is %lu bytes, the board needs %zu", wsize, window_size);
    void *w = mmap(NULL, window_size, PROT_READ | PROT_WRITE, MAP_SHARED, uio_fd, 1 * pg);
    if (w == MAP_FAILED) bh_die("--uio %s: mmap %zu bytes of the window: %s", dev, window_size, strerror(errno));
    bh_win.base = w;
    bh_win.map_size = window_size;
    bh_win.size = window_size;
    my_id = (int)(regs[REG_IVPOSITION / 4] & 0xffff);
}

int bh_uio_fd(void) { return uio_fd; }
int bh_uio_peer_id(void) { return my_id; }

/* true when the interrupt count moved since the last read (one read takes all of them) */
bool bh_uio_drain(void)
{
    uint32_t n;
    return uio_fd >= 0 && read(uio_fd, &n, sizeof n) == (ssize_t)sizeof n;
}

void bh_uio_ring(void)
{
    if (!regs) return;
    uint16_t fe = __atomic_load_n((uint16_t *)(bh_win.base + HDR_FRONTEND_PEER_ID), __ATOMIC_ACQUIRE);
    if (fe == NO_PEER || fe == my_id) return;
    /*
     * Everything stored into the window so far (FIFO slots and head, used rings) must be visible before
     * the frontend can take the doorbell's interrupt. BAR0 is device memory (UIO_MEM_PHYS: noncached);
     * on arm64 a device store is not ordered after earlier normal-memory stores, and bh_fence()'s
     * DMB ISH (which the transport does not even issue after the head) covers only inner-shareable
     * observers: so the barrier Linux's writel() puts before the same store (__iowmb, DMB OSHST).
     * x86 keeps stores in program order; the compiler still must not sink window stores below it.
     */
#if defined(__aarch64__)
    __asm__ __volatile__("dmb oshst" ::: "memory");
#else
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
    regs[REG_DOORBELL / 4] = (uint32_t)fe << 16; /* vector 0 */
}
