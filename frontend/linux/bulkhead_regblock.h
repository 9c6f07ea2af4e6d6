/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bulkhead transport "regblock" (docs/transport.md): the virtio register
 * block of Jailhouse's virtio-over-ivshmem (struct virtio_ivshmem_header of
 * drivers/virtio/virtio_ivshmem.c, read at lfd/linux commit 03737a70fbd5,
 * header revision 1), one block per device, behind a device directory in the
 * window's transport area. Every constant of this wire the Linux module uses
 * lives here; firmware/transport/regblock-layout.ts is the backend's copy.
 */
#ifndef BULKHEAD_REGBLOCK_H
#define BULKHEAD_REGBLOCK_H

#define RB_REVISION		1

/* registers of a device's block (all little-endian) */
#define RB_REG_REVISION		0x00	/* u32 R */
#define RB_REG_SIZE		0x04	/* u32 R: bytes up to the end of the config space */
#define RB_REG_WRITE_TRANSACTION 0x08	/* u32 RW: offset of the register written, 0 = none */
#define RB_REG_DEVICE_FEATURES	0x0C	/* u32 R */
#define RB_REG_DEVICE_FEATURES_SEL 0x10	/* u32 W */
#define RB_REG_DRIVER_FEATURES	0x14	/* u32 W */
#define RB_REG_DRIVER_FEATURES_SEL 0x18	/* u32 W */
#define RB_REG_QUEUE_SEL	0x1C	/* u32 W */
#define RB_REG_QUEUE_SIZE	0x20	/* u16 RW */
#define RB_REG_QUEUE_DEVICE_VECTOR 0x22	/* u16 R */
#define RB_REG_QUEUE_DRIVER_VECTOR 0x24	/* u16 W */
#define RB_REG_QUEUE_ENABLE	0x26	/* u16 RW */
#define RB_REG_QUEUE_DESC	0x28	/* u64 W */
#define RB_REG_QUEUE_DRIVER	0x30	/* u64 W */
#define RB_REG_QUEUE_DEVICE	0x38	/* u64 W */
#define RB_REG_CONFIG_EVENT	0x40	/* u8: set by the backend, cleared by us */
#define RB_REG_QUEUE_EVENT	0x41	/* u8: set by the backend, cleared by us */
#define RB_REG_DEVICE_STATUS	0x44	/* u32 RW */
#define RB_REG_CONFIG_GENERATION 0x48	/* u32 R: odd while the backend rewrites the config */
#define RB_REG_CONFIG		0x4C	/* the configuration space */

/* Bulkhead's addition: a config-space write carries its width in bits 16-23 */
#define RB_TRANSACTION_WIDTH_SHIFT 16

/* the device directory at the header's transportArea */
#define RB_DIR_COUNT		0x00
#define RB_DIR_ENTRIES		0x20
#define RB_DIR_ENTRY_SIZE	32
#define RB_DIR_DEVICE_ID	0x00
#define RB_DIR_VENDOR_ID	0x04
#define RB_DIR_BLOCK_OFFSET	0x08
#define RB_DIR_BLOCK_SIZE	0x0C
#define RB_DIR_NUM_QUEUES	0x10

#define RB_BLOCK_MAX		4096	/* a block (registers + config) fits one page */

#endif /* BULKHEAD_REGBLOCK_H */
