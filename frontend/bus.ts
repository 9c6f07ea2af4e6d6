/**
 * The frontend end of the virtio-msg bus (transport `msg`): produces into the driver→device FIFO,
 * consumes the device→driver FIFO, matches answers to requests by (dev_num, token) and hands events
 * to listeners. This is the TypeScript model of what frontend/linux/bulkhead_ivshmem.c does in the
 * guest kernel; it is the `DriverTransport` (transport.ts) of msg windows.
 */
import * as P from '../firmware/transport/protocol';
import type { WindowLayout } from './layout';
import { fifoPush, fifoTakeAll } from './fifo';
import { readLayout } from './layout';
import type { FrontendPort } from './port';
import type { DeviceInfo, DriverEvent, DriverTransport } from './transport';
import { pollUntil } from './transport';

const u32s = (...v: number[]) => {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
};

/** A message the backend sent: header fields plus a private copy of the payload. */
export interface BusMessage {
  type: number;
  msgId: number;
  devNum: number;
  token: number;
  payload: DataView;
}

/** Default time a request waits for its answer. */
export const REQUEST_TIMEOUT_MS = 5000;

export class FrontendBus implements DriverTransport {
  readonly kind = 'msg';
  readonly layout: WindowLayout;
  /** Doorbells rung towards the backend, messages sent and received. */
  readonly counters = { kicks: 0, sent: 0, received: 0, events: 0, waits: 0 };
  /** Called for every device event (EVENT_USED, EVENT_CONFIG). */
  onEvent: (e: DriverEvent) => void = () => {};
  /** Called for every event message as it came (EVENT_DEVICE included). */
  onMessage: (m: BusMessage) => void = () => {};
  private nextToken = 1;
  private readonly answers = new Map<number, BusMessage>();

  constructor(readonly port: FrontendPort) {
    this.layout = readLayout(port.bytes);
  }


  /** Writes one raw message into the driver→device FIFO; false when it is full. No doorbell. */
  post(msg: Uint8Array): boolean {
    if (msg.length > this.layout.slotSize) throw new Error(`message of ${msg.length} bytes exceeds the slot size ${this.layout.slotSize}`);
    if (!fifoPush(this.port.bytes, this.layout.fifoD2V, this.layout.slotSize, msg)) return false;
    this.counters.sent++;
    return true;
  }

  /** Rings the backend. */
  kick(): void {
    this.counters.kicks++;
    this.port.kick();
  }

  /** Encodes a message. */
  static encode(type: number, msgId: number, devNum: number, token: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    const out = new Uint8Array(P.HEADER_BYTES + payload.length);
    P.encodeHeader(out, type, msgId, devNum, token, payload.length);
    out.set(payload, P.HEADER_BYTES);
    return out;
  }

  /** Reads every message the backend produced; answers are kept for `request`, events dispatched. */
  poll(): number {
    const { messages, wasFull } = fifoTakeAll(this.port.bytes, this.layout.fifoV2D, this.layout.slotSize);
    for (const bytes of messages) {
      const m = P.decodeMessage(bytes, this.layout.slotSize);
      if (!m) continue;
      this.counters.received++;
      const msg: BusMessage = { type: m.type, msgId: m.msgId, devNum: m.devNum, token: m.token, payload: m.payload };
      if (m.type & P.TYPE_RESPONSE) this.answers.set(key(m.devNum, m.token, m.type & P.TYPE_BUS), msg);
      else {
        this.counters.events++;
        this.onMessage(msg);
        if (m.msgId === P.VIRTIO_MSG_EVENT_USED && !(m.type & P.TYPE_BUS)) this.onEvent({ devNum: m.devNum, kind: 'used', queue: m.payload.getUint32(0, true) });
        else if (m.msgId === P.VIRTIO_MSG_EVENT_CONFIG && !(m.type & P.TYPE_BUS)) {
          this.onEvent({ devNum: m.devNum, kind: 'config', status: m.payload.getUint32(0, true), generation: m.payload.getUint32(4, true) });
        }
      }
    }
    // The backend may hold events back while this FIFO was full: tell it there is room again.
    if (wasFull) this.kick();
    return messages.length;
  }

  /** Sends a request and waits for its answer; throws with the message name on timeout. */
  async request(devNum: number, msgId: number, payload: Uint8Array = new Uint8Array(0), opts: { bus?: boolean; timeoutMs?: number } = {}): Promise<DataView> {
    const type = opts.bus ? P.TYPE_BUS : 0;
    const token = this.nextToken;
    this.nextToken = this.nextToken === 0xffff ? 1 : this.nextToken + 1;
    const msg = FrontendBus.encode(type, msgId, devNum, token, payload);
    const name = opts.bus ? `bus message 0x${msgId.toString(16)}` : P.MSG_NAMES[msgId];
    const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
    await this.until(() => this.post(msg), timeoutMs, () => `driver→device FIFO stayed full sending ${name} to device ${devNum}`);
    this.kick();
    const k = key(devNum, token, type);
    await this.until(() => this.answers.has(k), timeoutMs, () => `no answer to ${name} from device ${devNum} within ${timeoutMs} ms`);
    const a = this.answers.get(k)!;
    this.answers.delete(k);
    return a.payload;
  }

  /** Sends an event (EVENT_AVAIL) and rings the backend unless `defer` (the caller kicks once later). */
  async event(devNum: number, msgId: number, payload: Uint8Array, defer = false): Promise<void> {
    const msg = FrontendBus.encode(0, msgId, devNum, 0, payload);
    if (!this.post(msg)) {
      this.kick(); // full: the backend drains it on its doorbell
      await this.until(() => this.post(msg), REQUEST_TIMEOUT_MS, () => `driver→device FIFO stayed full sending an event to device ${devNum}`);
    }
    if (!defer) this.kick();
  }

  // ---- DriverTransport (transport.ts) --------------------------------------------------------

  /** GET_DEVICES (bitmap pages of 64) and GET_DEVICE_INFO per device. */
  async discover(): Promise<{ devNum: number; info: DeviceInfo }[]> {
    const present: number[] = [];
    for (let offset = 0; ; ) {
      const a = await this.request(0, P.BUS_MSG_GET_DEVICES, new Uint8Array([offset & 0xff, offset >> 8, 64, 0]), { bus: true });
      const count = a.getUint16(2, true);
      for (let i = 0; i < count; i++) if (a.getUint8(6 + (i >> 3)) & (1 << (i & 7))) present.push(offset + i);
      const next = a.getUint16(4, true);
      if (next === 0 || next <= offset) break;
      offset = next;
    }
    const out: { devNum: number; info: DeviceInfo }[] = [];
    for (const devNum of present) {
      const a = await this.request(devNum, P.VIRTIO_MSG_GET_DEVICE_INFO);
      out.push({
        devNum,
        info: { deviceId: a.getUint32(0, true), vendorId: a.getUint32(4, true), numFeatureBits: a.getUint32(8, true), configSize: a.getUint32(12, true), maxQueues: a.getUint32(16, true) },
      });
    }
    return out;
  }

  async getStatus(dev: number): Promise<number> {
    return (await this.request(dev, P.VIRTIO_MSG_GET_DEVICE_STATUS)).getUint32(0, true);
  }

  async setStatus(dev: number, status: number): Promise<number> {
    return (await this.request(dev, P.VIRTIO_MSG_SET_DEVICE_STATUS, u32s(status))).getUint32(0, true);
  }

  async deviceFeatures(dev: number): Promise<bigint> {
    const a = await this.request(dev, P.VIRTIO_MSG_GET_DEVICE_FEATURES, u32s(0, 2));
    return BigInt(a.getUint32(8, true)) | (BigInt(a.getUint32(12, true)) << 32n);
  }

  async setDriverFeatures(dev: number, f: bigint): Promise<void> {
    await this.request(dev, P.VIRTIO_MSG_SET_DRIVER_FEATURES, u32s(0, 2, Number(f & 0xffffffffn), Number(f >> 32n)));
  }

  async getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    const a = await this.request(dev, P.VIRTIO_MSG_GET_CONFIG, u32s(offset, len));
    const n = a.getUint32(8, true);
    return { generation: a.getUint32(0, true), data: new Uint8Array(a.buffer, a.byteOffset + 12, n).slice() };
  }

  async setConfig(dev: number, generation: number, offset: number, data: Uint8Array): Promise<boolean> {
    const p = new Uint8Array(12 + data.length);
    p.set(u32s(generation, offset, data.length));
    p.set(data, 12);
    const a = await this.request(dev, P.VIRTIO_MSG_SET_CONFIG, p);
    return a.getUint32(8, true) === data.length && data.length > 0;
  }

  /** SET_VQUEUE, then GET_VQUEUE to see whether it was taken (SET_VQUEUE's answer is empty). */
  async setupQueue(dev: number, index: number, size: number, desc: number, avail: number, used: number): Promise<boolean> {
    await this.request(dev, P.VIRTIO_MSG_SET_VQUEUE, u32s(index, 0, size, 0, desc, 0, avail, 0, used, 0));
    const g = await this.request(dev, P.VIRTIO_MSG_GET_VQUEUE, u32s(index));
    return g.getUint32(8, true) === size;
  }

  async deleteQueue(dev: number, index: number): Promise<void> {
    await this.request(dev, P.VIRTIO_MSG_RESET_VQUEUE, u32s(index));
  }

  notify(dev: number, index: number, defer = false): Promise<void> {
    return this.event(dev, P.VIRTIO_MSG_EVENT_AVAIL, u32s(index, 0), defer);
  }

  /** Polls and waits for doorbells until `cond()` holds; throws `what()` on timeout. */
  until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    return pollUntil(this, cond, timeoutMs, what);
  }
}

function key(devNum: number, token: number, bus: number): number {
  return (bus ? 0x1_0000_0000 : 0) + devNum * 0x10000 + token;
}
