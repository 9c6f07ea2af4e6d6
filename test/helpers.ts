/**
 * Synchronous helpers for simulator-only suites (test/blk bad-input tests): raw virtio-msg requests
 * against a simulator, and a hand-built split ring in the window pool that tests can corrupt at will.
 * Suites that run on every backend use test/shared/raw-peer.ts instead.
 */
import * as P from '../firmware/transport/protocol';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../firmware/virtio';
import { FrontendBus } from '../frontend/bus';
import type { Sim, SimOptions } from '../frontend/sim';
import { createSim } from '../frontend/sim';
import { le32 as u32s, SplitRing } from '../frontend/fuzz/ring';

export { P };

/** A simulator on host-sim (rng = dev 0, console = dev 1) with logs kept quiet. */
export function sim(opts: SimOptions = {}): Promise<Sim> {
  return createSim(opts);
}

export { u32s };

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

/** A hand-built split ring (frontend/fuzz/ring.ts) installed and notified synchronously on a simulator. */
export class RawRing extends SplitRing {
  constructor(
    readonly s: Sim,
    size: number,
    base = s.layout.poolOffset,
  ) {
    super(() => s.bytes, size, base);
  }

  /** SET_VQUEUE for this ring as queue `q` of device `dev`. */
  install(dev: number, q: number): void {
    request(this.s, dev, P.VIRTIO_MSG_SET_VQUEUE, this.setVqueuePayload(q));
  }

  /** EVENT_AVAIL for queue `q` of `dev`, then run the backend. */
  notify(dev: number, q: number): void {
    raw(this.s, FrontendBus.encode(0, P.VIRTIO_MSG_EVENT_AVAIL, dev, 0, u32s(q, 0)));
  }
}

/** One buffer of a hand-built chain: device-readable `bytes`, or `len` device-writable bytes. */
export type Seg = { bytes: Uint8Array } | { len: number; fill?: number };

/**
 * Lays several chains out in the ring's data area (each segment 16-byte aligned, writable ones filled
 * with `fill`, default 0xEE), descriptors numbered on from `from.desc` (default 0) and data from
 * `from.at` (default the data area's start), and offers each head in order (no notification). Chains
 * still in flight need their own descriptors and bytes: give each its own `from`. Returns per chain its
 * head and the window offset of each segment.
 */
export function offerChains(ring: RawRing, chains: Seg[][], from: { desc?: number; at?: number } = {}): { head: number; offs: number[] }[] {
  const bytes = ring.s.bytes;
  let at = from.at ?? ring.data;
  let d = from.desc ?? 0;
  const out: { head: number; offs: number[] }[] = [];
  for (const segs of chains) {
    const head = d;
    const offs: number[] = [];
    segs.forEach((g, i) => {
      const len = 'bytes' in g ? g.bytes.length : g.len;
      if ('bytes' in g) bytes.set(g.bytes, at);
      else bytes.fill(g.fill ?? 0xee, at, at + len);
      const last = i === segs.length - 1;
      ring.setDesc(d, at, len, ('bytes' in g ? 0 : VIRTQ_DESC_F_WRITE) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : d + 1);
      offs.push(at);
      at += (len + 15) & ~15;
      d++;
    });
    ring.offer(head);
    out.push({ head, offs });
  }
  return out;
}

/**
 * Offers one chain of `segs` on queue `q` of `dev`, notifies and runs the backend. Returns the window
 * offset of each segment and the used element (null if the device completed nothing).
 */
export function submitChain(ring: RawRing, dev: number, q: number, segs: Seg[], from: { desc?: number; at?: number } = {}) {
  const before = ring.usedIdx();
  const { offs } = offerChains(ring, [segs], from)[0]!;
  ring.notify(dev, q);
  const used = ring.usedIdx() !== before ? ring.usedElem(before) : null;
  const bytes = ring.s.bytes;
  return { offs, used, at: (i: number, len: number) => bytes.slice(offs[i]!, offs[i]! + len) };
}

/** Negotiates `features` on `dev`, installs a fresh raw ring of `size` as each of `queues` and goes live. */
export function liveRaw(s: Sim, dev: number, features: bigint, queues: number[] = [0], size = 16): RawRing[] {
  negotiate(s, dev, features);
  let base = s.layout.poolOffset;
  const rings = queues.map((q) => {
    const r = new RawRing(s, size, base);
    r.install(dev, q);
    base = r.data + 0x20000;
    return r;
  });
  setStatus(s, dev, LIVE);
  return rings;
}
