/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bulkhead window layout (docs/window-layout.md, version 1) and the
 * virtio-msg message ids and sizes (docs/transport.md, transport revision 1,
 * pinned to wmamills/virtio-msg-spec transport-msg.tex fb000641cb51).
 *
 * Every protocol constant the Linux transport uses lives in this one file,
 * so a later revision of the layout or of virtio-msg is a change here.
 */
#ifndef BULKHEAD_MSG_H
#define BULKHEAD_MSG_H

/* ---- window header (all little-endian) ---- */
#define BH_MAGIC		0x4B4C4842u	/* bytes "BHLK" */
#define BH_VERSION		1
#define BH_HEADER_SIZE		128

#define BH_HDR_MAGIC		0x00	/* u32 */
#define BH_HDR_VERSION		0x04	/* u16 */
#define BH_HDR_HEADER_SIZE	0x06	/* u16 */
#define BH_HDR_WINDOW_SIZE	0x08	/* u32 */
#define BH_HDR_SLOT_SIZE	0x0C	/* u32 */
#define BH_HDR_D2V_OFFSET	0x10	/* u32 */
#define BH_HDR_D2V_SLOTS	0x14	/* u32 */
#define BH_HDR_V2D_OFFSET	0x18	/* u32 */
#define BH_HDR_V2D_SLOTS	0x1C	/* u32 */
#define BH_HDR_POOL_OFFSET	0x20	/* u32 */
#define BH_HDR_POOL_SIZE	0x24	/* u32 */
#define BH_HDR_BACKEND_STATE	0x28	/* u32 */
#define BH_HDR_BACKEND_GEN	0x2C	/* u32 */
#define BH_HDR_FRONTEND_STATE	0x30	/* u32, written by us */
#define BH_HDR_TRANSPORT_REV	0x34	/* u32 */
#define BH_HDR_TRANSPORT_FEAT	0x38	/* u32 */
#define BH_HDR_DEVICE_COUNT	0x3C	/* u32 */
#define BH_HDR_BACKEND_PEER	0x40	/* u16 */
#define BH_HDR_FRONTEND_PEER	0x42	/* u16, written by us */
#define BH_HDR_TRANSPORT	0x44	/* u32, BH_TRANSPORT_* (0 in every window before it existed) */
#define BH_HDR_TRANSPORT_AREA	0x48	/* u32: the transport's area (regblock: the device directory) */
#define BH_HDR_TRANSPORT_AREA_SIZE 0x4C	/* u32: its bytes (regblock: directory + blocks) */

#define BH_TRANSPORT_MSG	0	/* virtio-msg over the two FIFOs */
#define BH_TRANSPORT_REGBLOCK	1	/* Jailhouse-style register blocks */
#define BH_TRANSPORT_MMIO	2	/* trapped virtio-mmio access records */

#define BH_BACKEND_OFF		0
#define BH_BACKEND_BOOTING	1
#define BH_BACKEND_READY	2
#define BH_BACKEND_STOPPED	3

#define BH_FRONTEND_OFF		0
#define BH_FRONTEND_ATTACHED	1

#define BH_PEER_NONE		0xFFFF

/* FIFO control block: head (producer) at +0, tail (consumer) at +64, slots at +128 */
#define BH_FIFO_HEAD		0
#define BH_FIFO_TAIL		64
#define BH_FIFO_SLOTS		128

#define BH_TRANSPORT_REVISION	1

/* ---- virtio-msg ---- */
#define VMSG_HDR_SIZE		8
#define VMSG_MAX_SIZE		264	/* 8-byte header + payload */

#define VMSG_TYPE_RESPONSE	0x01	/* bit0: 0 request, 1 response */
#define VMSG_TYPE_BUS		0x02	/* bit1: 0 transport, 1 bus */

/* transport messages */
#define VMSG_GET_DEVICE_INFO	0x02
#define VMSG_GET_DEVICE_FEATURES 0x03
#define VMSG_SET_DRIVER_FEATURES 0x04
#define VMSG_GET_CONFIG		0x05
#define VMSG_SET_CONFIG		0x06
#define VMSG_GET_DEVICE_STATUS	0x07
#define VMSG_SET_DEVICE_STATUS	0x08
#define VMSG_GET_VQUEUE		0x09
#define VMSG_SET_VQUEUE		0x0A
#define VMSG_RESET_VQUEUE	0x0B
#define VMSG_GET_SHM		0x0C
#define VMSG_EVENT_CONFIG	0x40
#define VMSG_EVENT_AVAIL	0x41
#define VMSG_EVENT_USED		0x42

/* bus messages */
#define VMSG_BUS_GET_DEVICES	0x02
#define VMSG_BUS_PING		0x03
#define VMSG_BUS_EVENT_DEVICE	0x40

/* fixed answer payload sizes */
#define VMSG_DEVICE_INFO_LEN	24
#define VMSG_GET_VQUEUE_LEN	40
#define VMSG_GET_CONFIG_HDR	12	/* generation, offset, size */
#define VMSG_SET_CONFIG_HDR	12	/* generation, offset, size */
#define VMSG_GET_DEVICES_HDR	6	/* offset, count, next_offset */

/* ---- ivshmem (QEMU ivshmem-doorbell) BAR0 registers ---- */
#define IVSHMEM_INTR_MASK	0
#define IVSHMEM_INTR_STATUS	4
#define IVSHMEM_IV_POSITION	8
#define IVSHMEM_DOORBELL	12

/* virtio feature bits not named by every kernel's headers */
#define BH_F_NOTIFICATION_DATA	38

#endif /* BULKHEAD_MSG_H */
