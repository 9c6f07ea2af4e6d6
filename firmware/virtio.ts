/**
 * Virtio constants, spelled as the virtio 1.3 specification and Linux's uapi headers spell them.
 * One place for every spec number the firmware uses.
 */

/** Device status bits (virtio 1.3 §2.1). */
export const ACKNOWLEDGE = 1;
export const DRIVER = 2;
export const DRIVER_OK = 4;
export const FEATURES_OK = 8;
export const DEVICE_NEEDS_RESET = 64;
export const FAILED = 128;

/** Reserved feature bits (virtio 1.3 §6), as bigint masks. */
export const VIRTIO_F_RING_INDIRECT_DESC = 1n << 28n;
export const VIRTIO_F_RING_EVENT_IDX = 1n << 29n;
export const VIRTIO_F_VERSION_1 = 1n << 32n;
export const VIRTIO_F_ACCESS_PLATFORM = 1n << 33n;
export const VIRTIO_F_RING_PACKED = 1n << 34n;
export const VIRTIO_F_RING_RESET = 1n << 40n;

/** Features every Bulkhead device offers on top of its own. */
export const TRANSPORT_FEATURES =
  VIRTIO_F_RING_INDIRECT_DESC | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_PACKED | VIRTIO_F_RING_RESET;

/** Split virtqueue descriptor flags (virtio 1.3 §2.7.5). */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Available ring flag (§2.7.6) and used ring flag (§2.7.8). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Packed virtqueue descriptor flags (§2.8.1; NEXT, WRITE and INDIRECT as above). */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;
/** Packed virtqueue event suppression: `flags` values (§2.8.10) and the wrap bit of `off_wrap` (§2.8.14). */
export const RING_EVENT_FLAGS_ENABLE = 0;
export const RING_EVENT_FLAGS_DISABLE = 1;
export const RING_EVENT_FLAGS_DESC = 2;
export const RING_EVENT_WRAP = 1 << 15;

/** Device IDs (virtio 1.3 §5). */
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_RNG = 4;
