/**
 * Helpers shared by the test suites: raw virtio-msg requests against a simulator, and a hand-built
 * split ring in the window pool that tests can corrupt at will.
 */
import * as P from '../firmware/transport/protocol';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1 } from '../firmware/virtio';
import { FrontendBus } from '../frontend/bus';
import type { Sim, SimOptions } from '../frontend/sim';
import { createSim } from '../frontend/sim';

export { P };

/** A simulator on host-sim (rng = dev 0, console = dev 1) with logs kept quiet. */
export function sim(opts: SimOptions = {}): Promise<Sim> {
  return createSim(opts);
}

export const u32s = (...v: number[]) => {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
};

let token = 1;
/** Sends one raw transport request, runs the backend, returns the answer payload (or null if none). */
export function request(s: Sim, devNum: number, msgId: number, payload: Uint8Array = new Uint8Array(0)): DataView | null {
  const t = token++ & 0xffff || token++;
  s.receive(); // discard stale traffic
  s.send(FrontendBus.encode(0, msgId, devNum, t, payload));
  s.kick();
  for (const m of s.receive()) {
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    if (m[0]! & P.TYPE_RESPONSE && v.getUint16(4, true) === t && v.getUint16(2, true) === devNum) {
      return new DataView(m.buffer, m.byteOffset + 8, v.getUint16(6, true) - 8);
    }
  }
  return null;
}

/** Sends a raw message (any bytes) and runs the backend; returns everything the backend sent. */
export function raw(s: Sim, msg: Uint8Array): Uint8Array[] {
  s.receive();
  s.send(msg);
  s.kick();
  return s.receive();
}

export function setStatus(s: Sim, dev: number, status: number): number {
  return request(s, dev, P.VIRTIO_MSG_SET_DEVICE_STATUS, u32s(status))!.getUint32(0, true);
}

/** Negotiates `features` (default VERSION_1 | ACCESS_PLATFORM) up to FEATURES_OK. */
export function negotiate(s: Sim, dev: number, features = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM): number {
  setStatus(s, dev, 0);
  setStatus(s, dev, ACKNOWLEDGE);
  setStatus(s, dev, ACKNOWLEDGE | DRIVER);
  request(s, dev, P.VIRTIO_MSG_SET_DRIVER_FEATURES, u32s(0, 2, Number(features & 0xffffffffn), Number(features >> 32n)));
  return setStatus(s, dev, ACKNOWLEDGE | DRIVER | FEATURES_OK);
}

export const LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;

/**
 * A split ring written by hand into the window pool, for tests that need to write anything at all
 * into descriptors and rings. Offsets are window offsets.
 */
export class RawRing {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** Scratch data area after the rings. */
  readonly data: number;
  availIdx = 0;

  constructor(
    readonly s: Sim,
    readonly size: number,
    base = s.layout.poolOffset,
  ) {
    this.desc = base;
    this.avail = base + 16 * size;
    this.used = Math.ceil((this.avail + 6 + 2 * size) / 4096) * 4096;
    this.data = Math.ceil((this.used + 6 + 8 * size) / 4096) * 4096;
    s.bytes.fill(0, base, this.data + 65536);
  }

  private get v(): DataView {
    const b = this.s.bytes;
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Writes descriptor `i` (address given as lo/hi halves). */
  setDesc(i: number, addr: number, len: number, flags: number, next = 0, addrHi = 0, table = this.desc): void {
    const v = this.v;
    v.setUint32(table + 16 * i, addr >>> 0, true);
    v.setUint32(table + 16 * i + 4, addrHi >>> 0, true);
    v.setUint32(table + 16 * i + 8, len >>> 0, true);
    v.setUint16(table + 16 * i + 12, flags, true);
    v.setUint16(table + 16 * i + 14, next, true);
  }

  /** Puts `head` in the next available slot and publishes the index. */
  offer(head: number): void {
    this.v.setUint16(this.avail + 4 + 2 * (this.availIdx % this.size), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.v.setUint16(this.avail + 2, this.availIdx, true);
  }

  /** Writes the available index directly (for index attacks). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.v.setUint16(this.avail + 2, this.availIdx, true);
  }

  usedIdx(): number {
    return this.v.getUint16(this.used + 2, true);
  }
  usedElem(i: number): { id: number; len: number } {
    const at = this.used + 4 + 8 * (i % this.size);
    return { id: this.v.getUint32(at, true), len: this.v.getUint32(at + 4, true) };
  }

  /** SET_VQUEUE for this ring as queue `q` of device `dev`. */
  install(dev: number, q: number): void {
    request(this.s, dev, P.VIRTIO_MSG_SET_VQUEUE, u32s(q, 0, this.size, 0, this.desc, 0, this.avail, 0, this.used, 0));
  }

  /** EVENT_AVAIL for queue `q` of `dev`, then run the backend. */
  notify(dev: number, q: number): void {
    raw(this.s, FrontendBus.encode(0, P.VIRTIO_MSG_EVENT_AVAIL, dev, 0, u32s(q, 0)));
  }
}

/** A live rng (dev 0) with one raw ring of `size` entries on queue 0. */
export async function liveRng(size = 8, features?: bigint): Promise<{ s: Sim; ring: RawRing }> {
  const s = await sim();
  negotiate(s, 0, features);
  const ring = new RawRing(s, size);
  ring.install(0, 0);
  setStatus(s, 0, LIVE);
  return { s, ring };
}
