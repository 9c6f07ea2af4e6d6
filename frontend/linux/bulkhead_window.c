// SPDX-License-Identifier: GPL-2.0
/*
 * Bulkhead: the window library every frontend transport module builds on
 * (bulkhead_window.h): ivshmem-doorbell PCI plumbing, the transport-independent
 * window header checks, and the pool allocator with the dma_map_ops that
 * bounce every buffer into the window (the talk's "front-end changes": the
 * backend never sees guest memory outside the window, and every address it is
 * handed is a window offset).
 *
 * The window is written by another partition: the header is copied once into
 * private memory and validated there; the pool bookkeeping is private.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/io.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/bitmap.h>
#include <linux/dma-map-ops.h>
#include <linux/scatterlist.h>
#include <linux/virtio_ids.h>
#include <asm/unaligned.h>

#include "bulkhead_msg.h"
#include "bulkhead_window.h"

bool bh_range_ok(u32 off, u32 len, u32 limit)
{
	return off <= limit && len <= limit - off;
}
EXPORT_SYMBOL_GPL(bh_range_ok);

bool bh_overlap(u32 a, u32 alen, u32 b, u32 blen)
{
	return a < b + blen && b < a + alen;
}
EXPORT_SYMBOL_GPL(bh_overlap);

/* ------------------------------------------------------------------ */
/* ivshmem-doorbell                                                   */

/*
 * Claims BAR0 (registers) and BAR2 (the window), reads our peer id and
 * allocates one interrupt vector (MSI-X, else INTx, else none: the caller
 * polls). Resources are device-managed except the vector.
 */
int bh_ivshmem_open(struct pci_dev *pdev, struct bh_ivshmem *iv, const char *name)
{
	resource_size_t start, len;
	u32 pos;
	int err;

	iv->pdev = pdev;
	iv->irq = -1;
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0), name);
	if (err) {
		dev_err(&pdev->dev, "cannot claim BAR0 (%d)\n", err);
		return err;
	}
	iv->regs = pcim_iomap_table(pdev)[0];
	if (!(pci_resource_flags(pdev, 2) & IORESOURCE_MEM) || pci_resource_len(pdev, 2) < BH_MIN_POOL) {
		dev_err(&pdev->dev, "BAR2 (the shared window) missing or smaller than 64 KiB\n");
		return -ENODEV;
	}
	start = pci_resource_start(pdev, 2);
	len = pci_resource_len(pdev, 2);
	if (len > SZ_1G) {
		dev_err(&pdev->dev, "BAR2 of %llu bytes is larger than the 1 GiB we handle\n", (u64)len);
		return -ENODEV;
	}
	if (!devm_request_mem_region(&pdev->dev, start, len, name)) {
		dev_err(&pdev->dev, "cannot claim BAR2\n");
		return -EBUSY;
	}
	iv->win = devm_memremap(&pdev->dev, start, len, MEMREMAP_WB);
	if (IS_ERR(iv->win)) {
		dev_err(&pdev->dev, "cannot map BAR2 (%ld)\n", PTR_ERR(iv->win));
		return PTR_ERR(iv->win);
	}
	iv->bar_len = len;

	pos = ioread32(iv->regs + IVSHMEM_IV_POSITION);
	if (pos >= BH_PEER_NONE) {
		dev_err(&pdev->dev, "no ivshmem peer id (IVPosition %#x): is the ivshmem server running?\n",
			pos);
		return -ENODEV;
	}
	iv->my_peer = pos;

	pci_set_master(pdev);
	err = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_LEGACY);
	if (err < 0) {
		dev_warn(&pdev->dev, "no interrupt (MSI-X or INTx: %d): polling the window\n", err);
		iv->irq = -1;
	} else {
		iv->msix = pdev->msix_enabled;
		iv->irq = pci_irq_vector(pdev, 0);
	}
	return 0;
}
EXPORT_SYMBOL_GPL(bh_ivshmem_open);

/* Rings @vector of ivshmem peer @peer. */
void bh_ivshmem_ring(struct bh_ivshmem *iv, u16 peer, u16 vector)
{
	iowrite32(((u32)peer << 16) | vector, iv->regs + IVSHMEM_DOORBELL);
}
EXPORT_SYMBOL_GPL(bh_ivshmem_ring);

/* A virtio device ID for log lines. */
const char *bh_virtio_id_name(u32 id)
{
	switch (id) {
	case VIRTIO_ID_NET: return "net";
	case VIRTIO_ID_BLOCK: return "block";
	case VIRTIO_ID_CONSOLE: return "console";
	case VIRTIO_ID_RNG: return "rng";
	default: return "other";
	}
}
EXPORT_SYMBOL_GPL(bh_virtio_id_name);

/* ------------------------------------------------------------------ */
/* window header                                                      */

/*
 * Copies the header once into @copy (BH_HEADER_SIZE bytes, private) and
 * checks what every transport relies on: magic, version, state READY, the
 * transport the caller speaks, the window and pool inside BAR2, the pool
 * clear of the header, a backend peer id that is not ours. Returns NULL
 * when usable, else a reason for the log; @h is filled either way.
 */
const char *bh_read_header(const u8 *win, u32 bar_len, u16 my_peer, u32 transport,
			   u8 *copy, struct bh_header *h)
{
	u16 version, hsize;

	memcpy(copy, win, BH_HEADER_SIZE);	/* one read into private memory */
	virt_rmb();
	h->magic = get_unaligned_le32(copy + BH_HDR_MAGIC);
	h->state = get_unaligned_le32(copy + BH_HDR_BACKEND_STATE);
	version = get_unaligned_le16(copy + BH_HDR_VERSION);
	hsize = get_unaligned_le16(copy + BH_HDR_HEADER_SIZE);
	h->window_size = get_unaligned_le32(copy + BH_HDR_WINDOW_SIZE);
	h->pool_off = get_unaligned_le32(copy + BH_HDR_POOL_OFFSET);
	h->pool_size = get_unaligned_le32(copy + BH_HDR_POOL_SIZE);
	h->generation = get_unaligned_le32(copy + BH_HDR_BACKEND_GEN);
	h->device_count = get_unaligned_le32(copy + BH_HDR_DEVICE_COUNT);
	h->backend_peer = get_unaligned_le16(copy + BH_HDR_BACKEND_PEER);
	h->transport = get_unaligned_le32(copy + BH_HDR_TRANSPORT);

	if (h->magic != BH_MAGIC)
		return "bad magic";
	if (version != BH_VERSION)
		return "unsupported layout version";
	if (hsize != BH_HEADER_SIZE)
		return "bad headerSize";
	if (h->state != BH_BACKEND_READY)
		return "backend not READY";
	if (h->transport != transport)
		return "the window speaks another transport (header field transport)";
	if (get_unaligned_le32(copy + BH_HDR_TRANSPORT_REV) != BH_TRANSPORT_REVISION)
		return "unsupported transportRevision";
	if (h->window_size < BH_MIN_POOL || h->window_size > bar_len)
		return "windowSize larger than BAR2 or too small";
	if ((h->pool_off & (PAGE_SIZE - 1)) || h->pool_size < BH_MIN_POOL ||
	    !bh_range_ok(h->pool_off, h->pool_size, h->window_size))
		return "pool misaligned, too small or outside the window";
	if (bh_overlap(h->pool_off, h->pool_size, 0, BH_HEADER_SIZE))
		return "pool overlaps the header";
	if (h->backend_peer == BH_PEER_NONE || h->backend_peer == my_peer)
		return "bad backendPeerId";
	return NULL;
}
EXPORT_SYMBOL_GPL(bh_read_header);

/* ------------------------------------------------------------------ */
/* pool allocator and dma_map_ops                                     */

/* Once per device, before anything can call the DMA operations. */
void bh_pool_setup(struct bh_pool *p, struct device *dev, const struct bh_pool_hooks *hooks)
{
	p->dev = dev;
	p->hooks = hooks;
	spin_lock_init(&p->lock);
}
EXPORT_SYMBOL_GPL(bh_pool_setup);

/*
 * At attach: the pool is [@pool_off, @pool_off + @pool_size) of @win. Streaming mappings of at
 * least @data_align bytes (a power of two, BH_GRANULE..PAGE_SIZE) start on a multiple of it: a block
 * request's data then reaches a backend whose image is opened O_DIRECT aligned as the host wants it,
 * and is not bounced there again; smaller ones (headers, status bytes) keep the 64-byte granule.
 */
int bh_pool_init(struct bh_pool *p, u8 *win, u32 pool_off, u32 pool_size, size_t max_map, u32 data_align)
{
	unsigned long *map;
	struct bh_pool_map *maps;
	u32 units = pool_size >> BH_GRANULE_SHIFT;
	unsigned long flags;

	map = bitmap_zalloc(units, GFP_KERNEL);
	maps = vzalloc(array_size(units, sizeof(*maps)));
	if (!map || !maps) {
		bitmap_free(map);
		vfree(maps);
		return -ENOMEM;
	}
	spin_lock_irqsave(&p->lock, flags);
	p->win = win;
	p->pool_off = pool_off;
	p->pool_size = pool_size;
	p->max_map = max_map;
	p->data_align = data_align;
	p->units = units;
	p->map = map;
	p->maps = maps;
	p->hint = 0;
	atomic_set(&p->outstanding, 0);
	spin_unlock_irqrestore(&p->lock, flags);
	return 0;
}
EXPORT_SYMBOL_GPL(bh_pool_init);

/* At detach: forgets every allocation (the window is the backend's again). */
void bh_pool_free(struct bh_pool *p)
{
	unsigned long flags;
	unsigned long *map;
	struct bh_pool_map *maps;
	int left = atomic_read(&p->outstanding);

	if (left)
		dev_warn(p->dev, "%d pool allocations still outstanding at detach\n", left);
	spin_lock_irqsave(&p->lock, flags);
	map = p->map;
	maps = p->maps;
	p->map = NULL;
	p->maps = NULL;
	p->units = 0;
	spin_unlock_irqrestore(&p->lock, flags);
	bitmap_free(map);
	vfree(maps);
}
EXPORT_SYMBOL_GPL(bh_pool_free);

/* Returns a window offset (never 0: the pool starts after the header), or 0. */
u32 bh_pool_alloc(struct bh_pool *p, size_t size, u32 align)
{
	unsigned long flags, pos;
	u32 units, amask;

	if (!size || size > p->pool_size)
		return 0;
	units = DIV_ROUND_UP(size, BH_GRANULE);
	amask = align > BH_GRANULE ? (align >> BH_GRANULE_SHIFT) - 1 : 0;

	spin_lock_irqsave(&p->lock, flags);
	if (!p->map) {
		spin_unlock_irqrestore(&p->lock, flags);
		return 0;
	}
	pos = bitmap_find_next_zero_area(p->map, p->units, p->hint, units, amask);
	if (pos >= p->units)
		pos = bitmap_find_next_zero_area(p->map, p->units, 0, units, amask);
	if (pos >= p->units) {
		spin_unlock_irqrestore(&p->lock, flags);
		return 0;
	}
	bitmap_set(p->map, pos, units);
	p->hint = pos + units;
	if (p->hint >= p->units)
		p->hint = 0;
	spin_unlock_irqrestore(&p->lock, flags);
	atomic_inc(&p->outstanding);
	return p->pool_off + ((u32)pos << BH_GRANULE_SHIFT);
}
EXPORT_SYMBOL_GPL(bh_pool_alloc);

void bh_pool_release(struct bh_pool *p, u32 off, size_t size)
{
	unsigned long flags;
	u32 pos = (off - p->pool_off) >> BH_GRANULE_SHIFT;

	spin_lock_irqsave(&p->lock, flags);
	if (p->map && pos < p->units) {
		bitmap_clear(p->map, pos, min_t(u32, DIV_ROUND_UP(size, BH_GRANULE), p->units - pos));
		atomic_dec(&p->outstanding);
	}
	spin_unlock_irqrestore(&p->lock, flags);
}
EXPORT_SYMBOL_GPL(bh_pool_release);

/* The driver data of the device is the transport, whose first member is its pool. */
static struct bh_pool *dev_to_pool(struct device *dev)
{
	return dev_get_drvdata(dev);
}

/* the mapping that starts at @off: its granule index, or -1 */
long bh_pool_map_index(struct bh_pool *p, dma_addr_t off)
{
	u32 pos;

	if (off < p->pool_off || off >= (u64)p->pool_off + p->pool_size || (off & (BH_GRANULE - 1)))
		return -1;
	pos = (off - p->pool_off) >> BH_GRANULE_SHIFT;
	if (pos >= p->units || !p->maps || !p->maps[pos].size)
		return -1;
	return pos;
}
EXPORT_SYMBOL_GPL(bh_pool_map_index);

static dma_addr_t bh_map_page(struct device *dev, struct page *page, unsigned long offset,
			      size_t size, enum dma_data_direction dir, unsigned long attrs)
{
	struct bh_pool *p = dev_to_pool(dev);
	void *cpu = page_address(page) + offset;
	u32 off, pos;

	if (!p || !p->maps || size > p->max_map)
		return DMA_MAPPING_ERROR;
	if (p->hooks && p->hooks->may_map && !p->hooks->may_map(p))
		return DMA_MAPPING_ERROR;
	if (p->hooks && p->hooks->before_map)
		p->hooks->before_map(p);
	off = bh_pool_alloc(p, size ? size : 1, size >= p->data_align ? p->data_align : BH_GRANULE);
	if (!off)
		return DMA_MAPPING_ERROR;
	pos = (off - p->pool_off) >> BH_GRANULE_SHIFT;
	p->maps[pos].cpu = cpu;
	p->maps[pos].size = size ? size : 1;
	p->maps[pos].dir = dir;
	p->maps[pos].coherent = 0;
	if ((dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL) && !(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		memcpy(p->win + off, cpu, size);
	return off;
}

static void bh_unmap_page(struct device *dev, dma_addr_t addr, size_t size,
			  enum dma_data_direction dir, unsigned long attrs)
{
	struct bh_pool *p = dev_to_pool(dev);
	long pos;
	struct bh_pool_map m;

	if (!p)
		return;
	pos = bh_pool_map_index(p, addr);
	if (pos < 0 || p->maps[pos].coherent) {
		dev_err_ratelimited(dev, "unmap of unknown DMA address %#llx\n", (u64)addr);
		return;
	}
	m = p->maps[pos];
	if (p->hooks && p->hooks->unmapped)
		p->hooks->unmapped(p, pos);
	if ((dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL) && !(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		memcpy(m.cpu, p->win + addr, min_t(size_t, size, m.size));
	p->maps[pos].size = 0;
	p->maps[pos].cpu = NULL;
	bh_pool_release(p, addr, m.size);
}

static int bh_map_sg(struct device *dev, struct scatterlist *sgl, int nents,
		     enum dma_data_direction dir, unsigned long attrs)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i) {
		sg->dma_address = bh_map_page(dev, sg_page(sg), sg->offset, sg->length, dir, attrs);
		if (sg->dma_address == DMA_MAPPING_ERROR)
			goto undo;
		sg_dma_len(sg) = sg->length;
	}
	return nents;
undo:
	{
		struct scatterlist *s;
		int j;

		for_each_sg(sgl, s, i, j)
			bh_unmap_page(dev, s->dma_address, s->length, dir,
				      attrs | DMA_ATTR_SKIP_CPU_SYNC);
	}
	return -ENOMEM;
}

static void bh_unmap_sg(struct device *dev, struct scatterlist *sgl, int nents,
			enum dma_data_direction dir, unsigned long attrs)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		bh_unmap_page(dev, sg->dma_address, sg->length, dir, attrs);
}

/* sync a sub-range of a mapping: find its start by walking back */
static void bh_sync(struct device *dev, dma_addr_t addr, size_t size, bool for_cpu)
{
	struct bh_pool *p = dev_to_pool(dev);
	u32 pos, start_off, rel;
	struct bh_pool_map *m;

	if (!p || !p->maps || addr < p->pool_off || addr >= (u64)p->pool_off + p->pool_size)
		return;
	pos = (addr - p->pool_off) >> BH_GRANULE_SHIFT;
	while (pos > 0 && !p->maps[pos].size)
		pos--;
	m = &p->maps[pos];
	start_off = p->pool_off + (pos << BH_GRANULE_SHIFT);
	rel = addr - start_off;
	if (!m->size || m->coherent || rel >= m->size)
		return;
	size = min_t(size_t, size, m->size - rel);
	if (for_cpu)
		memcpy(m->cpu + rel, p->win + addr, size);
	else
		memcpy(p->win + addr, m->cpu + rel, size);
}

static void bh_sync_for_cpu(struct device *dev, dma_addr_t addr, size_t size,
			    enum dma_data_direction dir)
{
	if (dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL)
		bh_sync(dev, addr, size, true);
}

static void bh_sync_for_device(struct device *dev, dma_addr_t addr, size_t size,
			       enum dma_data_direction dir)
{
	if (dir == DMA_TO_DEVICE || dir == DMA_BIDIRECTIONAL)
		bh_sync(dev, addr, size, false);
}

static void bh_sync_sg_for_cpu(struct device *dev, struct scatterlist *sgl, int nents,
			       enum dma_data_direction dir)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		bh_sync_for_cpu(dev, sg->dma_address, sg->length, dir);
}

static void bh_sync_sg_for_device(struct device *dev, struct scatterlist *sgl, int nents,
				  enum dma_data_direction dir)
{
	struct scatterlist *sg;
	int i;

	for_each_sg(sgl, sg, nents, i)
		bh_sync_for_device(dev, sg->dma_address, sg->length, dir);
}

/* coherent memory is simply window memory from the pool */
static void *bh_alloc(struct device *dev, size_t size, dma_addr_t *handle, gfp_t gfp,
		      unsigned long attrs)
{
	struct bh_pool *p = dev_to_pool(dev);
	u32 off, pos;

	if (!p || !p->maps || (p->hooks && p->hooks->may_map && !p->hooks->may_map(p)))
		return NULL;
	off = bh_pool_alloc(p, size, PAGE_SIZE);
	if (!off)
		return NULL;
	pos = (off - p->pool_off) >> BH_GRANULE_SHIFT;
	p->maps[pos].cpu = p->win + off;
	p->maps[pos].size = size;
	p->maps[pos].coherent = 1;
	memset(p->win + off, 0, size);
	*handle = off;
	return p->win + off;
}

static void bh_free(struct device *dev, size_t size, void *vaddr, dma_addr_t handle,
		    unsigned long attrs)
{
	struct bh_pool *p = dev_to_pool(dev);
	long pos;

	if (!p)
		return;
	pos = bh_pool_map_index(p, handle);
	if (pos < 0 || !p->maps[pos].coherent)
		return;
	p->maps[pos].size = 0;
	p->maps[pos].cpu = NULL;
	p->maps[pos].coherent = 0;
	bh_pool_release(p, handle, size);
}

static int bh_dma_supported(struct device *dev, u64 mask)
{
	return 1;
}

static size_t bh_max_mapping_size(struct device *dev)
{
	struct bh_pool *p = dev_to_pool(dev);

	return p ? p->max_map : 0;
}

const struct dma_map_ops bh_pool_dma_ops = {
	.alloc = bh_alloc,
	.free = bh_free,
	.map_page = bh_map_page,
	.unmap_page = bh_unmap_page,
	.map_sg = bh_map_sg,
	.unmap_sg = bh_unmap_sg,
	.sync_single_for_cpu = bh_sync_for_cpu,
	.sync_single_for_device = bh_sync_for_device,
	.sync_sg_for_cpu = bh_sync_sg_for_cpu,
	.sync_sg_for_device = bh_sync_sg_for_device,
	.dma_supported = bh_dma_supported,
	.max_mapping_size = bh_max_mapping_size,
};
EXPORT_SYMBOL_GPL(bh_pool_dma_ops);

MODULE_DESCRIPTION("Bulkhead window library: ivshmem plumbing, window header, bounce pool and DMA ops");
MODULE_AUTHOR("Bulkhead project");
MODULE_LICENSE("GPL");
