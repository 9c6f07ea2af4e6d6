/**
 * virtio-msg, pinned revision: OASIS virtio-comment proposal "Virtio Over Messages", file
 * transport-msg.tex of wmamills/virtio-msg-spec at commit fb000641cb51dcfb115d3c9bd09105715a688cdb
 * (2025-11-02), transport revision 1. Every message id and byte layout lives in this file, so a later
 * revision is a change here (and in docs/transport.md). All fields are little-endian.
 */

export const TRANSPORT_REVISION = 1;
export const VENDOR_ID = 0x4b4c4842; // "BHLK"
export const HEADER_BYTES = 8;

/** `type` bits of the common header. */
export const TYPE_RESPONSE = 1;
export const TYPE_BUS = 2;

/** Transport message ids (virtio-msg §Transport Messages / Overview). */
export const VIRTIO_MSG_GET_DEVICE_INFO = 0x02;
export const VIRTIO_MSG_GET_DEVICE_FEATURES = 0x03;
export const VIRTIO_MSG_SET_DRIVER_FEATURES = 0x04;
export const VIRTIO_MSG_GET_CONFIG = 0x05;
export const VIRTIO_MSG_SET_CONFIG = 0x06;
export const VIRTIO_MSG_GET_DEVICE_STATUS = 0x07;
export const VIRTIO_MSG_SET_DEVICE_STATUS = 0x08;
export const VIRTIO_MSG_GET_VQUEUE = 0x09;
export const VIRTIO_MSG_SET_VQUEUE = 0x0a;
export const VIRTIO_MSG_RESET_VQUEUE = 0x0b;
export const VIRTIO_MSG_GET_SHM = 0x0c;
export const VIRTIO_MSG_EVENT_CONFIG = 0x40;
export const VIRTIO_MSG_EVENT_AVAIL = 0x41;
export const VIRTIO_MSG_EVENT_USED = 0x42;

/** Bus message ids (virtio-msg §Bus Messages). */
export const BUS_MSG_GET_DEVICES = 0x02;
export const BUS_MSG_PING = 0x03;
export const BUS_MSG_EVENT_DEVICE = 0x40;

export const DEVICE_BUS_STATE_READY = 1;
export const DEVICE_BUS_STATE_REMOVED = 2;

/** Fixed request payload sizes (bytes after the header); variable parts are checked per message. */
export const REQUEST_PAYLOAD: Readonly<Record<number, number>> = {
  [VIRTIO_MSG_GET_DEVICE_INFO]: 0,
  [VIRTIO_MSG_GET_DEVICE_FEATURES]: 8,
  [VIRTIO_MSG_SET_DRIVER_FEATURES]: 8,
  [VIRTIO_MSG_GET_CONFIG]: 8,
  [VIRTIO_MSG_SET_CONFIG]: 12,
  [VIRTIO_MSG_GET_DEVICE_STATUS]: 0,
  [VIRTIO_MSG_SET_DEVICE_STATUS]: 4,
  [VIRTIO_MSG_GET_VQUEUE]: 4,
  [VIRTIO_MSG_SET_VQUEUE]: 40,
  [VIRTIO_MSG_RESET_VQUEUE]: 4,
  [VIRTIO_MSG_GET_SHM]: 4,
  [VIRTIO_MSG_EVENT_AVAIL]: 8,
};
export const BUS_REQUEST_PAYLOAD: Readonly<Record<number, number>> = {
  [BUS_MSG_GET_DEVICES]: 4,
  [BUS_MSG_PING]: 4,
};

/** Answer payload sizes of the fixed-size answers. */
export const GET_DEVICE_INFO_ANSWER = 24;
export const GET_VQUEUE_ANSWER = 40;
export const GET_SHM_ANSWER = 12;

/** Names for logs and counters. */
export const MSG_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_MSG_GET_DEVICE_INFO]: 'GET_DEVICE_INFO',
  [VIRTIO_MSG_GET_DEVICE_FEATURES]: 'GET_DEVICE_FEATURES',
  [VIRTIO_MSG_SET_DRIVER_FEATURES]: 'SET_DRIVER_FEATURES',
  [VIRTIO_MSG_GET_CONFIG]: 'GET_CONFIG',
  [VIRTIO_MSG_SET_CONFIG]: 'SET_CONFIG',
  [VIRTIO_MSG_GET_DEVICE_STATUS]: 'GET_DEVICE_STATUS',
  [VIRTIO_MSG_SET_DEVICE_STATUS]: 'SET_DEVICE_STATUS',
  [VIRTIO_MSG_GET_VQUEUE]: 'GET_VQUEUE',
  [VIRTIO_MSG_SET_VQUEUE]: 'SET_VQUEUE',
  [VIRTIO_MSG_RESET_VQUEUE]: 'RESET_VQUEUE',
  [VIRTIO_MSG_GET_SHM]: 'GET_SHM',
  [VIRTIO_MSG_EVENT_CONFIG]: 'EVENT_CONFIG',
  [VIRTIO_MSG_EVENT_AVAIL]: 'EVENT_AVAIL',
  [VIRTIO_MSG_EVENT_USED]: 'EVENT_USED',
};

/** A message read once out of the FIFO into private memory. */
export interface Message {
  type: number;
  msgId: number;
  devNum: number;
  token: number;
  /** Total size (header + payload), already checked against the slot size. */
  size: number;
  /** Private copy of the whole message; `payload` views its bytes after the header. */
  bytes: Uint8Array;
  payload: DataView;
}

/**
 * Decodes the messages of one private buffer without allocating per message: `decode()` fills one
 * Message object and hands out a payload view of exactly the message's payload size (one view per
 * size, made on first use). The Message is valid until the next `decode()`.
 */
export class MessageDecoder {
  private readonly payloads: (DataView | undefined)[] = [];
  private readonly m: Message;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly maxSize: number,
  ) {
    this.m = { type: 0, msgId: 0, devNum: 0, token: 0, size: 0, bytes, payload: new DataView(bytes.buffer, bytes.byteOffset, 0) };
  }

  /** Decodes the 8-byte header of the buffer; returns null when `msg_size` is impossible. */
  decode(): Message | null {
    const b = this.bytes;
    const size = b[6]! | (b[7]! << 8);
    if (size < HEADER_BYTES || size > this.maxSize || size > b.length) return null;
    const m = this.m;
    m.type = b[0]! & 3; // bits 2..7 are reserved: ignored on receive
    m.msgId = b[1]!;
    m.devNum = b[2]! | (b[3]! << 8);
    m.token = b[4]! | (b[5]! << 8);
    m.size = size;
    let p = this.payloads[size];
    if (p === undefined) {
      p = new DataView(b.buffer, b.byteOffset + HEADER_BYTES, size - HEADER_BYTES);
      this.payloads[size] = p;
    }
    m.payload = p;
    return m;
  }
}

/** Decodes the 8-byte header of a private copy into a fresh Message; null when `msg_size` is impossible. */
export function decodeMessage(bytes: Uint8Array, maxSize: number): Message | null {
  return new MessageDecoder(bytes, maxSize).decode();
}

/** Writes a common header into `out` (a private scratch buffer). */
function writeHeader(out: Uint8Array, type: number, msgId: number, devNum: number, token: number, payloadBytes: number): void {
  const size = HEADER_BYTES + payloadBytes;
  out[0] = type;
  out[1] = msgId;
  out[2] = devNum & 0xff;
  out[3] = (devNum >>> 8) & 0xff;
  out[4] = token & 0xff;
  out[5] = (token >>> 8) & 0xff;
  out[6] = size & 0xff;
  out[7] = (size >>> 8) & 0xff;
}

/** Writes a common header into `out` (a private scratch buffer) and returns a payload view. */
export function encodeHeader(out: Uint8Array, type: number, msgId: number, devNum: number, token: number, payloadBytes: number): DataView {
  writeHeader(out, type, msgId, devNum, token, payloadBytes);
  return new DataView(out.buffer, out.byteOffset + HEADER_BYTES, payloadBytes);
}

/**
 * `encodeHeader` over one word-aligned scratch buffer, reusing one payload view per payload size. The
 * header goes in as two little-endian words (the same bytes `writeHeader` writes).
 */
export class MessageEncoder {
  private readonly payloads: (DataView | undefined)[] = [];
  private readonly words: Uint32Array;

  constructor(private readonly out: Uint8Array) {
    this.words = new Uint32Array(out.buffer, out.byteOffset, 2);
  }

  header(type: number, msgId: number, devNum: number, token: number, payloadBytes: number): DataView {
    const out = this.out;
    const w = this.words;
    w[0] = (type & 0xff) | ((msgId & 0xff) << 8) | ((devNum & 0xffff) << 16);
    w[1] = (token & 0xffff) | ((HEADER_BYTES + payloadBytes) << 16);
    let p = this.payloads[payloadBytes];
    if (p === undefined) {
      p = new DataView(out.buffer, out.byteOffset + HEADER_BYTES, payloadBytes);
      this.payloads[payloadBytes] = p;
    }
    return p;
  }
}
