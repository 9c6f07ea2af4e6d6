/**
 * Transport `regblock`: the virtio register block of Jailhouse's virtio-over-ivshmem, one block per
 * device in the window (docs/transport.md, "regblock"). Every offset of this wire lives in this file,
 * so a later revision is a change here (and in that page). All fields little-endian.
 *
 * Pinned revision: `struct virtio_ivshmem_header` and its write-transaction handshake as in the
 * virtio-over-ivshmem frontend driver drivers/virtio/virtio_ivshmem.c of Jan Kiszka's Jailhouse Linux
 * queue, read at lfd/linux commit 03737a70fbd51d51403d7e2ca67f5724950790f7, and its backend
 * counterpart tools/virtio/virtio-ivshmem-block.c (analogdevicesinc/linux commit
 * 3b65649ef2c1034eced9b593b1e6bee0a6f06619); the shared-memory model of Jailhouse's
 * Documentation/ivshmem-v2-specification.md (siemens/jailhouse commit
 * 368ff6b2acb3f24ec5903db328d73f2c9d986601). Header revision 1.
 *
 * Handshake: the driver reads registers straight from the block; to write one it waits until
 * `write_transaction` is 0, writes the register, fences, writes the register's offset into
 * `write_transaction` and rings the backend. The backend applies the write (fetching the value once),
 * writes back what the write changed (device_features after a selector, the queue window after
 * queue_sel, the resulting device_status), fences and clears `write_transaction`. The backend sets
 * `queue_event` / `config_event` to 1 and rings the frontend to notify; the driver clears them.
 *
 * Bulkhead's two additions, both invisible to a Jailhouse driver that never uses them: a config-space
 * write carries its width in bits 16–23 of `write_transaction` (the Jailhouse backends know their
 * devices' field layouts; Bulkhead's device contract does not describe fields), and the device
 * directory in front of the blocks (Jailhouse has one PCI function per device, whose class code names
 * the device; here several devices share one window).
 */

export const REGBLOCK_REVISION = 1;

/** Register offsets in a device's block (struct virtio_ivshmem_header). */
export const RB = {
  revision: 0x00, // u32 R
  size: 0x04, // u32 R: bytes of the block up to the end of the config space
  writeTransaction: 0x08, // u32 RW: offset of the register written (0 = none pending)
  deviceFeatures: 0x0c, // u32 R: 32 feature bits selected by device_features_sel
  deviceFeaturesSel: 0x10, // u32 W
  driverFeatures: 0x14, // u32 W: 32 feature bits selected by driver_features_sel
  driverFeaturesSel: 0x18, // u32 W
  queueSel: 0x1c, // u32 W
  queueSize: 0x20, // u16 RW: the maximum after queue_sel, the size the driver chose
  queueDeviceVector: 0x22, // u16 R: the backend's doorbell vector for this queue
  queueDriverVector: 0x24, // u16 W: the driver's interrupt vector for this queue
  queueEnable: 0x26, // u16 RW
  queueDesc: 0x28, // u64 W
  queueDriver: 0x30, // u64 W
  queueDevice: 0x38, // u64 W
  configEvent: 0x40, // u8: the backend sets 1, the driver clears
  queueEvent: 0x41, // u8: the backend sets 1, the driver clears
  deviceStatus: 0x44, // u32 RW
  configGeneration: 0x48, // u32 R: odd while the backend rewrites the config space
  config: 0x4c, // the device's configuration space
} as const;

/** Bits of `write_transaction` beyond the 16-bit offset: the width of a config-space write (Bulkhead). */
export const TRANSACTION_OFFSET_MASK = 0xffff;
export const TRANSACTION_WIDTH_SHIFT = 16;

/** The registers a driver may write through a transaction, with their widths. */
export const WRITABLE: Readonly<Record<number, { name: string; width: 2 | 4 | 8 }>> = {
  [RB.deviceFeaturesSel]: { name: 'device_features_sel', width: 4 },
  [RB.driverFeatures]: { name: 'driver_features', width: 4 },
  [RB.driverFeaturesSel]: { name: 'driver_features_sel', width: 4 },
  [RB.queueSel]: { name: 'queue_sel', width: 4 },
  [RB.queueSize]: { name: 'queue_size', width: 2 },
  [RB.queueDriverVector]: { name: 'queue_driver_vector', width: 2 },
  [RB.queueEnable]: { name: 'queue_enable', width: 2 },
  [RB.queueDesc]: { name: 'queue_desc', width: 8 },
  [RB.queueDriver]: { name: 'queue_driver', width: 8 },
  [RB.queueDevice]: { name: 'queue_device', width: 8 },
  [RB.deviceStatus]: { name: 'device_status', width: 4 },
};

/** Registers only the backend writes: a transaction naming one is refused. */
export const READ_ONLY: Readonly<Record<number, string>> = {
  [RB.revision]: 'revision',
  [RB.size]: 'size',
  [RB.writeTransaction]: 'write_transaction',
  [RB.deviceFeatures]: 'device_features',
  [RB.queueDeviceVector]: 'queue_device_vector',
  [RB.configEvent]: 'config_event',
  [RB.queueEvent]: 'queue_event',
  [RB.configGeneration]: 'config_generation',
};

/** The device directory at the start of the transport area: a count, then one 32-byte entry per device. */
export const DIR_COUNT = 0x00;
export const DIR_ENTRIES = 0x20;
export const DIR_ENTRY_SIZE = 32;
/** Entry fields: virtio device ID, vendor ID, the block's window offset, the block's size (to the end of the config space), the device's queues; the rest reserved. */
export const DIR_DEVICE_ID = 0x0;
export const DIR_VENDOR_ID = 0x4;
export const DIR_BLOCK_OFFSET = 0x8;
export const DIR_BLOCK_SIZE = 0xc;
export const DIR_NUM_QUEUES = 0x10;
