/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bulkhead: what every Linux frontend transport shares over one ivshmem
 * window (bulkhead_window.c, built as the library module bulkhead_window.ko):
 * the ivshmem-doorbell PCI plumbing (BAR0 registers, BAR2 window, peer id,
 * one interrupt vector), the checks of the window header that do not depend
 * on the transport, and the pool allocator with the dma_map_ops that bounce
 * every buffer a virtio driver maps into the window.
 *
 * The transports (bulkhead_ivshmem.c: virtio-msg over FIFOs,
 * bulkhead_regblock.c: the Jailhouse-style register block) build on it; a
 * fourth would too. The device's driver data must point at the transport's
 * state, whose first member is its struct bh_pool: the DMA operations find
 * the pool from the struct device they are called for.
 */
#ifndef BULKHEAD_WINDOW_H
#define BULKHEAD_WINDOW_H

#include <linux/types.h>
#include <linux/spinlock.h>
#include <linux/atomic.h>
#include <linux/pci.h>
#include <linux/dma-map-ops.h>

#include "bulkhead_msg.h"

#define BH_GRANULE_SHIFT	6	/* pool allocation unit: 64 bytes */
#define BH_GRANULE		(1u << BH_GRANULE_SHIFT)
#define BH_MIN_POOL		(64 * 1024)

struct bh_pool_map {
	void *cpu;		/* the driver's buffer */
	u32 size;		/* 0 = not the start of a mapping */
	u8 dir;
	u8 coherent;
};

struct bh_pool;

/* What a transport may add to the DMA operations (each optional). */
struct bh_pool_hooks {
	/* false refuses new mappings (e.g. while requests in flight are being failed) */
	bool (*may_map)(struct bh_pool *p);
	/* before every new streaming mapping */
	void (*before_map)(struct bh_pool *p);
	/* the driver unmaps the streaming mapping that starts at granule @pos */
	void (*unmapped)(struct bh_pool *p, u32 pos);
};

/* The frontend-managed pool of a window: vrings and bounce buffers. */
struct bh_pool {
	struct device *dev;	/* for log lines */
	u8 *win;		/* the mapped window */
	u32 pool_off;		/* [pool_off, pool_off + pool_size) of the window */
	u32 pool_size;
	size_t max_map;		/* largest single streaming mapping */
	u32 data_align;		/* streaming mappings of at least this size start on a multiple of it */
	const struct bh_pool_hooks *hooks;	/* the transport's, or NULL */
	spinlock_t lock;
	unsigned long *map;	/* one bit per granule */
	struct bh_pool_map *maps;	/* per granule: the mapping starting there */
	u32 units;
	u32 hint;
	atomic_t outstanding;
};

/* One ivshmem-doorbell device (QEMU 1af4:1110) as a transport uses it. */
struct bh_ivshmem {
	struct pci_dev *pdev;
	void __iomem *regs;	/* BAR0 */
	u8 *win;		/* BAR2, the shared window */
	u32 bar_len;
	u16 my_peer;		/* IVPosition */
	int irq;		/* -1: none, poll */
	bool msix;
};

/* The transport-independent part of a window header, read once and validated. */
struct bh_header {
	u32 magic, state;
	u32 window_size;
	u32 pool_off, pool_size;
	u32 generation, device_count;
	u32 transport;		/* BH_TRANSPORT_* */
	u16 backend_peer;
};

void bh_pool_setup(struct bh_pool *p, struct device *dev, const struct bh_pool_hooks *hooks);
int bh_pool_init(struct bh_pool *p, u8 *win, u32 pool_off, u32 pool_size, size_t max_map, u32 data_align);
void bh_pool_free(struct bh_pool *p);
u32 bh_pool_alloc(struct bh_pool *p, size_t size, u32 align);
void bh_pool_release(struct bh_pool *p, u32 off, size_t size);
long bh_pool_map_index(struct bh_pool *p, dma_addr_t off);
extern const struct dma_map_ops bh_pool_dma_ops;

int bh_ivshmem_open(struct pci_dev *pdev, struct bh_ivshmem *iv, const char *name);
void bh_ivshmem_ring(struct bh_ivshmem *iv, u16 peer, u16 vector);
const char *bh_read_header(const u8 *win, u32 bar_len, u16 my_peer, u32 transport,
			   u8 *copy, struct bh_header *h);
bool bh_range_ok(u32 off, u32 len, u32 limit);
const char *bh_virtio_id_name(u32 id);
bool bh_overlap(u32 a, u32 alen, u32 b, u32 blen);

#endif /* BULKHEAD_WINDOW_H */
