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
export const VIRTIO_ID_VSOCK = 19;

/** virtio-vsock (virtio 1.3 §5.10): feature bits (§5.10.3), as bigint masks. */
export const VIRTIO_VSOCK_F_STREAM = 1n << 0n;
export const VIRTIO_VSOCK_F_SEQPACKET = 1n << 1n;
export const VIRTIO_VSOCK_F_NO_IMPLIED_STREAM = 1n << 2n;
/** Well-known CID of the host (§5.10.4); 0, 1, 0xffffffff and the upper 32 bits are reserved. */
export const VMADDR_CID_HOST = 2;
/** Packet header `struct virtio_vsock_hdr` (§5.10.6): 44 bytes. */
export const VIRTIO_VSOCK_HDR_SIZE = 44;
/** Header `op` (§5.10.6). */
export const VIRTIO_VSOCK_OP_INVALID = 0;
export const VIRTIO_VSOCK_OP_REQUEST = 1;
export const VIRTIO_VSOCK_OP_RESPONSE = 2;
export const VIRTIO_VSOCK_OP_RST = 3;
export const VIRTIO_VSOCK_OP_SHUTDOWN = 4;
export const VIRTIO_VSOCK_OP_RW = 5;
export const VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6;
export const VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7;
/** Header `type` (§5.10.6.2). */
export const VIRTIO_VSOCK_TYPE_STREAM = 1;
export const VIRTIO_VSOCK_TYPE_SEQPACKET = 2;
/** SHUTDOWN `flags` (§5.10.6.5), as masks: the sender will not receive / will not send any more data. */
export const VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE = 1;
export const VIRTIO_VSOCK_SHUTDOWN_F_SEND = 2;
/** Event `id` (§5.10.6.7): `struct virtio_vsock_event { le32 id; }`. */
export const VIRTIO_VSOCK_EVENT_TRANSPORT_RESET = 0;
export const VIRTIO_ID_I2C_ADAPTER = 34;
export const VIRTIO_ID_GPIO = 41;

/** virtio-i2c (virtio 1.3 §5.19): feature bit, request flags, status. */
export const VIRTIO_I2C_F_ZERO_LENGTH_REQUEST = 1n << 0n;
export const VIRTIO_I2C_FLAGS_FAIL_NEXT = 1 << 0;
export const VIRTIO_I2C_FLAGS_M_RD = 1 << 1;
export const VIRTIO_I2C_MSG_OK = 0;
export const VIRTIO_I2C_MSG_ERR = 1;

/** virtio-gpio (virtio 1.3 §5.18): feature bit, message types, status, directions, IRQ types and status. */
export const VIRTIO_GPIO_F_IRQ = 1n << 0n;
export const VIRTIO_GPIO_MSG_GET_LINE_NAMES = 0x0001;
export const VIRTIO_GPIO_MSG_GET_DIRECTION = 0x0002;
export const VIRTIO_GPIO_MSG_SET_DIRECTION = 0x0003;
export const VIRTIO_GPIO_MSG_GET_VALUE = 0x0004;
export const VIRTIO_GPIO_MSG_SET_VALUE = 0x0005;
export const VIRTIO_GPIO_MSG_SET_IRQ_TYPE = 0x0006;
export const VIRTIO_GPIO_STATUS_OK = 0x0;
export const VIRTIO_GPIO_STATUS_ERR = 0x1;
export const VIRTIO_GPIO_DIRECTION_NONE = 0x00;
export const VIRTIO_GPIO_DIRECTION_OUT = 0x01;
export const VIRTIO_GPIO_DIRECTION_IN = 0x02;
export const VIRTIO_GPIO_IRQ_TYPE_NONE = 0x00;
export const VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING = 0x01;
export const VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING = 0x02;
export const VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH = 0x03;
export const VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH = 0x04;
export const VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW = 0x08;
export const VIRTIO_GPIO_IRQ_STATUS_INVALID = 0x0;
export const VIRTIO_GPIO_IRQ_STATUS_VALID = 0x1;
