/**
 * A synchronous, untrusting frontend over a `Sim`: raw virtio-msg requests, and split rings written
 * byte by byte into the window. It builds well-formed state that hostile tests and the fuzzer then
 * corrupt; it checks nothing the backend answers beyond matching tokens.
 */
import * as P from '../../firmware/transport/protocol';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { Sim } from '../sim';
import { le32, PackedRing, SplitRing } from './ring';

/** Status of a device after DRIVER_OK, and after FEATURES_OK. */
export const STATUS_LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
export const FEATURES_OK_STATUS = ACKNOWLEDGE | DRIVER | FEATURES_OK;
/** Features every raw setup negotiates unless told otherwise. */
export const BASE_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM;

/** Little-endian u32 fields as bytes. */

/** One encoded message: 8-byte header + payload (msg_size from the payload length unless given). */
export function message(type: number, msgId: number, devNum: number, token: number, payload: Uint8Array = new Uint8Array(0), msgSize?: number): Uint8Array {
  const out = new Uint8Array(P.HEADER_BYTES + payload.length);
  P.encodeHeader(out, type, msgId, devNum, token, payload.length);
  if (msgSize !== undefined) new DataView(out.buffer).setUint16(6, msgSize, true);
  out.set(payload, P.HEADER_BYTES);
  return out;
}

/** A message the backend sent, decoded. */
export interface RawMessage {
  type: number;
  msgId: number;
  devNum: number;
  token: number;
  payload: DataView;
}

function decode(m: Uint8Array): RawMessage {
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  return { type: m[0]!, msgId: m[1]!, devNum: v.getUint16(2, true), token: v.getUint16(4, true), payload: new DataView(m.buffer, m.byteOffset + 8, Math.max(0, m.byteLength - 8)) };
}

/** Synchronous request/answer over the sim's FIFOs; events are kept in `events`. */
export class RawDriver {
  private token = 1;
  /** Events (EVENT_CONFIG, EVENT_USED, ...) received, oldest first. */
  readonly events: RawMessage[] = [];
  /** Answers received that nobody asked for (by token). */
  private readonly answers = new Map<string, RawMessage>();

  constructor(readonly sim: Sim) {}

  private nextToken(): number {
    const t = this.token;
    this.token = t === 0xffff ? 1 : t + 1;
    return t;
  }

  /** Takes everything the backend sent: events to `events`, answers kept for `request`. */
  pump(): void {
    for (const raw of this.sim.receive()) {
      const m = decode(raw);
      if (m.type & P.TYPE_RESPONSE) this.answers.set(`${m.type & P.TYPE_BUS}/${m.devNum}/${m.token}`, m);
      else this.events.push(m);
    }
  }

  /** Writes a message into the driver→device FIFO without a doorbell; throws when it is full. */
  post(msg: Uint8Array): void {
    if (!this.sim.send(msg)) throw new Error('driver→device FIFO full');
  }

  /** Posts a request without running the backend; returns its token (collect with `answer`). */
  postRequest(devNum: number, msgId: number, payload?: Uint8Array, bus = false): number {
    const t = this.nextToken();
    this.post(message(bus ? P.TYPE_BUS : 0, msgId, devNum, t, payload));
    return t;
  }

  /** The answer to a posted request, or null if the backend has not sent it. */
  answer(devNum: number, token: number, bus = false): DataView | null {
    this.pump();
    const k = `${bus ? P.TYPE_BUS : 0}/${devNum}/${token}`;
    const a = this.answers.get(k);
    if (!a) return null;
    this.answers.delete(k);
    return a.payload;
  }

  /** Sends one request, rings the doorbell, runs the backend; returns the answer payload or null. */
  request(devNum: number, msgId: number, payload?: Uint8Array, bus = false): DataView | null {
    const t = this.postRequest(devNum, msgId, payload, bus);
    this.sim.kick();
    return this.answer(devNum, t, bus);
  }

  /** PING: true when the bus echoed `data`. */
  ping(data = 0x5a5a1234): boolean {
    const a = this.request(0, P.BUS_MSG_PING, le32(data), true);
    return a !== null && a.getUint32(0, true) === data >>> 0;
  }

  /** GET_DEVICE_STATUS, or null when the device did not answer. */
  getStatus(devNum: number): number | null {
    const a = this.request(devNum, P.VIRTIO_MSG_GET_DEVICE_STATUS);
    return a ? a.getUint32(0, true) : null;
  }

  /** SET_DEVICE_STATUS; returns the status the device answered. */
  setStatus(devNum: number, status: number): number {
    const a = this.request(devNum, P.VIRTIO_MSG_SET_DEVICE_STATUS, le32(status));
    if (!a) throw new Error(`device ${devNum} did not answer SET_DEVICE_STATUS 0x${status.toString(16)}`);
    return a.getUint32(0, true);
  }

  /** Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the final status. */
  negotiate(devNum: number, features = BASE_FEATURES): number {
    this.setStatus(devNum, 0);
    this.setStatus(devNum, ACKNOWLEDGE);
    this.setStatus(devNum, ACKNOWLEDGE | DRIVER);
    this.request(devNum, P.VIRTIO_MSG_SET_DRIVER_FEATURES, le32(0, 2, Number(features & 0xffffffffn), Number(features >> 32n)));
    return this.setStatus(devNum, ACKNOWLEDGE | DRIVER | FEATURES_OK);
  }

  /** SET_VQUEUE with raw addresses (window offsets). */
  setQueue(devNum: number, index: number, size: number, desc: number, avail: number, used: number): void {
    this.request(devNum, P.VIRTIO_MSG_SET_VQUEUE, le32(index, 0, size, 0, desc, 0, avail, 0, used, 0));
  }

  /** GET_VQUEUE: the size the device holds for queue `index` (0 = not set up). */
  queueSize(devNum: number, index: number): number {
    return this.request(devNum, P.VIRTIO_MSG_GET_VQUEUE, le32(index))?.getUint32(8, true) ?? -1;
  }

  /**
   * Brings `devNum` live with one ring per entry of `queues` (ring i placed at `queues[i].at`);
   * throws if the device refuses.
   */
  live(devNum: number, queues: { size: number; at: number }[], features = BASE_FEATURES): Ring[] {
    return this.bringUp(devNum, queues, features, (i, q) => new Ring(this, devNum, i, q.size, q.at));
  }

  /**
   * Brings `devNum` live with packed rings (VIRTIO_F_RING_PACKED added to `features`), one per entry of
   * `queues` (ring i placed at `queues[i].at`); throws if the device refuses.
   */
  livePacked(devNum: number, queues: { size: number; at: number }[], features = BASE_FEATURES): PackedRawRing[] {
    return this.bringUp(devNum, queues, features | VIRTIO_F_RING_PACKED, (i, q) => new PackedRawRing(this, devNum, i, q.size, q.at));
  }

  /** Negotiates `features`, sets up the rings `make` builds with SET_VQUEUE, goes live; throws if the device refuses. */
  private bringUp<R extends SplitRing | PackedRing>(devNum: number, queues: { size: number; at: number }[], features: bigint, make: (i: number, q: { size: number; at: number }) => R): R[] {
    const s = this.negotiate(devNum, features);
    if (!(s & FEATURES_OK)) throw new Error(`device ${devNum} refused features 0x${features.toString(16)}`);
    const rings = queues.map((q, i) => {
      const r = make(i, q);
      this.setQueue(devNum, i, q.size, r.areas.desc, r.areas.driver, r.areas.device);
      return r;
    });
    const st = this.setStatus(devNum, STATUS_LIVE);
    if (st !== STATUS_LIVE) throw new Error(`device ${devNum} did not go live (status 0x${st.toString(16)})`);
    return rings;
  }

  /** EVENT_AVAIL for queue `index` (posted; `kick` also runs the backend). */
  notify(devNum: number, index: number, kick = true): void {
    this.post(message(0, P.VIRTIO_MSG_EVENT_AVAIL, devNum, 0, le32(index, 0)));
    if (kick) this.sim.kick();
  }

  /** EVENT_CONFIG events received for `devNum` so far. */
  configEvents(devNum: number): RawMessage[] {
    this.pump();
    return this.events.filter((e) => e.msgId === P.VIRTIO_MSG_EVENT_CONFIG && e.devNum === devNum);
  }
}

/** A segment of a chain: window offset, length, device-writable or not. */
export interface Segment {
  off: number;
  len: number;
  write?: boolean;
}

/**
 * A split ring laid out from window offset `at`: descriptor table, available ring, then the used
 * ring on the next 4 KiB boundary and a data area after it (`data`, 64 KiB are zeroed).
 */
export class Ring extends SplitRing {
  /** The next free descriptor for `chain`, and the used index reaped so far. */
  nextDesc = 0;
  lastUsed = 0;

  constructor(
    readonly drv: RawDriver,
    readonly devNum: number,
    readonly index: number,
    size: number,
    at: number,
  ) {
    super(() => drv.sim.bytes, size, at);
  }

  /** Writes `segs` as a chain at descriptors nextDesc.. (wrapping) and returns its head (not offered). */
  write(segs: Segment[]): number {
    const head = this.nextDesc;
    segs.forEach((s, k) => {
      const i = (head + k) % this.size;
      const last = k === segs.length - 1;
      this.setDesc(i, s.off, s.len, (s.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : (i + 1) % this.size);
    });
    this.nextDesc = (head + segs.length) % this.size;
    return head;
  }

  /** Writes `segs` as a chain and makes it available; returns its head. */
  chain(segs: Segment[]): number {
    const head = this.write(segs);
    this.offer(head);
    return head;
  }

  /** Used elements published since the last call. */
  reap(): { id: number; len: number }[] {
    const out = [];
    const idx = this.usedIdx();
    while (this.lastUsed !== idx) {
      out.push(this.usedElem(this.lastUsed));
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** EVENT_AVAIL for this ring and a backend run. */
  notify(kick = true): void {
    this.drv.notify(this.devNum, this.index, kick);
  }
}

/** A packed ring (ring.ts) installed on a device by a RawDriver. */
export class PackedRawRing extends PackedRing {
  constructor(
    readonly drv: RawDriver,
    readonly devNum: number,
    readonly index: number,
    size: number,
    at: number,
  ) {
    super(() => drv.sim.bytes, size, at);
  }

  /** EVENT_AVAIL for this ring and a backend run. */
  notify(kick = true): void {
    this.drv.notify(this.devNum, this.index, kick);
  }
}
