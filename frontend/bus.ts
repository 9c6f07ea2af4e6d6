/**
 * The frontend end of the virtio-msg bus: produces into the driver→device FIFO, consumes the
 * device→driver FIFO, matches answers to requests by (dev_num, token) and hands events to listeners.
 * This is the TypeScript model of what frontend/linux does in the guest kernel.
 */
import * as P from '../firmware/transport/protocol';
import type { WindowLayout } from './layout';
import { fifoPush, fifoTakeAll } from './fifo';
import { readLayout } from './layout';
import type { FrontendPort } from './port';

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

export class FrontendBus {
  readonly layout: WindowLayout;
  /** Doorbells rung towards the backend, messages sent and received. */
  readonly counters = { kicks: 0, sent: 0, received: 0, events: 0, waits: 0 };
  /** Called for every event (EVENT_USED, EVENT_CONFIG, EVENT_DEVICE). */
  onEvent: (m: BusMessage) => void = () => {};
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
        this.onEvent(msg);
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

  /** Polls and waits for doorbells until `cond()` holds; throws `what()` on timeout. */
  async until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.poll();
      if (cond()) return;
      const left = end - Date.now();
      if (left <= 0) throw new Error(what());
      this.counters.waits++;
      await this.port.wait(left);
    }
  }
}

function key(devNum: number, token: number, bus: number): number {
  return (bus ? 0x1_0000_0000 : 0) + devNum * 0x10000 + token;
}
