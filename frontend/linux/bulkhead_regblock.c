// SPDX-License-Identifier: GPL-2.0
/*
 * Bulkhead: transport "regblock" over one ivshmem window (docs/transport.md).
 *
 * The Jailhouse-style virtio register block: the hypervisor traps nothing.
 * Each device has a block in the window (struct virtio_ivshmem_header of
 * Jailhouse's virtio_ivshmem.c, bulkhead_regblock.h), found through the
 * device directory the backend wrote. We read registers straight from the
 * block; to write one we wait until write_transaction is 0, store the
 * register, write its offset into write_transaction and ring the backend,
 * which applies it and clears the word. The backend notifies by setting
 * queue_event / config_event and ringing us. Buffers are bounced into the
 * window's pool by the DMA operations of bulkhead_window.ko, so every
 * address the backend sees is a window offset.
 *
 * The window is written by another partition: the header and the directory
 * are copied once into private memory and validated there; a register value
 * read back is only ever the backend's answer to us. A backend that is
 * absent, slow or broken costs an error line and no device.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/slab.h>
#include <linux/delay.h>
#include <linux/workqueue.h>
#include <linux/dma-map-ops.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_ids.h>
#include <asm/unaligned.h>

#include "bulkhead_msg.h"
#include "bulkhead_regblock.h"
#include "bulkhead_window.h"

#define RB_MAX_DEVS		64	/* devices per window we handle */
#define RB_MAX_VQS		64	/* virtqueues per device we handle */

static unsigned int timeout_ms = 3000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms, "register write (write_transaction) timeout in ms (default 3000)");

static unsigned int attach_timeout_ms = 5000;
module_param(attach_timeout_ms, uint, 0644);
MODULE_PARM_DESC(attach_timeout_ms, "report a missing backend after this many ms (default 5000)");

static unsigned int poll_ms = 200;
module_param(poll_ms, uint, 0644);
MODULE_PARM_DESC(poll_ms, "backend state poll interval in ms (default 200)");

static unsigned int backend_vector;
module_param(backend_vector, uint, 0444);
MODULE_PARM_DESC(backend_vector, "ivshmem vector rung on the backend peer (default 0)");

static unsigned int max_queue_size = 256;
module_param(max_queue_size, uint, 0444);
MODULE_PARM_DESC(max_queue_size, "largest virtqueue size used (default 256)");

static unsigned int max_map_kb = 256;
module_param(max_map_kb, uint, 0444);
MODULE_PARM_DESC(max_map_kb, "largest single DMA mapping in KiB (default 256)");

/* as bulkhead_ivshmem.ko's: large mappings aligned for an O_DIRECT backend (bh_pool_init) */
static unsigned int data_align = 512;
module_param(data_align, uint, 0444);
MODULE_PARM_DESC(data_align, "window alignment of DMA mappings of at least this size, a power of two 64..4096 (default 512)");

enum rb_state {
	RB_DETACHED,	/* no backend attached */
	RB_ATTACHED,	/* devices registered */
	RB_FAILED,	/* backend lost or broken: register writes fail fast, the monitor detaches */
};

struct rb_vq {
	struct virtqueue *vq;
	u32 ring_off;
	u32 ring_len;
};

struct rb_transport;

struct rb_vdev {
	struct virtio_device vdev;
	struct rb_transport *t;
	u16 dev_num;
	u32 block;		/* window offset of the register block (validated) */
	u32 config_size;
	u32 num_queues;
	spinlock_t reg_lock;	/* one register transaction at a time */
	struct rb_vq *vqs[RB_MAX_VQS];
};

#define to_rb_vdev(v) container_of(v, struct rb_vdev, vdev)

struct rb_transport {
	struct bh_pool pool;	/* first: the DMA ops find it from the driver data */
	struct bh_ivshmem iv;
	struct pci_dev *pdev;
	u8 *win;
	bool removing;

	struct bh_header hdr;	/* private, validated copy */
	u32 area_off, area_size;
	atomic_t state;
	u32 failed_gen;
	bool have_failed_gen;
	u32 rejected_gen;
	bool have_rejected_gen;
	bool absent_reported;
	unsigned long probe_jiffies;

	spinlock_t deliver_lock;	/* devs[] and their vq pointers */
	struct rb_vdev *devs[RB_MAX_DEVS];
	unsigned int ndevs;

	struct timer_list poll_timer;	/* without MSI-X: event bytes checked every jiffy */
	struct mutex lock;		/* attach/detach */
	struct workqueue_struct *wq;
	struct delayed_work monitor;
};

static void rb_fail(struct rb_transport *t, const char *fmt, ...) __printf(2, 3);

/* ------------------------------------------------------------------ */
/* the window                                                         */

static inline u8 *rb_reg(struct rb_vdev *vd, u32 off)
{
	return vd->t->win + vd->block + off;
}

static u32 rb_rd32(struct rb_vdev *vd, u32 off)
{
	return le32_to_cpu(READ_ONCE(*(__le32 *)rb_reg(vd, off)));
}

static u16 rb_rd16(struct rb_vdev *vd, u32 off)
{
	return le16_to_cpu(READ_ONCE(*(__le16 *)rb_reg(vd, off)));
}

static bool rb_header_still_ours(struct rb_transport *t, u32 *state, u32 *gen)
{
	*state = le32_to_cpu(READ_ONCE(*(__le32 *)(t->win + BH_HDR_BACKEND_STATE)));
	*gen = le32_to_cpu(READ_ONCE(*(__le32 *)(t->win + BH_HDR_BACKEND_GEN)));
	return le32_to_cpu(READ_ONCE(*(__le32 *)(t->win + BH_HDR_MAGIC))) == BH_MAGIC &&
	       *state == BH_BACKEND_READY && *gen == t->hdr.generation;
}

static void rb_ring(struct rb_transport *t)
{
	bh_ivshmem_ring(&t->iv, t->hdr.backend_peer, backend_vector & 0xffff);
}

static void rb_fail(struct rb_transport *t, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (atomic_cmpxchg(&t->state, RB_ATTACHED, RB_FAILED) != RB_ATTACHED)
		return;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	dev_err(&t->pdev->dev, "backend failed: %pV; removing its devices\n", &vaf);
	va_end(args);
	if (t->wq && !READ_ONCE(t->removing))
		mod_delayed_work(t->wq, &t->monitor, 0);
}

/*
 * vi_synchronize_reg_write: waits (reg_lock held) until the backend cleared
 * write_transaction. Polls: config operations may run in atomic context.
 */
static int rb_sync(struct rb_vdev *vd)
{
	struct rb_transport *t = vd->t;
	ktime_t deadline = ktime_add_ms(ktime_get(), timeout_ms);
	u32 state, gen, n = 0;

	for (;;) {
		u32 w = rb_rd32(vd, RB_REG_WRITE_TRANSACTION);

		if (!w)
			return 0;
		if (atomic_read(&t->state) != RB_ATTACHED)
			return -ENODEV;
		if ((++n & 255) == 0 && !rb_header_still_ours(t, &state, &gen)) {
			rb_fail(t, "window header changed (backendState %u, generation %u) during a register write", state, gen);
			return -ENODEV;
		}
		if (ktime_after(ktime_get(), deadline)) {
			rb_fail(t, "device %u: write_transaction %#x not taken within %u ms", vd->dev_num, w, timeout_ms);
			return -ETIMEDOUT;
		}
		udelay(2);
	}
}

/*
 * vi_reg_write (reg_lock held): the register stored, named in
 * write_transaction (with its width for a config-space write), the backend
 * rung; then waits until it took the write, so that what it wrote back can
 * be read at once.
 */
static int rb_write(struct rb_vdev *vd, u32 off, unsigned int width, u64 value, unsigned int cfg_width)
{
	u8 *reg = rb_reg(vd, off);
	int err = rb_sync(vd);

	if (err)
		return err;
	switch (width) {
	case 1:
		WRITE_ONCE(*reg, (u8)value);
		break;
	case 2:
		put_unaligned_le16((u16)value, reg);
		break;
	case 4:
		put_unaligned_le32((u32)value, reg);
		break;
	default:
		put_unaligned_le64(value, reg);
		break;
	}
	virt_wmb();	/* the value before the transaction that names it */
	WRITE_ONCE(*(__le32 *)rb_reg(vd, RB_REG_WRITE_TRANSACTION),
		   cpu_to_le32(off | (cfg_width << RB_TRANSACTION_WIDTH_SHIFT)));
	virt_mb();
	rb_ring(vd->t);
	err = rb_sync(vd);
	virt_rmb();	/* what the backend wrote back, after the cleared word */
	return err;
}

/* ------------------------------------------------------------------ */
/* virtio_config_ops                                                  */

static void rb_get(struct virtio_device *vdev, unsigned int offset, void *buf, unsigned int len)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;

	memset(buf, 0, len);
	if (offset > vd->config_size || len > vd->config_size - offset) {
		dev_warn_ratelimited(&vdev->dev, "config read %u+%u beyond %u bytes\n", offset, len, vd->config_size);
		return;
	}
	spin_lock_irqsave(&vd->reg_lock, flags);
	if (!rb_sync(vd))
		memcpy(buf, rb_reg(vd, RB_REG_CONFIG + offset), len);
	spin_unlock_irqrestore(&vd->reg_lock, flags);
}

static void rb_set(struct virtio_device *vdev, unsigned int offset, const void *buf, unsigned int len)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;
	u64 value = 0;

	if (offset > vd->config_size || len > vd->config_size - offset ||
	    (len != 1 && len != 2 && len != 4 && len != 8)) {
		dev_warn_ratelimited(&vdev->dev, "config write %u+%u not one field of the %u bytes\n",
				     offset, len, vd->config_size);
		return;
	}
	memcpy(&value, buf, len);	/* the field in its (little-endian) config order */
	spin_lock_irqsave(&vd->reg_lock, flags);
	rb_write(vd, RB_REG_CONFIG + offset, len, le64_to_cpu((__force __le64)value), len);
	spin_unlock_irqrestore(&vd->reg_lock, flags);
}

/* vi_generation: the block's generation, waiting while the backend rewrites the config (odd) */
static u32 rb_generation(struct virtio_device *vdev)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	u32 gen = rb_rd32(vd, RB_REG_CONFIG_GENERATION);
	unsigned int tries = 0;

	while ((gen & 1) && tries++ < 100000) {
		if (atomic_read(&vd->t->state) != RB_ATTACHED)
			break;
		cpu_relax();
		gen = rb_rd32(vd, RB_REG_CONFIG_GENERATION);
	}
	virt_rmb();
	return gen;
}

static u8 rb_get_status(struct virtio_device *vdev)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;
	u8 st = 0;

	spin_lock_irqsave(&vd->reg_lock, flags);
	if (!rb_sync(vd))
		st = rb_rd32(vd, RB_REG_DEVICE_STATUS) & 0xff;
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	return st;
}

static void rb_set_status(struct virtio_device *vdev, u8 status)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;

	spin_lock_irqsave(&vd->reg_lock, flags);
	rb_write(vd, RB_REG_DEVICE_STATUS, 4, status, 0);
	spin_unlock_irqrestore(&vd->reg_lock, flags);
}

static void rb_reset(struct virtio_device *vdev)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;
	u32 st = 0;

	spin_lock_irqsave(&vd->reg_lock, flags);
	if (!rb_write(vd, RB_REG_DEVICE_STATUS, 4, 0, 0))
		st = rb_rd32(vd, RB_REG_DEVICE_STATUS);
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	if (st)
		dev_warn(&vdev->dev, "backend did not reset (status %#x)\n", st);
}

/* vi_get_features: select the high word, read it, select the low word, read it */
static u64 rb_get_features(struct virtio_device *vdev)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;
	u64 f = 0;

	spin_lock_irqsave(&vd->reg_lock, flags);
	if (!rb_write(vd, RB_REG_DEVICE_FEATURES_SEL, 4, 1, 0)) {
		f = (u64)rb_rd32(vd, RB_REG_DEVICE_FEATURES) << 32;
		if (!rb_write(vd, RB_REG_DEVICE_FEATURES_SEL, 4, 0, 0))
			f |= rb_rd32(vd, RB_REG_DEVICE_FEATURES);
		else
			f = 0;
	}
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	return f;
}

static int rb_finalize_features(struct virtio_device *vdev)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned long flags;
	int err;

	vring_transport_features(vdev);
	/* split rings only, no per-queue reset, no notification data */
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
	spin_lock_irqsave(&vd->reg_lock, flags);
	err = rb_write(vd, RB_REG_DRIVER_FEATURES_SEL, 4, 1, 0) ?:
	      rb_write(vd, RB_REG_DRIVER_FEATURES, 4, upper_32_bits(vdev->features), 0) ?:
	      rb_write(vd, RB_REG_DRIVER_FEATURES_SEL, 4, 0, 0) ?:
	      rb_write(vd, RB_REG_DRIVER_FEATURES, 4, lower_32_bits(vdev->features), 0);
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	return err;
}

/* vi_notify: the doorbell alone (every queue's device vector is the backend's one line) */
static bool rb_notify(struct virtqueue *vq)
{
	struct rb_vdev *vd = to_rb_vdev(vq->vdev);

	if (atomic_read(&vd->t->state) != RB_ATTACHED)
		return false;
	virt_wmb();	/* the available ring before the doorbell */
	rb_ring(vd->t);
	return true;
}

static void rb_del_vq(struct rb_vdev *vd, unsigned int index)
{
	struct rb_transport *t = vd->t;
	struct rb_vq *q = vd->vqs[index];
	unsigned long flags;

	if (!q)
		return;
	spin_lock_irqsave(&t->deliver_lock, flags);
	vd->vqs[index] = NULL;
	spin_unlock_irqrestore(&t->deliver_lock, flags);
	/* vi_del_vq: select and deactivate */
	spin_lock_irqsave(&vd->reg_lock, flags);
	if (!rb_write(vd, RB_REG_QUEUE_SEL, 4, index, 0))
		rb_write(vd, RB_REG_QUEUE_ENABLE, 2, 0, 0);
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	vring_del_virtqueue(q->vq);
	bh_pool_release(&t->pool, q->ring_off, q->ring_len);
	kfree(q);
}

static void rb_del_vqs(struct virtio_device *vdev)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vd->vqs); i++)
		rb_del_vq(vd, i);
}

/* vi_setup_vq: select, check it is free, read the maximum, write size, vector, areas, enable */
static struct virtqueue *rb_setup_vq(struct rb_vdev *vd, unsigned int index,
				     vq_callback_t *callback, const char *name, bool ctx)
{
	struct rb_transport *t = vd->t;
	const struct vring *vr;
	unsigned long flags;
	struct rb_vq *q;
	u32 max = 0, num, desc, avail, used;
	bool busy = true;
	int err;

	if (index >= RB_MAX_VQS || index >= vd->num_queues)
		return ERR_PTR(-ENOENT);
	spin_lock_irqsave(&vd->reg_lock, flags);
	err = rb_write(vd, RB_REG_QUEUE_SEL, 4, index, 0);
	if (!err) {
		busy = rb_rd16(vd, RB_REG_QUEUE_ENABLE) != 0;
		max = rb_rd16(vd, RB_REG_QUEUE_SIZE);
	}
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	if (err)
		return ERR_PTR(err);
	if (busy || max == 0)
		return ERR_PTR(-ENOENT);
	num = rounddown_pow_of_two(min_t(u32, max, max_queue_size));

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q)
		return ERR_PTR(-ENOMEM);
	q->ring_len = PAGE_ALIGN(vring_size(num, SMP_CACHE_BYTES));
	q->ring_off = bh_pool_alloc(&t->pool, q->ring_len, PAGE_SIZE);
	if (!q->ring_off) {
		dev_err(&vd->vdev.dev, "window pool exhausted for queue %u (%u bytes)\n", index, q->ring_len);
		kfree(q);
		return ERR_PTR(-ENOMEM);
	}
	memset(t->win + q->ring_off, 0, q->ring_len);
	q->vq = vring_new_virtqueue(index, num, SMP_CACHE_BYTES, &vd->vdev, true, ctx,
				    t->win + q->ring_off, rb_notify, callback, name);
	if (!q->vq) {
		err = -ENOMEM;
		goto err_ring;
	}
	vr = virtqueue_get_vring(q->vq);
	desc = (u8 *)vr->desc - t->win;
	avail = (u8 *)vr->avail - t->win;
	used = (u8 *)vr->used - t->win;

	spin_lock_irqsave(&vd->reg_lock, flags);
	err = rb_write(vd, RB_REG_QUEUE_SIZE, 2, num, 0) ?:
	      rb_write(vd, RB_REG_QUEUE_DRIVER_VECTOR, 2, 0, 0) ?:
	      rb_write(vd, RB_REG_QUEUE_DESC, 8, desc, 0) ?:
	      rb_write(vd, RB_REG_QUEUE_DRIVER, 8, avail, 0) ?:
	      rb_write(vd, RB_REG_QUEUE_DEVICE, 8, used, 0) ?:
	      rb_write(vd, RB_REG_QUEUE_ENABLE, 2, 1, 0);
	/* queue_enable reads back 0 when the backend refused the queue */
	if (!err && rb_rd16(vd, RB_REG_QUEUE_ENABLE) != 1)
		err = -EIO;
	spin_unlock_irqrestore(&vd->reg_lock, flags);
	if (err) {
		dev_err(&vd->vdev.dev, "backend refused queue %u (size %u at window offset %#x): %d\n",
			index, num, desc, err);
		goto err_vq;
	}
	spin_lock_irqsave(&t->deliver_lock, flags);
	vd->vqs[index] = q;
	spin_unlock_irqrestore(&t->deliver_lock, flags);
	return q->vq;

err_vq:
	vring_del_virtqueue(q->vq);
err_ring:
	bh_pool_release(&t->pool, q->ring_off, q->ring_len);
	kfree(q);
	return ERR_PTR(err);
}

static int rb_find_vqs(struct virtio_device *vdev, unsigned int nvqs, struct virtqueue *vqs[],
		       vq_callback_t *callbacks[], const char * const names[], const bool *ctx,
		       struct irq_affinity *desc)
{
	struct rb_vdev *vd = to_rb_vdev(vdev);
	unsigned int i, qi = 0;

	for (i = 0; i < nvqs; i++) {
		if (!names[i]) {
			vqs[i] = NULL;
			continue;
		}
		vqs[i] = rb_setup_vq(vd, qi++, callbacks[i], names[i], ctx ? ctx[i] : false);
		if (IS_ERR(vqs[i])) {
			int err = PTR_ERR(vqs[i]);

			rb_del_vqs(vdev);
			return err;
		}
	}
	return 0;
}

static void rb_synchronize_cbs(struct virtio_device *vdev)
{
	struct rb_transport *t = to_rb_vdev(vdev)->t;
	unsigned long flags;

	/* deliveries run under deliver_lock: taking it waits for them */
	spin_lock_irqsave(&t->deliver_lock, flags);
	spin_unlock_irqrestore(&t->deliver_lock, flags);
}

static const char *rb_bus_name(struct virtio_device *vdev)
{
	return pci_name(to_rb_vdev(vdev)->t->pdev);
}

static bool rb_get_shm_region(struct virtio_device *vdev, struct virtio_shm_region *region, u8 id)
{
	return false;
}

static const struct virtio_config_ops rb_config_ops = {
	.get = rb_get,
	.set = rb_set,
	.generation = rb_generation,
	.get_status = rb_get_status,
	.set_status = rb_set_status,
	.reset = rb_reset,
	.find_vqs = rb_find_vqs,
	.del_vqs = rb_del_vqs,
	.synchronize_cbs = rb_synchronize_cbs,
	.get_features = rb_get_features,
	.finalize_features = rb_finalize_features,
	.bus_name = rb_bus_name,
	.get_shm_region = rb_get_shm_region,
};

/* ------------------------------------------------------------------ */
/* notifications from the backend                                     */

/* vi_interrupt for every device: the event bytes cleared, then handed to the virtio core */
static void rb_deliver(struct rb_transport *t)
{
	unsigned long flags;
	unsigned int d, q;

	spin_lock_irqsave(&t->deliver_lock, flags);
	for (d = 0; d < t->ndevs; d++) {
		struct rb_vdev *vd = t->devs[d];

		if (!vd)
			continue;
		if (READ_ONCE(*rb_reg(vd, RB_REG_CONFIG_EVENT))) {
			WRITE_ONCE(*rb_reg(vd, RB_REG_CONFIG_EVENT), 0);
			virt_mb();
			if (rb_rd32(vd, RB_REG_DEVICE_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET)
				dev_warn(&vd->vdev.dev, "backend set DEVICE_NEEDS_RESET\n");
			virtio_config_changed(&vd->vdev);
		}
		if (READ_ONCE(*rb_reg(vd, RB_REG_QUEUE_EVENT))) {
			WRITE_ONCE(*rb_reg(vd, RB_REG_QUEUE_EVENT), 0);
			virt_mb();
			for (q = 0; q < ARRAY_SIZE(vd->vqs); q++)
				if (vd->vqs[q])
					vring_interrupt(0, vd->vqs[q]->vq);
		}
	}
	spin_unlock_irqrestore(&t->deliver_lock, flags);
}

static irqreturn_t rb_irq(int irq, void *data)
{
	struct rb_transport *t = data;
	u32 state, gen;

	if (!t->iv.msix && !ioread32(t->iv.regs + IVSHMEM_INTR_STATUS))
		return IRQ_NONE;
	switch (atomic_read(&t->state)) {
	case RB_ATTACHED:
		if (!rb_header_still_ours(t, &state, &gen)) {
			rb_fail(t, "window header changed (backendState %u, generation %u)", state, gen);
			break;
		}
		rb_deliver(t);
		break;
	case RB_DETACHED:
		if (!READ_ONCE(t->removing))
			mod_delayed_work(t->wq, &t->monitor, 0);
		break;
	default:
		break;
	}
	return IRQ_HANDLED;
}

/* Without MSI-X, QEMU's ivshmem-doorbell raises nothing: the event bytes are looked at every jiffy. */
static void rb_poll_timer(struct timer_list *tl)
{
	struct rb_transport *t = from_timer(t, tl, poll_timer);

	if (atomic_read(&t->state) != RB_ATTACHED)
		return;
	rb_deliver(t);
	mod_timer(&t->poll_timer, jiffies + 1);
}

/* ------------------------------------------------------------------ */
/* attach, detach                                                     */

static void rb_vdev_release(struct device *dev)
{
	kfree(to_rb_vdev(dev_to_virtio(dev)));
}

/*
 * The header and the directory, copied once and validated: the area inside
 * the window and clear of the pool, each block inside the area, page-sized
 * at most, not overlapping another.
 */
static const char *rb_read_window(struct rb_transport *t, u8 *dir, u32 *n_out, u32 *magic, u32 *state)
{
	u8 h[BH_HEADER_SIZE];
	const char *why;
	u32 n, i, j;

	why = bh_read_header(t->win, t->iv.bar_len, t->iv.my_peer, BH_TRANSPORT_REGBLOCK, h, &t->hdr);
	*magic = t->hdr.magic;
	*state = t->hdr.state;
	if (why)
		return why;
	t->area_off = get_unaligned_le32(h + BH_HDR_TRANSPORT_AREA);
	t->area_size = get_unaligned_le32(h + BH_HDR_TRANSPORT_AREA_SIZE);
	if (t->area_off < BH_HEADER_SIZE || (t->area_off & (PAGE_SIZE - 1)) ||
	    t->area_size < RB_DIR_ENTRIES || !bh_range_ok(t->area_off, t->area_size, t->hdr.window_size) ||
	    bh_overlap(t->area_off, t->area_size, t->hdr.pool_off, t->hdr.pool_size))
		return "register-block area misplaced (inside the header, unaligned, outside the window or over the pool)";
	n = get_unaligned_le32(t->win + t->area_off + RB_DIR_COUNT);
	if (n == 0 || n > RB_MAX_DEVS || n > t->hdr.device_count ||
	    RB_DIR_ENTRIES + n * RB_DIR_ENTRY_SIZE > t->area_size)
		return "device directory count impossible";
	memcpy(dir, t->win + t->area_off + RB_DIR_ENTRIES, n * RB_DIR_ENTRY_SIZE);	/* one read */
	virt_rmb();
	for (i = 0; i < n; i++) {
		const u8 *e = dir + i * RB_DIR_ENTRY_SIZE;
		u32 off = get_unaligned_le32(e + RB_DIR_BLOCK_OFFSET);
		u32 size = get_unaligned_le32(e + RB_DIR_BLOCK_SIZE);

		if ((off & 7) || size < RB_REG_CONFIG || size > RB_BLOCK_MAX ||
		    off < t->area_off + RB_DIR_ENTRIES + n * RB_DIR_ENTRY_SIZE ||
		    !bh_range_ok(off - t->area_off, size, t->area_size))
			return "a register block lies outside the area";
		for (j = 0; j < i; j++) {
			const u8 *f = dir + j * RB_DIR_ENTRY_SIZE;

			if (bh_overlap(off, size, get_unaligned_le32(f + RB_DIR_BLOCK_OFFSET),
				       get_unaligned_le32(f + RB_DIR_BLOCK_SIZE)))
				return "two register blocks overlap";
		}
		if (get_unaligned_le32(t->win + off + RB_REG_REVISION) != RB_REVISION)
			return "register block revision is not 1";
	}
	*n_out = n;
	return NULL;
}

static void rb_detach(struct rb_transport *t, bool lost)
{
	unsigned long flags;
	int d;

	if (lost)
		for (d = 0; d < RB_MAX_DEVS; d++)
			if (t->devs[d])
				virtio_break_device(&t->devs[d]->vdev);
	if (atomic_read(&t->state) == RB_ATTACHED && lost)
		atomic_set(&t->state, RB_FAILED);
	for (d = RB_MAX_DEVS - 1; d >= 0; d--) {
		struct rb_vdev *vd = t->devs[d];

		if (!vd)
			continue;
		get_device(&vd->vdev.dev);
		unregister_virtio_device(&vd->vdev);
		spin_lock_irqsave(&t->deliver_lock, flags);
		t->devs[d] = NULL;
		spin_unlock_irqrestore(&t->deliver_lock, flags);
		put_device(&vd->vdev.dev);
	}
	atomic_set(&t->state, RB_DETACHED);
	del_timer_sync(&t->poll_timer);
	if (t->hdr.window_size) {
		WRITE_ONCE(*(__le32 *)(t->win + BH_HDR_FRONTEND_STATE), cpu_to_le32(BH_FRONTEND_OFF));
		WRITE_ONCE(*(__le16 *)(t->win + BH_HDR_FRONTEND_PEER), cpu_to_le16(BH_PEER_NONE));
	}
	if (t->pool.map)
		bh_pool_free(&t->pool);
	t->ndevs = 0;
}

static void rb_add_device(struct rb_transport *t, u16 n, const u8 *e)
{
	struct rb_vdev *vd;
	unsigned long flags;
	u32 id = get_unaligned_le32(e + RB_DIR_DEVICE_ID);
	int err;

	if (id == 0 || id > 0xffff) {
		dev_err(&t->pdev->dev, "device %u: invalid device id %u, skipped\n", n, id);
		return;
	}
	vd = kzalloc(sizeof(*vd), GFP_KERNEL);
	if (!vd)
		return;
	vd->t = t;
	vd->dev_num = n;
	vd->block = get_unaligned_le32(e + RB_DIR_BLOCK_OFFSET);
	vd->config_size = get_unaligned_le32(e + RB_DIR_BLOCK_SIZE) - RB_REG_CONFIG;
	vd->num_queues = min_t(u32, get_unaligned_le32(e + RB_DIR_NUM_QUEUES), RB_MAX_VQS);
	spin_lock_init(&vd->reg_lock);
	vd->vdev.id.device = id;
	vd->vdev.id.vendor = get_unaligned_le32(e + RB_DIR_VENDOR_ID);
	vd->vdev.dev.parent = &t->pdev->dev;
	vd->vdev.dev.release = rb_vdev_release;
	vd->vdev.config = &rb_config_ops;
	dev_info(&t->pdev->dev, "device %u: virtio %s (id %u), register block at %#x, config %u bytes, %u queue(s)\n",
		 n, bh_virtio_id_name(id), id, vd->block, vd->config_size, vd->num_queues);

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

static void rb_try_attach(struct rb_transport *t)
{
	u8 *dir;
	const char *why;
	u32 n = 0, magic, state, i;

	dir = kmalloc(RB_MAX_DEVS * RB_DIR_ENTRY_SIZE, GFP_KERNEL);
	if (!dir)
		return;
	why = rb_read_window(t, dir, &n, &magic, &state);
	if (why) {
		if (magic != BH_MAGIC || state != BH_BACKEND_READY) {
			if (!t->absent_reported &&
			    time_after(jiffies, t->probe_jiffies + msecs_to_jiffies(attach_timeout_ms))) {
				dev_err(&t->pdev->dev,
					"no backend after %u ms: window magic %#010x (expected %#010x), backendState %u (expected %u READY); no devices, still waiting\n",
					attach_timeout_ms, magic, BH_MAGIC, state, BH_BACKEND_READY);
				t->absent_reported = true;
			}
		} else if (!t->have_rejected_gen || t->rejected_gen != t->hdr.generation) {
			dev_err(&t->pdev->dev, "backend window header rejected: %s (generation %u); no devices\n",
				why, t->hdr.generation);
			t->have_rejected_gen = true;
			t->rejected_gen = t->hdr.generation;
		}
		goto out;
	}
	if (t->have_failed_gen && t->failed_gen == t->hdr.generation)
		goto out;	/* the backend that failed: wait for it to reboot */
	if (bh_pool_init(&t->pool, t->win, t->hdr.pool_off, t->hdr.pool_size, (size_t)max_map_kb * 1024, data_align))
		goto out;
	WRITE_ONCE(*(__le16 *)(t->win + BH_HDR_FRONTEND_PEER), cpu_to_le16(t->iv.my_peer));
	WRITE_ONCE(*(__le32 *)(t->win + BH_HDR_FRONTEND_STATE), cpu_to_le32(BH_FRONTEND_ATTACHED));
	virt_mb();
	t->ndevs = n;
	t->absent_reported = false;
	atomic_set(&t->state, RB_ATTACHED);
	if (!t->iv.msix)
		mod_timer(&t->poll_timer, jiffies + 1);
	dev_info(&t->pdev->dev,
		 "backend ready: window %u KiB, pool %u KiB at %#x, %u register block(s), backend peer %u, we are peer %u, generation %u, %s\n",
		 t->hdr.window_size >> 10, t->hdr.pool_size >> 10, t->hdr.pool_off, n,
		 t->hdr.backend_peer, t->iv.my_peer, t->hdr.generation, t->iv.msix ? "MSI-X" : "polled");
	for (i = 0; i < n && atomic_read(&t->state) == RB_ATTACHED; i++)
		rb_add_device(t, i, dir + i * RB_DIR_ENTRY_SIZE);
	if (atomic_read(&t->state) != RB_ATTACHED) {
		t->failed_gen = t->hdr.generation;
		t->have_failed_gen = true;
		rb_detach(t, true);
		dev_err(&t->pdev->dev, "attach to backend generation %u failed; no devices until it reboots\n",
			t->failed_gen);
	}
out:
	kfree(dir);
}

static void rb_monitor(struct work_struct *w)
{
	struct rb_transport *t = container_of(to_delayed_work(w), struct rb_transport, monitor);
	u32 state, gen;

	mutex_lock(&t->lock);
	switch (atomic_read(&t->state)) {
	case RB_DETACHED:
		rb_try_attach(t);
		break;
	case RB_ATTACHED:
		if (!rb_header_still_ours(t, &state, &gen)) {
			dev_warn(&t->pdev->dev,
				 "backend went away (backendState %u, generation %u, attached to %u): removing its devices\n",
				 state, gen, t->hdr.generation);
			rb_detach(t, true);
		}
		break;
	case RB_FAILED:
		t->failed_gen = t->hdr.generation;
		t->have_failed_gen = true;
		rb_detach(t, true);
		break;
	}
	if (!READ_ONCE(t->removing))
		queue_delayed_work(t->wq, &t->monitor, msecs_to_jiffies(poll_ms ? poll_ms : 200));
	mutex_unlock(&t->lock);
}

/* ------------------------------------------------------------------ */
/* PCI                                                                */

static int rb_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct rb_transport *t;
	int err;

	BUILD_BUG_ON(offsetof(struct rb_transport, pool) != 0);
	if (data_align < BH_GRANULE || data_align > PAGE_SIZE || !is_power_of_2(data_align)) {
		dev_err(&pdev->dev, "data_align=%u is not a power of two from %u to %lu\n", data_align,
			BH_GRANULE, PAGE_SIZE);
		return -EINVAL;
	}
	t = devm_kzalloc(&pdev->dev, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->pdev = pdev;
	spin_lock_init(&t->deliver_lock);
	mutex_init(&t->lock);
	bh_pool_setup(&t->pool, &pdev->dev, NULL);
	timer_setup(&t->poll_timer, rb_poll_timer, 0);
	INIT_DELAYED_WORK(&t->monitor, rb_monitor);
	atomic_set(&t->state, RB_DETACHED);

	err = bh_ivshmem_open(pdev, &t->iv, KBUILD_MODNAME);
	if (err)
		return err;
	t->win = t->iv.win;
	t->wq = alloc_ordered_workqueue("bulkhead-rb-%s", 0, pci_name(pdev));
	if (!t->wq) {
		err = -ENOMEM;
		goto err_vec;
	}
	pci_set_drvdata(pdev, t);
	set_dma_ops(&pdev->dev, &bh_pool_dma_ops);
	if (t->iv.irq >= 0) {
		err = request_irq(t->iv.irq, rb_irq, t->iv.msix ? 0 : IRQF_SHARED, KBUILD_MODNAME, t);
		if (err) {
			dev_err(&pdev->dev, "cannot request irq %d (%d)\n", t->iv.irq, err);
			goto err_wq;
		}
		if (!t->iv.msix)
			iowrite32(0xffffffff, t->iv.regs + IVSHMEM_INTR_MASK);
	}
	dev_info(&pdev->dev, "ivshmem window %u KiB, peer id %u, %s; waiting for a regblock backend\n",
		 t->iv.bar_len >> 10, t->iv.my_peer,
		 t->iv.msix ? "MSI-X" : "no MSI-X: the event bytes polled every jiffy");
	t->probe_jiffies = jiffies;
	queue_delayed_work(t->wq, &t->monitor, 0);
	return 0;

err_wq:
	set_dma_ops(&pdev->dev, NULL);
	pci_set_drvdata(pdev, NULL);
	destroy_workqueue(t->wq);
err_vec:
	if (t->iv.irq >= 0)
		pci_free_irq_vectors(pdev);
	return err;
}

static void rb_remove(struct pci_dev *pdev)
{
	struct rb_transport *t = pci_get_drvdata(pdev);
	u32 state, gen;

	mutex_lock(&t->lock);
	WRITE_ONCE(t->removing, true);
	mutex_unlock(&t->lock);
	cancel_delayed_work_sync(&t->monitor);
	mutex_lock(&t->lock);
	if (atomic_read(&t->state) != RB_DETACHED)
		rb_detach(t, !rb_header_still_ours(t, &state, &gen) || atomic_read(&t->state) == RB_FAILED);
	mutex_unlock(&t->lock);
	if (t->iv.irq >= 0) {
		if (!t->iv.msix)
			iowrite32(0, t->iv.regs + IVSHMEM_INTR_MASK);
		free_irq(t->iv.irq, t);
		pci_free_irq_vectors(pdev);
	}
	del_timer_sync(&t->poll_timer);
	destroy_workqueue(t->wq);
	set_dma_ops(&pdev->dev, NULL);
	pci_set_drvdata(pdev, NULL);
}

static const struct pci_device_id rb_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110) },	/* ivshmem */
	{ }
};
MODULE_DEVICE_TABLE(pci, rb_ids);

static struct pci_driver rb_driver = {
	.name = "bulkhead-regblock",
	.id_table = rb_ids,
	.probe = rb_probe,
	.remove = rb_remove,
};
module_pci_driver(rb_driver);

MODULE_DESCRIPTION("Bulkhead register-block (Jailhouse virtio-over-ivshmem style) transport over an ivshmem window");
MODULE_AUTHOR("Bulkhead project");
MODULE_LICENSE("GPL");
