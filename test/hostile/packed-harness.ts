/**
 * Packed-ring set-up for the hostile suite: host-sim plus the test-only `faulty-test` device (dev 2,
 * firmware/devices/faulty.ts) on one packed ring, whose FAULTY_HOLD / FAULTY_RELEASE requests keep
 * buffers in flight and complete them out of order, as a device waiting for its backing service does.
 */
import { FAULTY_OK } from '../../firmware/devices/faulty';
import type { PackedRawRing } from '../../frontend/fuzz/raw';
import type { RingSegment } from '../../frontend/fuzz/ring';
import { hostile } from './harness';

export const FAULTY = 2;

/** A simulator with faulty-test live on one packed ring of `size` (queue 0). */
export async function packedFaulty(size: number, features?: bigint) {
  const h = await hostile({ extra: [{ type: 'faulty-test' }] });
  const ring = h.drv.livePacked(FAULTY, [{ size, at: h.area(0) }], features)[0]!;
  return { ...h, ring };
}

/**
 * The segments of a faulty-test request of `mode` for buffer `id`: its mode byte (at a per-id offset of
 * the ring's data area), then `more` writable segments of 16 bytes.
 */
export function faultySegments(ring: PackedRawRing, id: number, mode = FAULTY_OK, more = 0): RingSegment[] {
  const at = ring.data + 0x100 * id;
  ring.bytes[at] = mode;
  return [{ off: at, len: 1 }, ...Array.from({ length: more }, (_, k) => ({ off: at + 16 + 16 * k, len: 16, write: true }))];
}
