/**
 * Transport `mmio`: trapped virtio-mmio accesses forwarded as records (docs/transport.md, "mmio").
 * The register map is virtio-mmio version 2 (virtio 1.3 §4.2.2, names as in Linux's
 * include/uapi/linux/virtio_mmio.h); the access-record ring in the window is Bulkhead's, shaped like
 * the hypervisors that forward MMIO to a backend (Xen IOREQ, Gunyah's virtio-mmio, ACRN): each trapped
 * access is one record — device, offset, width, direction, value — and a read is answered in its record
 * before the hypervisor resumes the vCPU. Every offset of this wire lives in this file. Little-endian.
 */

/** virtio-mmio v2 register offsets (§4.2.2). */
export const MMIO = {
  magicValue: 0x000, // R 0x74726976 "virt"
  version: 0x004, // R 2
  deviceId: 0x008, // R
  vendorId: 0x00c, // R
  deviceFeatures: 0x010, // R (DeviceFeaturesSel)
  deviceFeaturesSel: 0x014, // W
  driverFeatures: 0x020, // W (DriverFeaturesSel)
  driverFeaturesSel: 0x024, // W
  queueSel: 0x030, // W
  queueNumMax: 0x034, // R
  queueNum: 0x038, // W
  queueReady: 0x044, // RW
  queueNotify: 0x050, // W
  interruptStatus: 0x060, // R
  interruptAck: 0x064, // W
  status: 0x070, // RW
  queueDescLow: 0x080, // W
  queueDescHigh: 0x084, // W
  queueDriverLow: 0x090, // W
  queueDriverHigh: 0x094, // W
  queueDeviceLow: 0x0a0, // W
  queueDeviceHigh: 0x0a4, // W
  shmSel: 0x0ac, // W
  shmLenLow: 0x0b0, // R
  shmLenHigh: 0x0b4, // R
  shmBaseLow: 0x0b8, // R
  shmBaseHigh: 0x0bc, // R
  queueReset: 0x0c0, // RW
  configGeneration: 0x0fc, // R
  config: 0x100, // RW: the device-specific configuration space
} as const;

export const VIRTIO_MMIO_MAGIC = 0x74726976;
export const VIRTIO_MMIO_VERSION = 2;
/** InterruptStatus bits (§4.2.2). */
export const VIRTIO_MMIO_INT_VRING = 1;
export const VIRTIO_MMIO_INT_CONFIG = 2;
/** The register page of one device: registers and config space. */
export const MMIO_PAGE = 0x1000;

/** Direction of each control register (the config space at 0x100+ is RW). */
export const MMIO_READ: ReadonlySet<number> = new Set([
  MMIO.magicValue, MMIO.version, MMIO.deviceId, MMIO.vendorId, MMIO.deviceFeatures, MMIO.queueNumMax, MMIO.queueReady,
  MMIO.interruptStatus, MMIO.status, MMIO.shmLenLow, MMIO.shmLenHigh, MMIO.shmBaseLow, MMIO.shmBaseHigh, MMIO.queueReset,
  MMIO.configGeneration,
]);
export const MMIO_WRITE: ReadonlySet<number> = new Set([
  MMIO.deviceFeaturesSel, MMIO.driverFeatures, MMIO.driverFeaturesSel, MMIO.queueSel, MMIO.queueNum, MMIO.queueReady,
  MMIO.queueNotify, MMIO.interruptAck, MMIO.status, MMIO.queueDescLow, MMIO.queueDescHigh, MMIO.queueDriverLow,
  MMIO.queueDriverHigh, MMIO.queueDeviceLow, MMIO.queueDeviceHigh, MMIO.shmSel, MMIO.queueReset,
]);

/**
 * The access-record ring (at the header's transportArea): `head` at +0 (records produced, by the
 * hypervisor on the frontend's behalf), `tail` at +64 (records completed, by the backend), records
 * from +128. Free-running u32 indexes; record n is in slot n mod slots. At +72 the backend publishes
 * the level of each device's interrupt line (two u32, bit d = device d, asserted while its
 * InterruptStatus is not 0), what the hypervisor injects into the guest (Xen's set_irq_level).
 */
export const RING_HEAD = 0;
export const RING_TAIL = 64;
export const RING_IRQ = 72;
/** Devices an mmio board may have (two interrupt-level words). */
export const MMIO_MAX_DEVICES = 64;

/** One record, 16 bytes. */
export const REC_DEV = 0x0; // u16: device number (which register page)
export const REC_OFFSET = 0x2; // u16: offset in the page
export const REC_WIDTH = 0x4; // u8: 1, 2 or 4 bytes
export const REC_OP = 0x5; // u8: REC_READ or REC_WRITE
export const REC_VALUE = 0x8; // u32: the value written; for a read, the backend's answer
export const REC_RESULT = 0xc; // u32: written by the backend: REC_DONE or REC_IGNORED
export const REC_READ = 0;
export const REC_WRITE = 1;
/** The access was carried out (a read's answer is in REC_VALUE). */
export const REC_DONE = 1;
/** The access was malformed and ignored (a read answers 0), as virtio-mmio devices treat such accesses. */
export const REC_IGNORED = 2;
