import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_HOLD } from '../../firmware/devices/faulty';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { PackedRing } from '../../frontend/fuzz/ring';
import { assertBusAnswers, assertNeedsReset, CONSOLE, RNG } from './harness';
import { FAULTY, faultySegments, packedFaulty } from './packed-harness';

/** faulty-test holding `n` single-descriptor buffers of a 4-entry ring: the device owns those descriptors. */
async function holding(n: number) {
  const h = await packedFaulty(4);
  for (let id = 0; id < n; id++) h.ring.offer(faultySegments(h.ring, id, FAULTY_HOLD), id);
  h.ring.notify();
  assert.is(h.sim.stats().devices[FAULTY]!.queues[0]!.inFlight, n, 'the device holds the buffers');
  assert.not.ok(h.sim.needsReset(FAULTY), 'held buffers are not a violation');
  return h;
}

test('a descriptor made available while the device holds it is RING_OVERRUN (virtio §2.8.16)', async () => {
  const { sim, drv, ring } = await holding(4); // the whole ring in flight
  // The driver writes over descriptor 0 as if it had been used (with the next lap's flags).
  ring.setDesc(0, ring.data + 0x1000, 16, 0, PackedRing.availFlags(ring.availWrap, VIRTQ_DESC_F_WRITE));
  ring.notify();
  assertNeedsReset(sim, drv, FAULTY, 'after the driver overran the descriptors the device holds');
  assert.is(sim.stats().devices[FAULTY]!.counters['violation.RING_OVERRUN'], 1);
  assertBusAnswers(drv, [RNG, CONSOLE, FAULTY], 'after RING_OVERRUN');
  sim.dispose();
});

test('a list longer than the descriptors the driver owns is RING_OVERRUN (virtio §2.8.17)', async () => {
  const { sim, drv, ring } = await holding(3); // descriptors 0–2 in flight, 3 free
  // NEXT on descriptor 3, the last one the driver owns: the list would go on into descriptor 0.
  ring.setDesc(3, ring.data + 0x1000, 16, 3, PackedRing.availFlags(ring.availWrap, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT));
  ring.notify();
  assertNeedsReset(sim, drv, FAULTY, 'after a list ran into held descriptors');
  assert.is(sim.stats().devices[FAULTY]!.counters['violation.RING_OVERRUN'], 1);
  sim.dispose();
});

test.run();
