/**
 * Synchronous helpers for simulator-only suites (test/blk bad-input tests): raw virtio-msg requests
 * against a simulator, and a hand-built split ring in the window pool that tests can corrupt at will.
 * Suites that run on every backend use test/shared/raw-peer.ts instead.
 */
import * as P from '../firmware/transport/protocol';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1 } from '../firmware/virtio';
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
