/**
 * Shared set-up for the gpio bad-input suites (simulator): the low-speed board of test/shared/lowspeed.ts
 * (gpio is device 2, five lines), raw requests and eventq buffers on RawRings.
 */
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTIO_GPIO_F_IRQ } from '../../firmware/virtio';
import type { Sim } from '../../frontend/sim';
import { createSim } from '../../frontend/sim';
import type { RawRing, Seg } from '../helpers';
import { liveRaw, submitChain } from '../helpers';
import { GPIO_DEV, lowSpeed } from '../shared/lowspeed';

export { BUTTON0, GPIO_DEV, LED0, LINES } from '../shared/lowspeed';
export const GPIO_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_GPIO_F_IRQ;

export async function gpioSim() {
  const ls = lowSpeed();
  const s = await createSim(ls.opts);
  return { s, done: () => (s.dispose(), ls.done()) };
}

/** The gpio device live with raw rings as requestq (and, with F_IRQ, eventq). */
export function liveGpio(s: Sim, features = GPIO_FEATURES): { rq: RawRing; eq: RawRing | null } {
  const irq = (features & VIRTIO_GPIO_F_IRQ) !== 0n;
  const [rq, eq] = liveRaw(s, GPIO_DEV, features, irq ? [0, 1] : [0]);
  return { rq: rq!, eq: eq ?? null };
}

/** struct virtio_gpio_request. */
export function gpioReq(type: number, gpio: number, value = 0): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint16(0, type, true);
  v.setUint16(2, gpio, true);
  v.setUint32(4, value >>> 0, true);
  return b;
}

/** One request with a response buffer of `respLen` bytes: { status, value, used }. */
export function request(rq: RawRing, type: number, gpio: number, value = 0, respLen = 2) {
  const r = submitChain(rq, GPIO_DEV, 0, [{ bytes: gpioReq(type, gpio, value) }, { len: respLen }]);
  const resp = r.at(1, respLen);
  return { status: resp[0], value: resp[1], used: r.used, resp };
}

/**
 * Offers an eventq buffer pair for `line` and runs the backend. Each `slot` (default: the line, mod 8)
 * has its own two descriptors and bytes, so pairs the device holds are never overwritten.
 */
export function arm(eq: RawRing, line: number, slot = line & 7) {
  const segs: Seg[] = [{ bytes: Uint8Array.of(line & 0xff, line >> 8) }, { len: 1, fill: 0xee }];
  const r = submitChain(eq, GPIO_DEV, 1, segs, { desc: 2 * slot, at: eq.data + 64 * slot });
  return { ...r, status: () => eq.bytes[r.offs[1]!] };
}

/** The eventq's used entries from `from` on: [head, len]. */
export function usedFrom(ring: RawRing, from: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = from; i !== ring.usedIdx(); i = (i + 1) & 0xffff) {
    const e = ring.usedElem(i);
    out.push([e.id, e.len]);
  }
  return out;
}
