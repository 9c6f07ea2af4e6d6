// SPDX-License-Identifier: GPL-2.0
/*
 * Bulkhead: virtio-msg transport over one ivshmem window.
 *
 * Binds QEMU's ivshmem-doorbell PCI device (1af4:1110). BAR2 is the shared
 * window (docs/window-layout.md): a header written by the backend partition,
 * two single-producer single-consumer message FIFOs and a pool that this
 * driver manages for vrings and bounce buffers. Configuration travels as
 * virtio-msg messages (docs/transport.md); every data buffer is bounced
 * through the pool by this driver's dma_map_ops, and every address handed to
 * the backend is an offset into the window.
 *
 * The window is written by another partition: every field read from it is
 * copied once into private memory and validated there. A backend that is
 * absent, slow or broken costs an error line in dmesg and no device.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/workqueue.h>
#include <linux/completion.h>
#include <linux/dma-map-ops.h>
#include <linux/scatterlist.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <linux/rcupdate.h>
#include <asm/unaligned.h>

#include "bulkhead_msg.h"
#include "bulkhead_window.h"

#define BH_MAX_DEVS		64	/* devices per window we handle */
#define BH_MAX_VQS		64	/* virtqueues per device we handle */
#define BH_MAX_REQS		8	/* requests in flight */
#define BH_DRAIN_BUDGET		256	/* messages per drain call */
#define BH_MAX_TRACKED		64	/* block queues with an in-flight ledger */
#define BH_SPIN_CHECK_MS	100	/* PING a backend that has not used a spun-on buffer for this long */

static unsigned int timeout_ms = 3000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms, "virtio-msg request timeout in ms (default 3000)");

static unsigned int attach_timeout_ms = 5000;
module_param(attach_timeout_ms, uint, 0644);
MODULE_PARM_DESC(attach_timeout_ms, "report a missing backend after this many ms (default 5000)");

static unsigned int poll_ms = 200;
module_param(poll_ms, uint, 0644);
MODULE_PARM_DESC(poll_ms, "backend state poll interval in ms (default 200)");

static unsigned int heartbeat_ms = 1000;
module_param(heartbeat_ms, uint, 0644);
MODULE_PARM_DESC(heartbeat_ms, "PING an attached backend this often, 0 = never (default 1000)");

static unsigned int backend_vector = 0;
module_param(backend_vector, uint, 0444);
MODULE_PARM_DESC(backend_vector, "ivshmem vector rung on the backend peer (default 0)");

static unsigned int max_queue_size = 256;
module_param(max_queue_size, uint, 0444);
MODULE_PARM_DESC(max_queue_size, "largest virtqueue size used (default 256)");

static unsigned int max_map_kb = 256;
module_param(max_map_kb, uint, 0444);
MODULE_PARM_DESC(max_map_kb, "largest single DMA mapping in KiB (default 256)");

/*
 * Streaming mappings of at least this many bytes start on a multiple of it in the window: a block
 * request's data then reaches a backend whose image is opened O_DIRECT aligned as the host wants it
 * (512 bytes, a disk's logical block; 4096 for a 4Kn disk), so it is not bounced there again. Smaller
 * mappings (blk headers, status bytes, net headers) keep the pool's 64-byte granule.
 */
static unsigned int data_align = 512;
module_param(data_align, uint, 0444);
MODULE_PARM_DESC(data_align, "window alignment of DMA mappings of at least this size, a power of two 64..4096 (default 512)");

static bool packed_ring;
module_param(packed_ring, bool, 0444);
MODULE_PARM_DESC(packed_ring, "accept VIRTIO_F_RING_PACKED when a device offers it (default 0: split rings)");

enum bh_state {
	BH_DETACHED,	/* no backend attached */
	BH_ATTACHING,	/* discovery in progress: requests allowed */
	BH_ATTACHED,	/* devices registered */
	BH_FAILED,	/* backend lost or broken: requests fail fast, monitor detaches */
};

struct bh_fifo {
	__le32 *headp;		/* in the window */
	__le32 *tailp;		/* in the window */
	u8 *slots;		/* in the window */
	u32 nslots;
	u32 idx;		/* private: our head (producer) or tail (consumer) */
};

struct bh_req {
	bool busy;
	bool done;
	u16 token;
	u8 type;
	u8 msg_id;
	u16 dev_num;
	u16 resp_len;
	struct completion comp;
	u8 resp[VMSG_MAX_SIZE];
};

struct bh_layout {		/* private, validated copy of the header */
	u32 window_size, slot_size;
	u32 d2v_off, d2v_slots, v2d_off, v2d_slots;
	u32 pool_off, pool_size;
	u32 generation, device_count;
	u16 backend_peer;
};

struct bh_vdev;

struct bh_vq {
	struct virtqueue *vq;	/* its rings are window memory from the pool (bh_alloc, bulkhead_window.c) */
	struct bh_vdev *vd;
	u16 num_entries;	/* queue size */
	bool spin_wait;		/* the driver spins after notify until the buffer is used (bh_wait_used) */

	/* in-flight ledger of a block queue (see "backend loss"), under ledger_lock */
	const struct vring *vr;
	u16 slot;		/* index in t->tracked, 0 = not tracked */
	u16 num;
	u16 avail_seen;		/* available entries recorded so far */
	bool ledger_lost;	/* the available ring stopped matching what the driver wrote */
	unsigned long *inflight;	/* heads made available and not yet reaped */
	unsigned long *todo;	/* scratch for bh_ledger_fail_vq */
	u32 *head_pos;		/* pool granule carrying each in-flight head's tag */
};

struct bh_transport {
	struct bh_pool pool;	/* first: the DMA ops find it from the driver data */
	struct pci_dev *pdev;
	void __iomem *regs;
	u8 *win;
	u32 bar_len;
	u16 my_peer;
	int irq;
	bool msix;
	bool removing;

	struct bh_layout lay;
	u32 msg_max;		/* min(slot size, VMSG_MAX_SIZE) */
	atomic_t state;
	u32 failed_gen;
	u32 failed_d2v_head;	/* our driver->device head when it failed */
	bool have_failed_gen;
	u32 rejected_gen;
	bool have_rejected_gen;
	bool absent_reported;
	unsigned long probe_jiffies;

	spinlock_t tx_lock;	/* driver->device FIFO (we produce) */
	struct bh_fifo tx;
	spinlock_t rx_lock;	/* device->driver FIFO (we consume) + request table */
	struct bh_fifo rx;
	u8 rxbuf[VMSG_MAX_SIZE];
	struct bh_req reqs[BH_MAX_REQS];
	u16 next_token;

	/* events found by a drain, delivered by bh_deliver() */
	unsigned long used_pending[BH_MAX_DEVS][BITS_TO_LONGS(BH_MAX_VQS)];
	DECLARE_BITMAP(config_pending, BH_MAX_DEVS);
	u32 ev_status[BH_MAX_DEVS];
	spinlock_t deliver_lock;	/* devs[] and their vq pointers */
	struct bh_vdev *devs[BH_MAX_DEVS];
	struct tasklet_struct deliver_tasklet;

	/* counters */
	atomic_t bad_msgs;
	atomic_t stray_responses;

	/*
	 * Without MSI-X, QEMU's ivshmem-doorbell raises nothing (its INTx path
	 * serves ivshmem without doorbells): a timer drains the FIFO instead.
	 */
	struct timer_list poll_timer;

	struct mutex lock;	/* attach/detach */
	struct workqueue_struct *wq;
	struct delayed_work monitor;

	/*
	 * Backend loss. The heartbeat and the reap run on their own queue so
	 * that they work while the monitor is blocked in a driver's probe (a
	 * partition scan waiting for a block request the backend will never
	 * answer). The reap completes what is in flight and breaks the
	 * devices; the monitor then unregisters them.
	 */
	struct workqueue_struct *live_wq;
	struct delayed_work heartbeat;
	struct work_struct reap_work;
	bool dying;		/* new DMA mappings refused: nothing new goes in flight */
	bool reaped;		/* this attachment's reap has run */
	char fail_reason[160];
	atomic_t spin_returned;	/* buffers bh_wait_used returned unused since the attach */

	/* the in-flight ledger of every block queue (bh_ledger_*) */
	spinlock_t ledger_lock;
	struct bh_vq *tracked[BH_MAX_TRACKED + 1];	/* slot 0 unused */
	unsigned int ntracked;
	u32 *tags;		/* per pool granule: slot << 16 | head of the chain it starts, 0 = none */
};

struct bh_vdev {
	struct virtio_device vdev;
	struct bh_transport *t;
	u16 dev_num;
	u32 device_id, vendor_id, config_size, max_vqs;
	u32 cfg_gen;
	u8 status;
	struct bh_vq *vqs[BH_MAX_VQS];
	unsigned int nvqs;
};

#define to_bh_vdev(v) container_of(v, struct bh_vdev, vdev)

static void bh_fail(struct bh_transport *t, const char *fmt, ...) __printf(2, 3);

/* ------------------------------------------------------------------ */
/* window access                                                      */

static inline u32 win_rd32(struct bh_transport *t, u32 off)
{
	return le32_to_cpu(READ_ONCE(*(__le32 *)(t->win + off)));
}

static inline void win_wr32(struct bh_transport *t, u32 off, u32 v)
{
	WRITE_ONCE(*(__le32 *)(t->win + off), cpu_to_le32(v));
}

static inline void win_wr16(struct bh_transport *t, u32 off, u16 v)
{
	WRITE_ONCE(*(__le16 *)(t->win + off), cpu_to_le16(v));
}

static bool bh_live(struct bh_transport *t)
{
	int s = atomic_read(&t->state);

	return s == BH_ATTACHING || s == BH_ATTACHED;
}

static bool bh_may_sleep(void)
{
	return preemptible() && !in_atomic() && !irqs_disabled() && in_task();
}

static void bh_ring(struct bh_transport *t)
{
	iowrite32(((u32)t->lay.backend_peer << 16) | (backend_vector & 0xffff),
		  t->regs + IVSHMEM_DOORBELL);
}

/*
 * Copy the header once into private memory and validate the layout.
 * Returns NULL when usable, else a reason for the log.
 */
static const char *bh_read_layout(struct bh_transport *t, struct bh_layout *l,
				  u32 *magic, u32 *state)
{
	u8 h[BH_HEADER_SIZE];
	struct bh_header hd;
	const char *why;
	u32 d2v_len, v2d_len;

	/* one read into private memory, the transport-independent checks */
	why = bh_read_header(t->win, t->bar_len, t->my_peer, BH_TRANSPORT_MSG, h, &hd);
	*magic = hd.magic;
	*state = hd.state;
	l->window_size = hd.window_size;
	l->pool_off = hd.pool_off;
	l->pool_size = hd.pool_size;
	l->generation = hd.generation;
	l->device_count = hd.device_count;
	l->backend_peer = hd.backend_peer;
	if (why)
		return why;
	l->slot_size = get_unaligned_le32(h + BH_HDR_SLOT_SIZE);
	l->d2v_off = get_unaligned_le32(h + BH_HDR_D2V_OFFSET);
	l->d2v_slots = get_unaligned_le32(h + BH_HDR_D2V_SLOTS);
	l->v2d_off = get_unaligned_le32(h + BH_HDR_V2D_OFFSET);
	l->v2d_slots = get_unaligned_le32(h + BH_HDR_V2D_SLOTS);

	if (l->slot_size < 64 || l->slot_size > 4096 || (l->slot_size & 7))
		return "bad slotSize";
	if (!is_power_of_2(l->d2v_slots) || l->d2v_slots > 65536 ||
	    !is_power_of_2(l->v2d_slots) || l->v2d_slots > 65536)
		return "FIFO slot count not a power of two <= 65536";
	d2v_len = BH_FIFO_SLOTS + l->d2v_slots * l->slot_size;
	v2d_len = BH_FIFO_SLOTS + l->v2d_slots * l->slot_size;
	if ((l->d2v_off & 63) || (l->v2d_off & 63))
		return "FIFO offset not 64-byte aligned";
	if (l->d2v_off < BH_HEADER_SIZE || !bh_range_ok(l->d2v_off, d2v_len, l->window_size) ||
	    l->v2d_off < BH_HEADER_SIZE || !bh_range_ok(l->v2d_off, v2d_len, l->window_size))
		return "FIFO outside the window";
	if (bh_overlap(l->d2v_off, d2v_len, l->v2d_off, v2d_len))
		return "FIFOs overlap";
	if (bh_overlap(l->pool_off, l->pool_size, l->d2v_off, d2v_len) ||
	    bh_overlap(l->pool_off, l->pool_size, l->v2d_off, v2d_len))
		return "pool overlaps the FIFOs";
	return NULL;
}

/* cheap liveness check: state and generation only */
static bool bh_header_still_ours(struct bh_transport *t, u32 *state, u32 *gen)
{
	*state = win_rd32(t, BH_HDR_BACKEND_STATE);
	*gen = win_rd32(t, BH_HDR_BACKEND_GEN);
	return win_rd32(t, BH_HDR_MAGIC) == BH_MAGIC &&
	       *state == BH_BACKEND_READY && *gen == t->lay.generation;
}

/* ------------------------------------------------------------------ */
/* pool hooks: the DMA operations are bulkhead_window.c's             */

static void bh_ledger_catch_up(struct bh_transport *t);
static void bh_ledger_unmapped(struct bh_transport *t, u32 pos);

static struct bh_transport *pool_to_bh(struct bh_pool *p)
{
	return container_of(p, struct bh_transport, pool);
}

/* backend lost: nothing new may go in flight while bh_reap completes what is */
static bool bh_pool_may_map(struct bh_pool *p)
{
	return !READ_ONCE(pool_to_bh(p)->dying);
}

static void bh_pool_before_map(struct bh_pool *p)
{
	bh_ledger_catch_up(pool_to_bh(p));
}

static void bh_pool_unmapped(struct bh_pool *p, u32 pos)
{
	bh_ledger_unmapped(pool_to_bh(p), pos);
}

static const struct bh_pool_hooks bh_pool_hooks = {
	.may_map = bh_pool_may_map,
	.before_map = bh_pool_before_map,
	.unmapped = bh_pool_unmapped,
};

/* the pool and the ledger's tag per pool granule */
static int bh_pool_attach(struct bh_transport *t)
{
	u32 *tags;
	unsigned long flags;
	int err;

	err = bh_pool_init(&t->pool, t->win, t->lay.pool_off, t->lay.pool_size, (size_t)max_map_kb * 1024, data_align);
	if (err)
		return err;
	tags = vzalloc(array_size(t->pool.units, sizeof(*tags)));
	if (!tags) {
		bh_pool_free(&t->pool);
		return -ENOMEM;
	}
	spin_lock_irqsave(&t->ledger_lock, flags);
	t->tags = tags;
	spin_unlock_irqrestore(&t->ledger_lock, flags);
	return 0;
}

static void bh_pool_detach(struct bh_transport *t)
{
	unsigned long flags;
	u32 *tags;

	bh_pool_free(&t->pool);
	spin_lock_irqsave(&t->ledger_lock, flags);
	tags = t->tags;
	t->tags = NULL;
	spin_unlock_irqrestore(&t->ledger_lock, flags);
	vfree(tags);
}

/* ------------------------------------------------------------------ */
/* in-flight ledger of the queues the transport completes itself       */
/*
 * When the backend is lost, some Linux 6.1 drivers cannot get their buffers
 * back. virtio_blk has no timeout handler, a broken queue returns no
 * buffers, and its remove() waits in del_gendisk() for every request in
 * flight. virtio_console's hvc output (and its control output, and
 * virtio_net's control queue) spins after notifying until the buffer is
 * used or the queue is broken; broken, put_chars() frees a buffer that is
 * still in the ring, and remove() later hands that freed pointer to
 * free_buf() (a use after free). So the transport completes these queues'
 * buffers itself, as the device would have: block requests with
 * VIRTIO_BLK_S_IOERR, the others unused (bh_reap, bh_wait_used). For that
 * it must know which heads are in flight, which the ring API does not tell
 * a transport: this ledger records
 * every head from the available ring before its slot can be overwritten, and
 * tags the pool mapping its descriptor points at; the driver's unmap of that
 * mapping, when it reaps the chain, clears the head.
 *
 * Soundness: every chain the driver adds is mapped through bh_map_page()
 * first (ACCESS_PLATFORM), and each map and unmap catches the ledger up with
 * the available ring. An entry at available index i can only be overwritten
 * by the chain at i + num, whose mapping first catches up, and a head can
 * only be reaped (unmapped) after it was made available, so the ledger sees
 * it first. Every head made available is therefore either reaped or in the
 * ledger, and the driver's private last_used_idx is avail_seen - in flight.
 *
 * The rings are window memory the backend can write. The ledger reads each
 * available entry and head descriptor once and accepts it only if it names
 * a head not in flight whose address is the start of a live mapping;
 * anything else marks the queue's ledger lost (logged): its requests are
 * then not completed at backend loss (the stock driver's behaviour).
 */

static void bh_ledger_lose(struct bh_transport *t, struct bh_vq *bq, const char *why, u32 v)
{
	if (!bq->ledger_lost)
		dev_warn(&bq->vd->vdev.dev,
			 "queue %u: in-flight ledger lost (%s %u): its requests cannot be failed if the backend is lost\n",
			 bq->vq->index, why, v);
	bq->ledger_lost = true;
}

/* record the heads made available since the last look (ledger_lock held) */
static void bh_ledger_scan_vq(struct bh_transport *t, struct bh_vq *bq)
{
	struct virtio_device *vdev = &bq->vd->vdev;
	const struct vring *vr = bq->vr;
	u16 idx, n, k;

	if (bq->ledger_lost || !t->tags)
		return;
	idx = virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx));
	n = idx - bq->avail_seen;
	if (!n)
		return;
	if (n > bq->num) {
		bh_ledger_lose(t, bq, "available index jumped by", n);
		return;
	}
	virt_rmb();	/* entries and descriptors were written before the index */
	for (k = 0; k < n; k++) {
		u16 head = virtio16_to_cpu(vdev, READ_ONCE(vr->avail->ring[(u16)(bq->avail_seen + k) &
									   (bq->num - 1)]));
		u64 addr;
		long pos;

		if (head >= bq->num || test_bit(head, bq->inflight)) {
			bh_ledger_lose(t, bq, "available head not free:", head);
			return;
		}
		addr = virtio64_to_cpu(vdev, READ_ONCE(vr->desc[head].addr));
		pos = bh_pool_map_index(&t->pool, addr);
		if (pos < 0 || t->pool.maps[pos].coherent || t->tags[pos]) {
			bh_ledger_lose(t, bq, "head descriptor not a fresh mapping, head", head);
			return;
		}
		t->tags[pos] = (u32)bq->slot << 16 | head;
		bq->head_pos[head] = pos;
		set_bit(head, bq->inflight);
	}
	bq->avail_seen = idx;
}

static void bh_ledger_scan(struct bh_transport *t)
{
	unsigned int i;

	for (i = 1; i <= BH_MAX_TRACKED; i++)
		if (t->tracked[i])
			bh_ledger_scan_vq(t, t->tracked[i]);
}

/* before every new mapping: no available entry is overwritten unseen */
static void bh_ledger_catch_up(struct bh_transport *t)
{
	unsigned long flags;

	if (!READ_ONCE(t->ntracked))
		return;
	spin_lock_irqsave(&t->ledger_lock, flags);
	bh_ledger_scan(t);
	spin_unlock_irqrestore(&t->ledger_lock, flags);
}

/* the mapping at pool granule @pos is going away: the chain it tags was reaped */
static void bh_ledger_unmapped(struct bh_transport *t, u32 pos)
{
	unsigned long flags;
	u32 tag;

	if (!READ_ONCE(t->ntracked))
		return;
	spin_lock_irqsave(&t->ledger_lock, flags);
	bh_ledger_scan(t);
	tag = t->tags ? t->tags[pos] : 0;
	if (tag) {
		struct bh_vq *bq = t->tracked[tag >> 16];
		u16 head = tag & 0xffff;

		t->tags[pos] = 0;
		if (bq && head < bq->num && bq->head_pos[head] == pos)
			clear_bit(head, bq->inflight);
	}
	spin_unlock_irqrestore(&t->ledger_lock, flags);
}

/* a new block queue, before the driver can add to it */
static int bh_ledger_track(struct bh_transport *t, struct bh_vdev *vd, struct bh_vq *bq, u16 num)
{
	unsigned long flags;
	unsigned int i;

	/* the ledger reads split rings (bh_finalize_features clears RING_PACKED) */
	if (virtio_has_feature(&vd->vdev, VIRTIO_F_RING_PACKED)) {
		dev_warn(&vd->vdev.dev, "queue %u is packed: no in-flight ledger, a lost backend leaves its requests in flight\n",
			 bq->vq->index);
		return 0;
	}
	bq->inflight = bitmap_zalloc(num, GFP_KERNEL);
	bq->todo = bitmap_zalloc(num, GFP_KERNEL);
	bq->head_pos = kcalloc(num, sizeof(*bq->head_pos), GFP_KERNEL);
	if (!bq->inflight || !bq->todo || !bq->head_pos)
		goto nomem;
	bq->vr = virtqueue_get_vring(bq->vq);
	bq->num = num;
	bq->avail_seen = 0;
	bq->ledger_lost = false;
	spin_lock_irqsave(&t->ledger_lock, flags);
	for (i = 1; i <= BH_MAX_TRACKED && t->tracked[i]; i++)
		;
	if (i <= BH_MAX_TRACKED) {
		bq->slot = i;
		t->tracked[i] = bq;
		t->ntracked++;
	}
	spin_unlock_irqrestore(&t->ledger_lock, flags);
	if (i <= BH_MAX_TRACKED)
		return 0;
	dev_err(&vd->vdev.dev, "more than %u block queues: queue %u cannot be tracked\n",
		BH_MAX_TRACKED, bq->vq->index);
nomem:
	bitmap_free(bq->inflight);
	bitmap_free(bq->todo);
	kfree(bq->head_pos);
	bq->inflight = bq->todo = NULL;
	bq->head_pos = NULL;
	return -ENOMEM;
}

static void bh_ledger_untrack(struct bh_transport *t, struct bh_vq *bq)
{
	unsigned long flags;
	unsigned int h;

	if (!bq->slot)
		return;
	spin_lock_irqsave(&t->ledger_lock, flags);
	if (t->tags)
		for_each_set_bit(h, bq->inflight, bq->num)
			t->tags[bq->head_pos[h]] = 0;
	t->tracked[bq->slot] = NULL;
	t->ntracked--;
	bq->slot = 0;
	spin_unlock_irqrestore(&t->ledger_lock, flags);
	bitmap_free(bq->inflight);
	bitmap_free(bq->todo);
	kfree(bq->head_pos);
}

/*
 * One device-writable descriptor of a chain being failed: the device wrote
 * nothing, so the driver's buffer must come back as it was (its unmap copies
 * the window back); the last writable byte is where the status goes.
 */
static void bh_fail_writable(struct bh_transport *t, u64 addr, u32 len, u16 flags,
			     u32 *status_off)
{
	long pos;

	if (!(flags & VRING_DESC_F_WRITE) || !len)
		return;
	pos = bh_pool_map_index(&t->pool, addr);
	if (pos < 0 || t->pool.maps[pos].coherent)
		return;
	len = min(len, t->pool.maps[pos].size);
	memcpy(t->win + addr, t->pool.maps[pos].cpu, len);
	*status_off = addr + len - 1;
}

/*
 * Complete @head as its device does when it fails a request: nothing
 * written, used length 0; a block request also gets status VIRTIO_BLK_S_IOERR
 * in the last byte of its last device-writable buffer (virtio 1.3 §5.2.6),
 * used length 1. Indirect tables are read from the driver's own copy
 * (private memory); direct chains from the window, bounded by the queue size.
 */
static u32 bh_fail_chain(struct bh_transport *t, struct bh_vq *bq, u16 head)
{
	struct virtio_device *vdev = &bq->vd->vdev;
	const struct vring_desc *desc = bq->vr->desc;
	u32 status_off = 0, steps;
	u16 i = head, flags;
	u64 addr;
	u32 len;

	addr = virtio64_to_cpu(vdev, READ_ONCE(desc[i].addr));
	len = virtio32_to_cpu(vdev, READ_ONCE(desc[i].len));
	flags = virtio16_to_cpu(vdev, READ_ONCE(desc[i].flags));
	if (flags & VRING_DESC_F_INDIRECT) {
		long pos = bh_pool_map_index(&t->pool, addr);
		const struct vring_desc *tbl;
		u32 n, k;

		if (pos < 0 || t->pool.maps[pos].coherent)
			return 0;
		tbl = t->pool.maps[pos].cpu;
		n = min(len, t->pool.maps[pos].size) / sizeof(*tbl);
		for (k = 0; k < n; k++)
			bh_fail_writable(t, virtio64_to_cpu(vdev, tbl[k].addr),
					 virtio32_to_cpu(vdev, tbl[k].len),
					 virtio16_to_cpu(vdev, tbl[k].flags), &status_off);
	} else {
		for (steps = 0; steps < bq->num; steps++) {
			bh_fail_writable(t, addr, len, flags, &status_off);
			if (!(flags & VRING_DESC_F_NEXT))
				break;
			i = virtio16_to_cpu(vdev, READ_ONCE(desc[i].next));
			if (i >= bq->num)
				break;
			addr = virtio64_to_cpu(vdev, READ_ONCE(desc[i].addr));
			len = virtio32_to_cpu(vdev, READ_ONCE(desc[i].len));
			flags = virtio16_to_cpu(vdev, READ_ONCE(desc[i].flags));
		}
	}
	if (!status_off || bq->vd->device_id != VIRTIO_ID_BLOCK)
		return 0;
	t->win[status_off] = VIRTIO_BLK_S_IOERR;
	return 1;
}

/*
 * The backend is lost and nothing new goes in flight (t->dying): rebuild
 * the used ring from the driver's position so that it holds every head in
 * flight exactly once. Completions the backend made before it was lost keep
 * their place and order; an entry that names no head in flight (a backend
 * that wrote garbage) is dropped; every other head in flight is failed with
 * bh_fail_chain(). Returns the number of requests failed here
 * (ledger_lock held).
 */
static unsigned int bh_ledger_fail_vq(struct bh_transport *t, struct bh_vq *bq)
{
	struct virtio_device *vdev = &bq->vd->vdev;
	struct vring_used *used = bq->vr->used;
	u16 mask = bq->num - 1, last, pub, seen, w, k;
	unsigned int inflight, failed = 0;
	unsigned int h;

	if (!bq->slot)
		return 0;	/* not tracked (a packed queue) */
	bh_ledger_scan_vq(t, bq);
	if (bq->ledger_lost)
		return 0;
	inflight = bitmap_weight(bq->inflight, bq->num);
	if (!inflight)
		return 0;
	last = bq->avail_seen - inflight;	/* the driver's next used index */
	pub = virtio16_to_cpu(vdev, READ_ONCE(used->idx));
	seen = pub - last;
	if (seen > inflight)
		seen = 0;	/* more completions than requests: none of them is real */
	virt_rmb();
	bitmap_copy(bq->todo, bq->inflight, bq->num);
	w = last;
	for (k = 0; k < seen; k++) {
		u32 id = virtio32_to_cpu(vdev, READ_ONCE(used->ring[(u16)(last + k) & mask].id));
		u32 len = virtio32_to_cpu(vdev, READ_ONCE(used->ring[(u16)(last + k) & mask].len));

		if (id >= bq->num || !test_and_clear_bit(id, bq->todo))
			continue;
		if (w != (u16)(last + k)) {
			WRITE_ONCE(used->ring[w & mask].id, cpu_to_virtio32(vdev, id));
			WRITE_ONCE(used->ring[w & mask].len, cpu_to_virtio32(vdev, len));
		}
		w++;
	}
	for_each_set_bit(h, bq->todo, bq->num) {
		u32 len = bh_fail_chain(t, bq, h);

		WRITE_ONCE(used->ring[w & mask].id, cpu_to_virtio32(vdev, h));
		WRITE_ONCE(used->ring[w & mask].len, cpu_to_virtio32(vdev, len));
		w++;
		failed++;
	}
	virt_wmb();	/* entries and status bytes before the index */
	WRITE_ONCE(used->idx, cpu_to_virtio16(vdev, w));
	return failed;
}

/* ------------------------------------------------------------------ */
/* FIFOs                                                              */

static void bh_fifo_setup(struct bh_transport *t, struct bh_fifo *f, u32 off, u32 nslots)
{
	f->headp = (__le32 *)(t->win + off + BH_FIFO_HEAD);
	f->tailp = (__le32 *)(t->win + off + BH_FIFO_TAIL);
	f->slots = t->win + off + BH_FIFO_SLOTS;
	f->nslots = nslots;
}

static void bh_handle_msg(struct bh_transport *t, const u8 *m);

static const char *bh_msg_name(u8 type, u8 id)
{
	if (type & VMSG_TYPE_BUS)
		return id == VMSG_BUS_GET_DEVICES ? "GET_DEVICES" :
		       id == VMSG_BUS_PING ? "PING" : "a bus message";
	switch (id) {
	case VMSG_GET_DEVICE_INFO: return "GET_DEVICE_INFO";
	case VMSG_GET_DEVICE_FEATURES: return "GET_DEVICE_FEATURES";
	case VMSG_SET_DRIVER_FEATURES: return "SET_DRIVER_FEATURES";
	case VMSG_GET_CONFIG: return "GET_CONFIG";
	case VMSG_SET_CONFIG: return "SET_CONFIG";
	case VMSG_GET_DEVICE_STATUS: return "GET_DEVICE_STATUS";
	case VMSG_SET_DEVICE_STATUS: return "SET_DEVICE_STATUS";
	case VMSG_GET_VQUEUE: return "GET_VQUEUE";
	case VMSG_SET_VQUEUE: return "SET_VQUEUE";
	case VMSG_RESET_VQUEUE: return "RESET_VQUEUE";
	default: return "a transport message";
	}
}

/*
 * Consume the device->driver FIFO: responses complete their request,
 * events become pending bits. Never calls into virtio drivers.
 * Returns true when events are pending.
 */
static bool bh_drain(struct bh_transport *t)
{
	unsigned long flags;
	u32 head, avail, n, i;
	bool was_full = false, more = false;
	int s = atomic_read(&t->state);

	if (s != BH_ATTACHING && s != BH_ATTACHED)
		return false;
	spin_lock_irqsave(&t->rx_lock, flags);
	head = le32_to_cpu(READ_ONCE(*t->rx.headp));
	avail = head - t->rx.idx;
	if (avail > t->rx.nslots) {
		spin_unlock_irqrestore(&t->rx_lock, flags);
		bh_fail(t, "device->driver FIFO head %u is %u ahead of tail %u (only %u slots): backend is corrupt",
			head, avail, t->rx.idx, t->rx.nslots);
		return false;
	}
	was_full = avail == t->rx.nslots;
	n = min_t(u32, avail, BH_DRAIN_BUDGET);
	more = avail > n;
	virt_rmb();	/* slots after head */
	for (i = 0; i < n; i++) {
		const u8 *slot = t->rx.slots + (size_t)(t->rx.idx & (t->rx.nslots - 1)) *
				 t->lay.slot_size;

		memcpy(t->rxbuf, slot, t->msg_max);	/* read once */
		virt_mb();
		t->rx.idx++;
		WRITE_ONCE(*t->rx.tailp, cpu_to_le32(t->rx.idx));
		bh_handle_msg(t, t->rxbuf);
	}
	spin_unlock_irqrestore(&t->rx_lock, flags);
	if (was_full)
		bh_ring(t);	/* room appeared: the backend may have pending events */
	if (more)
		tasklet_schedule(&t->deliver_tasklet);
	return more || !bitmap_empty(t->config_pending, BH_MAX_DEVS) ||
	       !bitmap_empty((unsigned long *)t->used_pending, BH_MAX_DEVS * BH_MAX_VQS);
}

/* called with rx_lock held, m is a private copy of one slot */
static void bh_handle_msg(struct bh_transport *t, const u8 *m)
{
	u8 type = m[0], id = m[1];
	u16 dev = get_unaligned_le16(m + 2);
	u16 token = get_unaligned_le16(m + 4);
	u16 size = get_unaligned_le16(m + 6);
	int i;

	if (size < VMSG_HDR_SIZE || size > t->msg_max) {
		atomic_inc(&t->bad_msgs);
		dev_warn_ratelimited(&t->pdev->dev, "dropped message with msg_size %u (id %#x)\n",
				     size, id);
		return;
	}
	if (type & VMSG_TYPE_RESPONSE) {
		for (i = 0; i < BH_MAX_REQS; i++) {
			struct bh_req *r = &t->reqs[i];

			if (!r->busy || r->done || r->token != token)
				continue;
			if (r->msg_id != id || r->dev_num != dev ||
			    (r->type & VMSG_TYPE_BUS) != (type & VMSG_TYPE_BUS)) {
				atomic_inc(&t->bad_msgs);
				dev_warn_ratelimited(&t->pdev->dev,
						     "response token %u: id %#x dev %u, expected id %#x dev %u\n",
						     token, id, dev, r->msg_id, r->dev_num);
				return;
			}
			memcpy(r->resp, m, size);
			r->resp_len = size;
			smp_store_release(&r->done, true);
			complete(&r->comp);
			return;
		}
		atomic_inc(&t->stray_responses);
		dev_dbg(&t->pdev->dev, "response with unknown token %u (id %#x)\n", token, id);
		return;
	}
	if (type & VMSG_TYPE_BUS) {
		if (id == VMSG_BUS_EVENT_DEVICE && size >= VMSG_HDR_SIZE + 4)
			dev_info(&t->pdev->dev, "backend: device %u state %u (not hot-plugged: rebind to rediscover)\n",
				 get_unaligned_le16(m + 8), get_unaligned_le16(m + 10));
		else
			atomic_inc(&t->bad_msgs);
		return;
	}
	if (dev >= BH_MAX_DEVS) {
		atomic_inc(&t->bad_msgs);
		return;
	}
	switch (id) {
	case VMSG_EVENT_USED:
		if (size < VMSG_HDR_SIZE + 4 || get_unaligned_le32(m + 8) >= BH_MAX_VQS) {
			atomic_inc(&t->bad_msgs);
			return;
		}
		set_bit(get_unaligned_le32(m + 8), t->used_pending[dev]);
		break;
	case VMSG_EVENT_CONFIG:
		if (size < VMSG_HDR_SIZE + 16) {
			atomic_inc(&t->bad_msgs);
			return;
		}
		WRITE_ONCE(t->ev_status[dev], get_unaligned_le32(m + 8) | 0x80000000u);
		set_bit(dev, t->config_pending);
		break;
	default:
		atomic_inc(&t->bad_msgs);
		dev_warn_ratelimited(&t->pdev->dev, "dropped unexpected message id %#x type %#x\n",
				     id, type);
	}
}

/* hand pending events to the virtio core (any context) */
static void bh_deliver(struct bh_transport *t)
{
	unsigned long flags;
	int d, q;

	spin_lock_irqsave(&t->deliver_lock, flags);
	for (d = 0; d < BH_MAX_DEVS; d++) {
		struct bh_vdev *vd = t->devs[d];

		if (test_and_clear_bit(d, t->config_pending) && vd) {
			u32 st = xchg(&t->ev_status[d], 0);

			if (st & 0x80000000u) {
				vd->status = st & 0xff;
				if (st & VIRTIO_CONFIG_S_NEEDS_RESET)
					dev_warn(&vd->vdev.dev,
						 "backend set DEVICE_NEEDS_RESET (status %#x)\n",
						 st & 0xff);
			}
			virtio_config_changed(&vd->vdev);
		}
		for_each_set_bit(q, t->used_pending[d], BH_MAX_VQS) {
			clear_bit(q, t->used_pending[d]);
			if (vd && q < ARRAY_SIZE(vd->vqs) && vd->vqs[q] && vd->vqs[q]->vq)
				vring_interrupt(0, vd->vqs[q]->vq);
		}
	}
	spin_unlock_irqrestore(&t->deliver_lock, flags);
}

static void bh_deliver_tasklet(struct tasklet_struct *tl)
{
	struct bh_transport *t = from_tasklet(t, tl, deliver_tasklet);

	bh_drain(t);
	bh_deliver(t);
}

static void bh_poll_timer(struct timer_list *tl)
{
	struct bh_transport *t = from_timer(t, tl, poll_timer);

	if (!bh_live(t))
		return;
	bh_drain(t);
	bh_deliver(t);
	mod_timer(&t->poll_timer, jiffies + 1);
}

/*
 * The backend is lost (any context): requests fail fast from now on, the
 * reap completes what is in flight and reports @fmt in its one line, the
 * monitor then removes the devices.
 */
static void bh_fail(struct bh_transport *t, const char *fmt, ...)
{
	va_list args;
	int old = atomic_read(&t->state);

	if (old != BH_ATTACHING && old != BH_ATTACHED)
		return;
	if (atomic_cmpxchg(&t->state, old, BH_FAILED) != old)
		return;
	va_start(args, fmt);
	vsnprintf(t->fail_reason, sizeof(t->fail_reason), fmt, args);
	va_end(args);
	queue_work(t->live_wq, &t->reap_work);
	if (!t->removing)
		mod_delayed_work(t->wq, &t->monitor, 0);
}

/* ------------------------------------------------------------------ */
/* backend loss                                                       */

/*
 * Runs once per lost backend, on live_wq (never behind the monitor, which
 * may be blocked in a probe waiting for one of the requests completed here).
 *
 *  1. t->dying: every new DMA mapping fails, so no new chain goes in flight
 *     (the driver sees -ENOMEM and retries later: blk requeues its request).
 *     A mapping that passed the check belongs to an add running under the
 *     driver's queue spinlock; synchronize_rcu() waits for all of those.
 *  2. The used ring of every ledger queue is rebuilt to hold each head in
 *     flight (bh_ledger_fail_vq): the backend's own completions, then the
 *     rest failed (blk: IOERR; console output, net control: unused).
 *  3. vring_interrupt() makes virtio_blk reap them all, synchronously, in
 *     its callback; their requests end with BLK_STS_IOERR. A queue that the
 *     driver broke on a bad used entry from the backend is unbroken first.
 *     A driver spinning on a console output or net control buffer reaps
 *     its own: wait (briefly) for it to do so.
 *  4. Every device is broken: new requests fail with -EIO at once (blk:
 *     BLK_STS_IOERR) and remove() finds nothing in flight that it cannot
 *     take back.
 *
 * Other queues need no help: virtio_net and virtio_console take their
 * buffers back with virtqueue_detach_unused_buf() in remove(), virtio-rng
 * completes its waiter in remove().
 */
static void bh_reap(struct work_struct *w)
{
	struct bh_transport *t = container_of(w, struct bh_transport, reap_work);
	unsigned int failed = 0, returned = 0, stuck = 0, spinning, ndev = 0, i, q, n;
	unsigned long flags;
	int d, tries;

	if (atomic_read(&t->state) != BH_FAILED || t->reaped)
		return;
	WRITE_ONCE(t->dying, true);
	synchronize_rcu();

	spin_lock_irqsave(&t->ledger_lock, flags);
	for (i = 1; i <= BH_MAX_TRACKED; i++) {
		struct bh_vq *bq = t->tracked[i];

		if (!bq)
			continue;
		n = bh_ledger_fail_vq(t, bq);
		if (bq->spin_wait)
			returned += n;
		else
			failed += n;
	}
	spin_unlock_irqrestore(&t->ledger_lock, flags);

	spin_lock_irqsave(&t->deliver_lock, flags);
	for (d = 0; d < BH_MAX_DEVS; d++) {
		struct bh_vdev *vd = t->devs[d];

		if (!vd)
			continue;
		ndev++;
		if (vd->device_id != VIRTIO_ID_BLOCK)
			continue;
		__virtio_unbreak_device(&vd->vdev);
		for (q = 0; q < BH_MAX_VQS; q++)
			if (vd->vqs[q] && vd->vqs[q]->vq)
				vring_interrupt(0, vd->vqs[q]->vq);
	}
	spin_unlock_irqrestore(&t->deliver_lock, flags);

	for (tries = 0; tries <= 50; tries++) {
		spinning = 0;
		stuck = 0;
		spin_lock_irqsave(&t->ledger_lock, flags);
		for (i = 1; i <= BH_MAX_TRACKED; i++) {
			struct bh_vq *bq = t->tracked[i];

			if (!bq)
				continue;
			n = bitmap_weight(bq->inflight, bq->num);
			if (bq->spin_wait)
				spinning += n;
			else
				stuck += n;
		}
		spin_unlock_irqrestore(&t->ledger_lock, flags);
		/* a buffer nobody spins on (a non-blocking port write) is detached by remove() */
		if (!spinning || tries == 50)
			break;
		msleep(10);
	}

	spin_lock_irqsave(&t->deliver_lock, flags);
	for (d = 0; d < BH_MAX_DEVS; d++)
		if (t->devs[d])
			virtio_break_device(&t->devs[d]->vdev);
	spin_unlock_irqrestore(&t->deliver_lock, flags);
	t->reaped = true;

	returned += atomic_read(&t->spin_returned);
	if (ndev || failed || returned || stuck) {
		char more[64] = "";

		if (returned)
			snprintf(more, sizeof(more), " (and %u output/control buffer(s) returned unused)",
				 returned);
		dev_err(&t->pdev->dev,
			"backend lost: %s; %u block request(s) in flight failed with an I/O error%s, removing %u device(s)%s\n",
			t->fail_reason, failed, more, ndev,
			stuck ? "; some requests could not be completed (see the queue warnings)" : "");
	}
	if (!t->removing)
		mod_delayed_work(t->wq, &t->monitor, 0);
}

/* the reap, now, from a context that may sleep */
static void bh_reap_sync(struct bh_transport *t)
{
	queue_work(t->live_wq, &t->reap_work);
	flush_work(&t->reap_work);
}

/* produce one message into the driver->device FIFO and ring the backend */
static int bh_send(struct bh_transport *t, u8 type, u8 id, u16 dev, u16 token,
		   const void *payload, u16 plen, ktime_t deadline, bool sleep)
{
	unsigned long flags;
	u32 tail, used;
	u8 *slot;
	u8 hdr[VMSG_HDR_SIZE];

	if (VMSG_HDR_SIZE + plen > t->msg_max)
		return -EMSGSIZE;
	hdr[0] = type;
	hdr[1] = id;
	put_unaligned_le16(dev, hdr + 2);
	put_unaligned_le16(token, hdr + 4);
	put_unaligned_le16(VMSG_HDR_SIZE + plen, hdr + 6);

	for (;;) {
		if (!bh_live(t))
			return -ENODEV;
		spin_lock_irqsave(&t->tx_lock, flags);
		tail = le32_to_cpu(READ_ONCE(*t->tx.tailp));
		used = t->tx.idx - tail;
		if (used > t->tx.nslots) {
			spin_unlock_irqrestore(&t->tx_lock, flags);
			bh_fail(t, "driver->device FIFO tail %u is not within %u slots of head %u",
				tail, t->tx.nslots, t->tx.idx);
			return -EPROTO;
		}
		if (used < t->tx.nslots)
			break;
		spin_unlock_irqrestore(&t->tx_lock, flags);
		if (ktime_after(ktime_get(), deadline)) {
			bh_fail(t, "driver->device FIFO full for %u ms: backend not consuming",
				timeout_ms);
			return -ETIMEDOUT;
		}
		bh_ring(t);
		if (bh_drain(t))
			tasklet_schedule(&t->deliver_tasklet);
		if (sleep)
			usleep_range(50, 200);
		else
			udelay(10);
	}
	slot = t->tx.slots + (size_t)(t->tx.idx & (t->tx.nslots - 1)) * t->lay.slot_size;
	memcpy(slot, hdr, VMSG_HDR_SIZE);
	if (plen)
		memcpy(slot + VMSG_HDR_SIZE, payload, plen);
	virt_wmb();
	t->tx.idx++;
	WRITE_ONCE(*t->tx.headp, cpu_to_le32(t->tx.idx));
	spin_unlock_irqrestore(&t->tx_lock, flags);
	virt_mb();
	bh_ring(t);
	return 0;
}

/*
 * Synchronous request: send, ring, wait for the answer carrying our token.
 * Sleeps when the caller may sleep, else polls the FIFO. On success the
 * answer (header included) is in @resp and its size in *@rlen, at least
 * VMSG_HDR_SIZE + @min_payload bytes.
 */
static int bh_request(struct bh_transport *t, u8 type, u8 id, u16 dev,
		      const void *payload, u16 plen, u8 *resp, u16 min_payload, u16 *rlen)
{
	bool sleep = bh_may_sleep();
	ktime_t deadline = ktime_add_ms(ktime_get(), timeout_ms);
	unsigned long flags;
	struct bh_req *r = NULL;
	u16 token = 0;
	int i, ret;

	if (!bh_live(t))
		return -ENODEV;
	for (;;) {
		spin_lock_irqsave(&t->rx_lock, flags);
		for (i = 0; i < BH_MAX_REQS; i++) {
			if (!t->reqs[i].busy) {
				r = &t->reqs[i];
				break;
			}
		}
		if (r) {
			bool clash;

			do {	/* non-zero, not in use */
				int j;

				token = ++t->next_token;
				clash = !token;
				for (j = 0; j < BH_MAX_REQS && !clash; j++)
					clash = t->reqs[j].busy && t->reqs[j].token == token;
			} while (clash);
			r->busy = true;
			r->done = false;
			r->token = token;
			r->type = type;
			r->msg_id = id;
			r->dev_num = dev;
			r->resp_len = 0;
			reinit_completion(&r->comp);
		}
		spin_unlock_irqrestore(&t->rx_lock, flags);
		if (r)
			break;
		if (ktime_after(ktime_get(), deadline))
			return -EBUSY;
		if (sleep)
			usleep_range(100, 300);
		else if (bh_drain(t))
			tasklet_schedule(&t->deliver_tasklet);
		if (!sleep)
			udelay(10);
	}

	ret = bh_send(t, type, id, dev, token, payload, plen, deadline, sleep);
	if (ret)
		goto out;

	for (;;) {
		if (smp_load_acquire(&r->done))
			break;
		if (!bh_live(t)) {
			ret = -ENODEV;
			goto out;
		}
		if (ktime_after(ktime_get(), deadline)) {
			ret = -ETIMEDOUT;
			bh_fail(t, "no answer to %s (dev %u, token %u) within %u ms",
				bh_msg_name(type, id), dev, token, timeout_ms);
			goto out;
		}
		if (sleep) {
			if (wait_for_completion_timeout(&r->comp, msecs_to_jiffies(20)))
				continue;
		} else {
			udelay(5);
		}
		/* poll: lost interrupt, or interrupts cannot run here */
		if (bh_drain(t))
			tasklet_schedule(&t->deliver_tasklet);
	}

	if (r->resp_len < VMSG_HDR_SIZE + min_payload) {
		atomic_inc(&t->bad_msgs);
		dev_err_ratelimited(&t->pdev->dev, "answer to message %#x (dev %u) too short: %u bytes\n",
				    id, dev, r->resp_len);
		ret = -EPROTO;
		goto out;
	}
	memcpy(resp, r->resp, r->resp_len);
	if (rlen)
		*rlen = r->resp_len;
	ret = 0;
out:
	spin_lock_irqsave(&t->rx_lock, flags);
	r->busy = false;
	r->done = false;
	spin_unlock_irqrestore(&t->rx_lock, flags);
	return ret;
}

#define BH_PING_DATA	0x42484c4b

/* bus PING; an answer that does not come within timeout_ms fails the backend */
static int bh_ping(struct bh_transport *t)
{
	u8 resp[VMSG_MAX_SIZE], req[4];
	int err;

	put_unaligned_le32(BH_PING_DATA, req);
	err = bh_request(t, VMSG_TYPE_BUS, VMSG_BUS_PING, 0, req, 4, resp, 4, NULL);
	if (!err && get_unaligned_le32(resp + 8) != BH_PING_DATA)
		dev_warn_ratelimited(&t->pdev->dev, "PING answered with wrong data %#x\n",
				     get_unaligned_le32(resp + 8));
	return err;
}

static void bh_fail_went_away(struct bh_transport *t, u32 state, u32 gen)
{
	bh_fail(t, "it went away (backendState %u, generation %u; attached to generation %u)",
		state, gen, t->lay.generation);
}

/*
 * A backend that dies without a word (kill -9, a crashed partition) leaves
 * the header as it was, and the guest gets no ivshmem peer-disconnect
 * notification (QEMU's ivshmem spec): it is seen by its silence.
 */
static void bh_heartbeat(struct work_struct *w)
{
	struct bh_transport *t = container_of(to_delayed_work(w), struct bh_transport, heartbeat);
	u32 state, gen;

	if (!bh_live(t))
		return;
	if (!bh_header_still_ours(t, &state, &gen))
		bh_fail_went_away(t, state, gen);
	else
		bh_ping(t);
	if (bh_live(t) && heartbeat_ms && !READ_ONCE(t->removing))
		queue_delayed_work(t->live_wq, &t->heartbeat, msecs_to_jiffies(heartbeat_ms));
}

static int bh_vreq(struct bh_vdev *vd, u8 id, const void *payload, u16 plen,
		   u8 *resp, u16 min_payload, u16 *rlen)
{
	return bh_request(vd->t, 0, id, vd->dev_num, payload, plen, resp, min_payload, rlen);
}

/* ------------------------------------------------------------------ */
/* virtio_config_ops                                                  */

static void bh_get(struct virtio_device *vdev, unsigned int offset, void *buf, unsigned int len)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE], req[8];
	unsigned int done = 0, chunk_max = vd->t->msg_max - VMSG_HDR_SIZE - VMSG_GET_CONFIG_HDR;

	memset(buf, 0, len);
	if (offset > vd->config_size || len > vd->config_size - offset) {
		dev_warn_ratelimited(&vdev->dev, "config read %u+%u beyond %u bytes\n",
				     offset, len, vd->config_size);
		return;
	}
	while (done < len) {
		u32 chunk = min(len - done, chunk_max), size;
		u16 rlen;

		put_unaligned_le32(offset + done, req);
		put_unaligned_le32(chunk, req + 4);
		if (bh_vreq(vd, VMSG_GET_CONFIG, req, 8, resp, VMSG_GET_CONFIG_HDR, &rlen))
			return;
		size = get_unaligned_le32(resp + 16);
		if (get_unaligned_le32(resp + 12) != offset + done || size != chunk ||
		    rlen < VMSG_HDR_SIZE + VMSG_GET_CONFIG_HDR + chunk) {
			dev_warn_ratelimited(&vdev->dev, "config read %u+%u refused or malformed (size %u)\n",
					     offset + done, chunk, size);
			return;
		}
		WRITE_ONCE(vd->cfg_gen, get_unaligned_le32(resp + 8));
		memcpy((u8 *)buf + done, resp + VMSG_HDR_SIZE + VMSG_GET_CONFIG_HDR, chunk);
		done += chunk;
	}
}

static void bh_set(struct virtio_device *vdev, unsigned int offset, const void *buf,
		   unsigned int len)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE], req[VMSG_MAX_SIZE];
	unsigned int done = 0, chunk_max = vd->t->msg_max - VMSG_HDR_SIZE - VMSG_SET_CONFIG_HDR;

	if (offset > vd->config_size || len > vd->config_size - offset) {
		dev_warn_ratelimited(&vdev->dev, "config write %u+%u beyond %u bytes\n",
				     offset, len, vd->config_size);
		return;
	}
	while (done < len) {
		u32 chunk = min(len - done, chunk_max);
		u16 rlen;

		put_unaligned_le32(READ_ONCE(vd->cfg_gen), req);
		put_unaligned_le32(offset + done, req + 4);
		put_unaligned_le32(chunk, req + 8);
		memcpy(req + 12, (const u8 *)buf + done, chunk);
		if (bh_vreq(vd, VMSG_SET_CONFIG, req, 12 + chunk, resp, VMSG_SET_CONFIG_HDR, &rlen))
			return;
		WRITE_ONCE(vd->cfg_gen, get_unaligned_le32(resp + 8));
		if (get_unaligned_le32(resp + 16) == 0) {
			dev_warn_ratelimited(&vdev->dev, "config write %u+%u refused by the backend\n",
					     offset + done, chunk);
			return;
		}
		done += chunk;
	}
}

static u32 bh_generation(struct virtio_device *vdev)
{
	/* the generation carried by the latest GET_CONFIG/SET_CONFIG answer */
	return READ_ONCE(to_bh_vdev(vdev)->cfg_gen);
}

static u8 bh_get_status(struct virtio_device *vdev)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE];

	if (!bh_vreq(vd, VMSG_GET_DEVICE_STATUS, NULL, 0, resp, 4, NULL))
		vd->status = get_unaligned_le32(resp + 8) & 0xff;
	return vd->status;
}

static void bh_set_status(struct virtio_device *vdev, u8 status)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE], req[4];

	put_unaligned_le32(status, req);
	if (!bh_vreq(vd, VMSG_SET_DEVICE_STATUS, req, 4, resp, 4, NULL))
		vd->status = get_unaligned_le32(resp + 8) & 0xff;
	else
		vd->status = status;
}

static void bh_reset(struct virtio_device *vdev)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE], req[4] = { 0 };
	u32 st;

	if (bh_vreq(vd, VMSG_SET_DEVICE_STATUS, req, 4, resp, 4, NULL)) {
		vd->status = 0;
		return;
	}
	st = get_unaligned_le32(resp + 8);
	if (st)
		dev_warn(&vdev->dev, "backend did not reset (status %#x)\n", st);
	vd->status = st & 0xff;
}

static u64 bh_get_features(struct virtio_device *vdev)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE], req[8];
	u32 nb;
	u16 rlen;
	u64 f;

	put_unaligned_le32(0, req);
	put_unaligned_le32(2, req + 4);
	if (bh_vreq(vd, VMSG_GET_DEVICE_FEATURES, req, 8, resp, 8, &rlen))
		return 0;
	nb = get_unaligned_le32(resp + 12);
	if (get_unaligned_le32(resp + 8) != 0 || nb == 0 || nb > 2 ||
	    rlen < VMSG_HDR_SIZE + 8 + 4 * nb) {
		dev_err(&vdev->dev, "malformed GET_DEVICE_FEATURES answer\n");
		return 0;
	}
	f = get_unaligned_le32(resp + 16);
	if (nb > 1)
		f |= (u64)get_unaligned_le32(resp + 20) << 32;
	return f;
}

static int bh_finalize_features(struct virtio_device *vdev)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	u8 resp[VMSG_MAX_SIZE], req[16];

	vring_transport_features(vdev);
	/* packed rings only when asked for (packed_ring=1); no per-queue reset, no notification data */
	if (!packed_ring)
		__virtio_clear_bit(vdev, VIRTIO_F_RING_PACKED);
	__virtio_clear_bit(vdev, VIRTIO_F_RING_RESET);
	__virtio_clear_bit(vdev, BH_F_NOTIFICATION_DATA);

	if (!__virtio_test_bit(vdev, VIRTIO_F_VERSION_1)) {
		dev_err(&vdev->dev, "backend does not offer VIRTIO_F_VERSION_1\n");
		return -EINVAL;
	}
	if (!__virtio_test_bit(vdev, VIRTIO_F_ACCESS_PLATFORM)) {
		dev_err(&vdev->dev, "backend does not offer VIRTIO_F_ACCESS_PLATFORM: buffers must be bounced into the window\n");
		return -EINVAL;
	}
	put_unaligned_le32(0, req);
	put_unaligned_le32(2, req + 4);
	put_unaligned_le32(lower_32_bits(vdev->features), req + 8);
	put_unaligned_le32(upper_32_bits(vdev->features), req + 12);
	return bh_vreq(vd, VMSG_SET_DRIVER_FEATURES, req, 16, resp, 0, NULL);
}

/*
 * The driver of @bq spins, right after this notify, until the device uses
 * the buffer (Linux 6.1: virtio_console's __send_to_port for hvc output,
 * with interrupts off, and __send_control_msg; virtio_net's
 * virtnet_send_command). On one CPU nothing else runs meanwhile, so neither
 * the heartbeat nor the reap could notice a backend lost then: the guest
 * would hang. Wait here instead, for as long as the backend answers a PING
 * every BH_SPIN_CHECK_MS without progress; when it does not, complete the
 * queue's buffers unused (the ledger) so that the driver's loop takes its
 * buffer back. Breaking the queue instead would end the loop too, but
 * leave the buffer in the ring after the driver freed it (see the ledger).
 * Waiting costs nothing the driver would not have spent: it waits for the
 * same buffer.
 */
static void bh_fail_queue(struct bh_transport *t, struct bh_vq *bq)
{
	unsigned long flags;

	spin_lock_irqsave(&t->ledger_lock, flags);
	atomic_add(bh_ledger_fail_vq(t, bq), &t->spin_returned);
	spin_unlock_irqrestore(&t->ledger_lock, flags);
}

static bool bh_wait_used(struct bh_transport *t, struct bh_vq *bq)
{
	struct virtio_device *vdev = &bq->vd->vdev;
	const struct vring *vr = virtqueue_get_vring(bq->vq);
	u16 start = virtio16_to_cpu(vdev, READ_ONCE(vr->used->idx));
	ktime_t check = ktime_add_ms(ktime_get(), BH_SPIN_CHECK_MS);

	for (;;) {
		u16 used = virtio16_to_cpu(vdev, READ_ONCE(vr->used->idx));

		/* a buffer was used, or every buffer offered is */
		if (used != start || used == virtio16_to_cpu(vdev, READ_ONCE(vr->avail->idx)))
			return true;
		if (!bh_live(t) || (ktime_after(ktime_get(), check) && bh_ping(t))) {
			bh_fail_queue(t, bq);	/* the driver's loop gets its buffer back, unused */
			return true;
		}
		if (ktime_after(ktime_get(), check))
			check = ktime_add_ms(ktime_get(), BH_SPIN_CHECK_MS);
		cpu_relax();
	}
}

static bool bh_notify(struct virtqueue *vq)
{
	struct bh_vdev *vd = to_bh_vdev(vq->vdev);
	struct bh_transport *t = vd->t;
	struct bh_vq *bq = vq->index < BH_MAX_VQS ? vd->vqs[vq->index] : NULL;
	u8 pl[8];

	put_unaligned_le32(vq->index, pl);
	put_unaligned_le32(0, pl + 4);
	bh_send(t, 0, VMSG_EVENT_AVAIL, vd->dev_num, 0, pl, 8,
		ktime_add_ms(ktime_get(), timeout_ms), bh_may_sleep());
	if (bq && bq->spin_wait)
		return bh_wait_used(t, bq);
	/*
	 * Any other queue: a notification that cannot be delivered has failed
	 * the backend (or it was lost already), and bh_reap completes what is
	 * in flight. Returning false would break the queue now, and a broken
	 * queue returns no buffers, so the reap could not hand them back.
	 */
	return true;
}

static void bh_del_vq(struct bh_vdev *vd, unsigned int index)
{
	struct bh_transport *t = vd->t;
	struct bh_vq *bq = vd->vqs[index];
	unsigned long flags;

	if (!bq)
		return;
	spin_lock_irqsave(&t->deliver_lock, flags);
	vd->vqs[index] = NULL;
	spin_unlock_irqrestore(&t->deliver_lock, flags);
	bh_ledger_untrack(t, bq);
	vring_del_virtqueue(bq->vq);	/* frees the rings: dma_free_coherent, bh_free in bulkhead_window.c */
	kfree(bq);
}

static void bh_del_vqs(struct virtio_device *vdev)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vd->vqs); i++)
		bh_del_vq(vd, i);
	vd->nvqs = 0;
}

/*
 * One virtqueue, split or packed as negotiated: virtio_ring allocates its rings with
 * dma_alloc_coherent on our PCI device, whose dma_map_ops (bh_alloc) hand out zeroed window memory
 * from the pool, so every ring area is in the window and its DMA address is its window offset. For a
 * packed ring those are the descriptor ring and the driver and device event suppression structures
 * (three allocations); SET_VQUEUE carries them in its desc, driver and device fields.
 */
static struct virtqueue *bh_setup_vq(struct bh_vdev *vd, unsigned int index,
				     vq_callback_t *callback, const char *name, bool ctx)
{
	struct bh_transport *t = vd->t;
	u8 resp[VMSG_MAX_SIZE], req[40];
	struct bh_vq *bq;
	unsigned long flags;
	u64 desc, avail, used;
	u32 max, num;
	int err;

	if (index >= BH_MAX_VQS || index >= vd->max_vqs)
		return ERR_PTR(-ENOENT);
	put_unaligned_le32(index, req);
	err = bh_vreq(vd, VMSG_GET_VQUEUE, req, 4, resp, VMSG_GET_VQUEUE_LEN, NULL);
	if (err)
		return ERR_PTR(err);
	max = get_unaligned_le32(resp + 12);
	if (get_unaligned_le32(resp + 8) != index || max == 0)
		return ERR_PTR(-ENOENT);
	num = min_t(u32, max, max_queue_size);
	num = min_t(u32, num, 32768);
	num = rounddown_pow_of_two(num);	/* split rings need it; packed ones take it too */

	bq = kzalloc(sizeof(*bq), GFP_KERNEL);
	if (!bq)
		return ERR_PTR(-ENOMEM);
	bq->vq = vring_create_virtqueue(index, num, SMP_CACHE_BYTES, &vd->vdev, true, false, ctx,
					bh_notify, callback, name);
	if (!bq->vq) {
		dev_err(&vd->vdev.dev, "window pool exhausted for %s queue %u of %u entries\n",
			virtio_has_feature(&vd->vdev, VIRTIO_F_RING_PACKED) ? "packed" : "split", index, num);
		kfree(bq);
		return ERR_PTR(-ENOMEM);
	}
	bq->vd = vd;
	bq->num_entries = num;
	desc = virtqueue_get_desc_addr(bq->vq);
	avail = virtqueue_get_avail_addr(bq->vq);
	used = virtqueue_get_used_addr(bq->vq);

	memset(req, 0, sizeof(req));
	put_unaligned_le32(index, req);
	put_unaligned_le32(num, req + 8);
	put_unaligned_le64(desc, req + 16);
	put_unaligned_le64(avail, req + 24);
	put_unaligned_le64(used, req + 32);
	err = bh_vreq(vd, VMSG_SET_VQUEUE, req, 40, resp, 0, NULL);
	if (err)
		goto err_vq;
	/* SET_VQUEUE has an empty answer: check that it was taken */
	put_unaligned_le32(index, req);
	err = bh_vreq(vd, VMSG_GET_VQUEUE, req, 4, resp, VMSG_GET_VQUEUE_LEN, NULL);
	if (err)
		goto err_vq;
	if (get_unaligned_le32(resp + 16) != num || get_unaligned_le64(resp + 24) != desc ||
	    get_unaligned_le64(resp + 32) != avail || get_unaligned_le64(resp + 40) != used) {
		dev_err(&vd->vdev.dev, "backend refused queue %u (size %u at window offset %#llx)\n",
			index, num, desc);
		err = -EIO;
		goto err_vq;
	}
	if (vd->device_id == VIRTIO_ID_BLOCK && !virtio_has_feature(&vd->vdev, VIRTIO_F_RING_PACKED)) {
		err = bh_ledger_track(t, vd, bq, num);
		if (err)
			goto err_vq;
	} else if (vd->device_id == VIRTIO_ID_BLOCK && index == 0) {
		/* the ledger reads split rings (the available ring is the driver's alone; a packed ring's
		 * slots are overwritten by the device's used descriptors, out of order) */
		dev_info(&vd->vdev.dev, "packed rings: block requests in flight when the backend is lost are not failed (packed_ring=0 for that)\n");
	}
	spin_lock_irqsave(&t->deliver_lock, flags);
	vd->vqs[index] = bq;
	spin_unlock_irqrestore(&t->deliver_lock, flags);
	return bq->vq;

err_vq:
	vring_del_virtqueue(bq->vq);
	kfree(bq);
	return ERR_PTR(err);
}

/*
 * The queues whose Linux 6.1 driver spins for a buffer after notifying
 * (bh_wait_used): virtio_console's transmit queues (odd indexes: port
 * output and the control output queue) and virtio_net's control queue (the
 * last one, with VIRTIO_NET_F_CTRL_VQ).
 */
static int bh_mark_spin_wait(struct bh_vdev *vd)
{
	unsigned int q;
	int err;

	/* bh_wait_used and the ledger read split rings; a packed queue keeps Linux's own spin */
	if (virtio_has_feature(&vd->vdev, VIRTIO_F_RING_PACKED))
		return 0;

	for (q = 0; q < vd->nvqs && q < BH_MAX_VQS; q++) {
		struct bh_vq *bq = vd->vqs[q];

		if (!bq || !((vd->device_id == VIRTIO_ID_CONSOLE && (q & 1)) ||
			     (vd->device_id == VIRTIO_ID_NET && q == vd->nvqs - 1 &&
			      virtio_has_feature(&vd->vdev, VIRTIO_NET_F_CTRL_VQ))))
			continue;
		err = bh_ledger_track(vd->t, vd, bq, bq->num_entries);
		if (err)
			return err;
		bq->spin_wait = true;
	}
	return 0;
}

static int bh_find_vqs(struct virtio_device *vdev, unsigned int nvqs, struct virtqueue *vqs[],
		       vq_callback_t *callbacks[], const char * const names[], const bool *ctx,
		       struct irq_affinity *desc)
{
	struct bh_vdev *vd = to_bh_vdev(vdev);
	unsigned int i, qi = 0;
	int err;

	for (i = 0; i < nvqs; i++) {
		if (!names[i]) {
			vqs[i] = NULL;
			continue;
		}
		vqs[i] = bh_setup_vq(vd, qi++, callbacks[i], names[i], ctx ? ctx[i] : false);
		if (IS_ERR(vqs[i])) {
			err = PTR_ERR(vqs[i]);
			bh_del_vqs(vdev);
			return err;
		}
	}
	vd->nvqs = qi;
	err = bh_mark_spin_wait(vd);
	if (err)
		bh_del_vqs(vdev);
	return err;
}

static void bh_synchronize_cbs(struct virtio_device *vdev)
{
	struct bh_transport *t = to_bh_vdev(vdev)->t;
	unsigned long flags;

	/* deliveries run under deliver_lock: taking it waits for them */
	spin_lock_irqsave(&t->deliver_lock, flags);
	spin_unlock_irqrestore(&t->deliver_lock, flags);
}

static const char *bh_bus_name(struct virtio_device *vdev)
{
	return pci_name(to_bh_vdev(vdev)->t->pdev);
}

static bool bh_get_shm_region(struct virtio_device *vdev, struct virtio_shm_region *region, u8 id)
{
	return false;
}

static const struct virtio_config_ops bh_config_ops = {
	.get = bh_get,
	.set = bh_set,
	.generation = bh_generation,
	.get_status = bh_get_status,
	.set_status = bh_set_status,
	.reset = bh_reset,
	.find_vqs = bh_find_vqs,
	.del_vqs = bh_del_vqs,
	.synchronize_cbs = bh_synchronize_cbs,
	.get_features = bh_get_features,
	.finalize_features = bh_finalize_features,
	.bus_name = bh_bus_name,
	.get_shm_region = bh_get_shm_region,
};

/* ------------------------------------------------------------------ */
/* discovery, attach, detach                                          */

static void bh_vdev_release(struct device *dev)
{
	struct virtio_device *vdev = dev_to_virtio(dev);

	kfree(to_bh_vdev(vdev));
}

static void bh_add_device(struct bh_transport *t, u16 n)
{
	u8 resp[VMSG_MAX_SIZE];
	struct bh_vdev *vd;
	unsigned long flags;
	int err;

	err = bh_request(t, 0, VMSG_GET_DEVICE_INFO, n, NULL, 0, resp, VMSG_DEVICE_INFO_LEN, NULL);
	if (err) {
		dev_err(&t->pdev->dev, "device %u: GET_DEVICE_INFO failed (%d)\n", n, err);
		return;
	}
	vd = kzalloc(sizeof(*vd), GFP_KERNEL);
	if (!vd)
		return;
	vd->t = t;
	vd->dev_num = n;
	vd->device_id = get_unaligned_le32(resp + 8);
	vd->vendor_id = get_unaligned_le32(resp + 12);
	vd->config_size = get_unaligned_le32(resp + 20);
	vd->max_vqs = get_unaligned_le32(resp + 24);
	if (vd->device_id == 0 || vd->device_id > 0xffff) {
		dev_err(&t->pdev->dev, "device %u: invalid device id %u, skipped\n", n, vd->device_id);
		kfree(vd);
		return;
	}
	if (vd->config_size > 4096) {
		dev_warn(&t->pdev->dev, "device %u: config size %u capped to 4096\n",
			 n, vd->config_size);
		vd->config_size = 4096;
	}
	if (vd->max_vqs > BH_MAX_VQS) {
		dev_warn(&t->pdev->dev, "device %u: %u queues capped to %u\n",
			 n, vd->max_vqs, BH_MAX_VQS);
		vd->max_vqs = BH_MAX_VQS;
	}
	vd->vdev.id.device = vd->device_id;
	vd->vdev.id.vendor = vd->vendor_id;
	vd->vdev.dev.parent = &t->pdev->dev;
	vd->vdev.dev.release = bh_vdev_release;
	vd->vdev.config = &bh_config_ops;

	dev_info(&t->pdev->dev, "device %u: virtio %s (id %u), config %u bytes, %u queue(s)\n",
		 n, bh_virtio_id_name(vd->device_id), vd->device_id, vd->config_size, vd->max_vqs);

	/* prime the config generation */
	if (vd->config_size) {
		u8 tmp[4];

		bh_get(&vd->vdev, 0, tmp, min_t(u32, 4, vd->config_size));
	}

	spin_lock_irqsave(&t->deliver_lock, flags);
	t->devs[n] = vd;
	spin_unlock_irqrestore(&t->deliver_lock, flags);
	err = register_virtio_device(&vd->vdev);
	if (err) {
		dev_err(&t->pdev->dev, "device %u: register_virtio_device failed (%d)\n", n, err);
		spin_lock_irqsave(&t->deliver_lock, flags);
		t->devs[n] = NULL;
		spin_unlock_irqrestore(&t->deliver_lock, flags);
		put_device(&vd->vdev.dev);
	}
}

static void bh_detach(struct bh_transport *t, bool lost)
{
	unsigned long flags;
	int d;

	if (lost) {
		if (bh_live(t))
			bh_fail(t, "the transport detached from it");
		bh_reap_sync(t);	/* in flight completed, devices broken */
	}
	for (d = BH_MAX_DEVS - 1; d >= 0; d--) {
		struct bh_vdev *vd = t->devs[d];

		if (!vd)
			continue;
		/*
		 * unregister drops the registration's reference; ours keeps vd
		 * alive until no delivery can see it any more (events must still
		 * reach the driver while its remove() runs).
		 */
		get_device(&vd->vdev.dev);
		unregister_virtio_device(&vd->vdev);
		spin_lock_irqsave(&t->deliver_lock, flags);
		t->devs[d] = NULL;
		spin_unlock_irqrestore(&t->deliver_lock, flags);
		put_device(&vd->vdev.dev);
	}
	atomic_set(&t->state, BH_DETACHED);
	cancel_delayed_work_sync(&t->heartbeat);
	del_timer_sync(&t->poll_timer);
	tasklet_kill(&t->deliver_tasklet);
	if (t->lay.window_size) {
		win_wr32(t, BH_HDR_FRONTEND_STATE, BH_FRONTEND_OFF);
		win_wr16(t, BH_HDR_FRONTEND_PEER, BH_PEER_NONE);
	}
	if (t->pool.map)
		bh_pool_detach(t);
	bitmap_zero(t->config_pending, BH_MAX_DEVS);
	memset(t->used_pending, 0, sizeof(t->used_pending));
}

static int bh_discover(struct bh_transport *t)
{
	u8 resp[VMSG_MAX_SIZE], req[4];
	u16 off = 0, rlen, count, next, found = 0;
	int err, i;

	/* PING first: a clear message when the backend does not answer at all */
	err = bh_ping(t);
	if (err) {
		dev_err(&t->pdev->dev, "backend does not answer PING (%d)\n", err);
		return err;
	}

	for (;;) {
		put_unaligned_le16(off, req);
		put_unaligned_le16(BH_MAX_DEVS, req + 2);
		err = bh_request(t, VMSG_TYPE_BUS, VMSG_BUS_GET_DEVICES, 0, req, 4, resp,
				 VMSG_GET_DEVICES_HDR, &rlen);
		if (err) {
			dev_err(&t->pdev->dev, "GET_DEVICES failed (%d)\n", err);
			return err;
		}
		count = get_unaligned_le16(resp + 10);
		next = get_unaligned_le16(resp + 12);
		if (get_unaligned_le16(resp + 8) != off || count > BH_MAX_DEVS ||
		    rlen < VMSG_HDR_SIZE + VMSG_GET_DEVICES_HDR + DIV_ROUND_UP(count, 8)) {
			dev_err(&t->pdev->dev, "malformed GET_DEVICES answer (offset %u count %u, %u bytes)\n",
				get_unaligned_le16(resp + 8), count, rlen);
			return -EPROTO;
		}
		for (i = 0; i < count && off + i < BH_MAX_DEVS; i++) {
			if (!(resp[VMSG_HDR_SIZE + VMSG_GET_DEVICES_HDR + i / 8] & (1 << (i % 8))))
				continue;
			if (!bh_live(t))
				return -ENODEV;
			found++;
			bh_add_device(t, off + i);
		}
		if (!next || next <= off || next >= BH_MAX_DEVS)
			break;
		off = next;
	}
	if (found != t->lay.device_count)
		dev_warn(&t->pdev->dev, "header says %u devices, GET_DEVICES found %u\n",
			 t->lay.device_count, found);
	if (!found)
		dev_err(&t->pdev->dev, "backend offers no devices\n");
	return 0;
}

static void bh_try_attach(struct bh_transport *t)
{
	struct bh_layout l;
	const char *why;
	u32 magic, state, head, tail;
	unsigned long flags;
	int err;

	why = bh_read_layout(t, &l, &magic, &state);
	if (why) {
		bool absent = magic != BH_MAGIC || state != BH_BACKEND_READY;

		if (absent) {
			if (!t->absent_reported &&
			    time_after(jiffies, t->probe_jiffies + msecs_to_jiffies(attach_timeout_ms))) {
				dev_err(&t->pdev->dev,
					"no backend after %u ms: window magic %#010x (expected %#010x), backendState %u (expected %u READY); no devices, still waiting\n",
					attach_timeout_ms, magic, BH_MAGIC, state, BH_BACKEND_READY);
				t->absent_reported = true;
			}
		} else if (!t->have_rejected_gen || t->rejected_gen != l.generation) {
			dev_err(&t->pdev->dev, "backend window header rejected: %s (generation %u); no devices\n",
				why, l.generation);
			t->have_rejected_gen = true;
			t->rejected_gen = l.generation;
		}
		return;
	}
	if (t->have_failed_gen && t->failed_gen == l.generation) {
		/*
		 * Same generation as the backend that failed. A backend that
		 * boots zeroes the FIFO control blocks: our driver->device head
		 * moving away from where we left it means a new backend (even
		 * one that did not bump the generation).
		 */
		if (le32_to_cpu(READ_ONCE(*(__le32 *)(t->win + l.d2v_off + BH_FIFO_HEAD))) ==
		    t->failed_d2v_head)
			return;	/* same broken backend: wait for it to reboot */
		dev_info(&t->pdev->dev, "window FIFOs were reset: the backend rebooted\n");
		t->have_failed_gen = false;
	}

	t->lay = l;
	t->msg_max = min_t(u32, l.slot_size, VMSG_MAX_SIZE);
	WRITE_ONCE(t->dying, false);
	t->reaped = false;
	atomic_set(&t->spin_returned, 0);
	t->fail_reason[0] = 0;
	err = bh_pool_attach(t);
	if (err)
		return;

	/* FIFOs: continue from their current indexes (zero after a backend boot) */
	bh_fifo_setup(t, &t->tx, l.d2v_off, l.d2v_slots);
	bh_fifo_setup(t, &t->rx, l.v2d_off, l.v2d_slots);
	head = le32_to_cpu(READ_ONCE(*t->tx.headp));
	tail = le32_to_cpu(READ_ONCE(*t->tx.tailp));
	if (head != tail)
		dev_warn(&t->pdev->dev, "driver->device FIFO not empty at attach (head %u tail %u)\n",
			 head, tail);
	spin_lock_irqsave(&t->tx_lock, flags);
	t->tx.idx = head;
	spin_unlock_irqrestore(&t->tx_lock, flags);
	spin_lock_irqsave(&t->rx_lock, flags);
	t->rx.idx = le32_to_cpu(READ_ONCE(*t->rx.headp));	/* drop stale messages */
	WRITE_ONCE(*t->rx.tailp, cpu_to_le32(t->rx.idx));
	spin_unlock_irqrestore(&t->rx_lock, flags);

	win_wr16(t, BH_HDR_FRONTEND_PEER, t->my_peer);
	win_wr32(t, BH_HDR_FRONTEND_STATE, BH_FRONTEND_ATTACHED);
	virt_mb();
	atomic_set(&t->state, BH_ATTACHING);
	t->absent_reported = false;
	if (!t->msix)
		mod_timer(&t->poll_timer, jiffies + 1);
	if (heartbeat_ms)
		queue_delayed_work(t->live_wq, &t->heartbeat, msecs_to_jiffies(heartbeat_ms));

	dev_info(&t->pdev->dev,
		 "backend ready: window %u KiB, pool %u KiB at %#x, FIFOs %u/%u x %u B, backend peer %u, we are peer %u, generation %u, %s\n",
		 l.window_size >> 10, l.pool_size >> 10, l.pool_off, l.d2v_slots, l.v2d_slots,
		 l.slot_size, l.backend_peer, t->my_peer, l.generation,
		 t->msix ? "MSI-X" : "polled");

	err = bh_discover(t);
	if (err && bh_live(t))
		bh_fail(t, "attach to generation %u failed (%d)", l.generation, err);
	if (atomic_cmpxchg(&t->state, BH_ATTACHING, BH_ATTACHED) != BH_ATTACHING || err) {
		t->failed_gen = l.generation;
		t->failed_d2v_head = t->tx.idx;
		t->have_failed_gen = true;
		bh_detach(t, true);
		dev_err(&t->pdev->dev, "attach to backend generation %u failed; no devices until it reboots\n",
			l.generation);
	}
}

static void bh_monitor(struct work_struct *w)
{
	struct bh_transport *t = container_of(to_delayed_work(w), struct bh_transport, monitor);
	u32 state, gen;

	mutex_lock(&t->lock);
	switch (atomic_read(&t->state)) {
	case BH_DETACHED:
		bh_try_attach(t);
		break;
	case BH_ATTACHED:
		if (!bh_header_still_ours(t, &state, &gen))
			bh_fail_went_away(t, state, gen);
		if (atomic_read(&t->state) != BH_FAILED)
			break;
		fallthrough;
	case BH_FAILED:
		t->failed_gen = t->lay.generation;
		t->failed_d2v_head = t->tx.idx;
		t->have_failed_gen = true;
		bh_detach(t, true);
		break;
	default:
		break;
	}
	if (!t->removing)
		queue_delayed_work(t->wq, &t->monitor, msecs_to_jiffies(poll_ms ? poll_ms : 200));
	mutex_unlock(&t->lock);
}

/* ------------------------------------------------------------------ */
/* PCI                                                                */

static irqreturn_t bh_irq(int irq, void *data)
{
	struct bh_transport *t = data;
	u32 state, gen;

	if (!t->msix && !ioread32(t->regs + IVSHMEM_INTR_STATUS))
		return IRQ_NONE;
	switch (atomic_read(&t->state)) {
	case BH_ATTACHING:
	case BH_ATTACHED:
		if (!bh_header_still_ours(t, &state, &gen)) {
			bh_fail(t, "window header changed (backendState %u, generation %u)", state, gen);
			break;
		}
		bh_drain(t);
		bh_deliver(t);
		break;
	case BH_DETACHED:
		if (!t->removing)
			mod_delayed_work(t->wq, &t->monitor, 0);
		break;
	default:
		break;
	}
	return IRQ_HANDLED;
}

static int bh_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct bh_transport *t;
	struct bh_ivshmem iv;
	u32 len;
	int err, i;

	BUILD_BUG_ON(offsetof(struct bh_transport, pool) != 0);

	if (data_align < BH_GRANULE || data_align > PAGE_SIZE || !is_power_of_2(data_align)) {
		dev_err(&pdev->dev, "data_align=%u is not a power of two from %u to %lu\n", data_align,
			BH_GRANULE, PAGE_SIZE);
		return -EINVAL;
	}
	t = devm_kzalloc(&pdev->dev, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->pdev = pdev;
	spin_lock_init(&t->tx_lock);
	spin_lock_init(&t->rx_lock);
	spin_lock_init(&t->deliver_lock);
	bh_pool_setup(&t->pool, &pdev->dev, &bh_pool_hooks);
	spin_lock_init(&t->ledger_lock);
	mutex_init(&t->lock);
	for (i = 0; i < BH_MAX_REQS; i++)
		init_completion(&t->reqs[i].comp);
	tasklet_setup(&t->deliver_tasklet, bh_deliver_tasklet);
	timer_setup(&t->poll_timer, bh_poll_timer, 0);
	INIT_DELAYED_WORK(&t->monitor, bh_monitor);
	INIT_DELAYED_WORK(&t->heartbeat, bh_heartbeat);
	INIT_WORK(&t->reap_work, bh_reap);
	atomic_set(&t->state, BH_DETACHED);

	err = bh_ivshmem_open(pdev, &iv, KBUILD_MODNAME);
	if (err)
		return err;
	t->regs = iv.regs;
	t->win = iv.win;
	t->bar_len = iv.bar_len;
	t->my_peer = iv.my_peer;
	t->irq = iv.irq;
	t->msix = iv.msix;
	len = iv.bar_len;

	t->wq = alloc_ordered_workqueue("bulkhead-%s", 0, pci_name(pdev));
	/* block requests depend on the reap for completion: it must run under memory pressure */
	t->live_wq = alloc_workqueue("bulkhead-live-%s", WQ_MEM_RECLAIM | WQ_UNBOUND, 2,
				     pci_name(pdev));
	if (!t->wq || !t->live_wq) {
		if (t->wq)
			destroy_workqueue(t->wq);
		if (t->live_wq)
			destroy_workqueue(t->live_wq);
		err = -ENOMEM;
		goto err_vec;
	}
	pci_set_drvdata(pdev, t);
	set_dma_ops(&pdev->dev, &bh_pool_dma_ops);
	if (t->irq >= 0) {
		err = request_irq(t->irq, bh_irq, t->msix ? 0 : IRQF_SHARED, KBUILD_MODNAME, t);
		if (err) {
			dev_err(&pdev->dev, "cannot request irq %d (%d)\n", t->irq, err);
			goto err_wq;
		}
		if (!t->msix)
			iowrite32(0xffffffff, t->regs + IVSHMEM_INTR_MASK);
	}

	dev_info(&pdev->dev, "ivshmem window %llu KiB, peer id %u, %s; waiting for the backend\n",
		 (u64)len >> 10, t->my_peer,
		 t->msix ? "MSI-X" : t->irq >= 0 ? "INTx, and the FIFO polled every jiffy" :
		 "no interrupt: the FIFO polled every jiffy");
	t->probe_jiffies = jiffies;
	queue_delayed_work(t->wq, &t->monitor, 0);
	return 0;

err_wq:
	set_dma_ops(&pdev->dev, NULL);
	pci_set_drvdata(pdev, NULL);
	destroy_workqueue(t->wq);
	destroy_workqueue(t->live_wq);
err_vec:
	if (t->irq >= 0)
		pci_free_irq_vectors(pdev);
	return err;
}

static void bh_remove(struct pci_dev *pdev)
{
	struct bh_transport *t = pci_get_drvdata(pdev);
	u32 state, gen;

	mutex_lock(&t->lock);
	WRITE_ONCE(t->removing, true);
	mutex_unlock(&t->lock);
	cancel_delayed_work_sync(&t->monitor);
	cancel_delayed_work_sync(&t->heartbeat);

	mutex_lock(&t->lock);
	if (atomic_read(&t->state) != BH_DETACHED) {
		/* a backend that died unseen must not leave the drivers' remove() waiting */
		if (bh_live(t) && !bh_header_still_ours(t, &state, &gen))
			bh_fail_went_away(t, state, gen);
		if (bh_live(t))
			bh_ping(t);
		bh_detach(t, atomic_read(&t->state) == BH_FAILED);
	}
	mutex_unlock(&t->lock);
	flush_work(&t->reap_work);

	if (t->irq >= 0) {
		if (!t->msix)
			iowrite32(0, t->regs + IVSHMEM_INTR_MASK);
		free_irq(t->irq, t);
	}
	cancel_delayed_work_sync(&t->monitor);
	del_timer_sync(&t->poll_timer);
	tasklet_kill(&t->deliver_tasklet);
	if (t->irq >= 0)
		pci_free_irq_vectors(pdev);
	destroy_workqueue(t->wq);
	destroy_workqueue(t->live_wq);
	set_dma_ops(&pdev->dev, NULL);
	if (atomic_read(&t->bad_msgs) || atomic_read(&t->stray_responses))
		dev_info(&pdev->dev, "dropped %d malformed messages, %d stray responses\n",
			 atomic_read(&t->bad_msgs), atomic_read(&t->stray_responses));
	pci_set_drvdata(pdev, NULL);
}

static const struct pci_device_id bh_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },	/* ivshmem */
	{ }
};
MODULE_DEVICE_TABLE(pci, bh_ids);

static struct pci_driver bh_driver = {
	.name = "bulkhead-ivshmem",
	.id_table = bh_ids,
	.probe = bh_probe,
	.remove = bh_remove,
};
module_pci_driver(bh_driver);

MODULE_DESCRIPTION("Bulkhead virtio-msg transport over an ivshmem window");
MODULE_AUTHOR("Bulkhead project");
MODULE_LICENSE("GPL");
