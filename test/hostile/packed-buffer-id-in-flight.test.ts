import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_HOLD } from '../../firmware/devices/faulty';
import { assertBusAnswers, assertNeedsReset, CONSOLE, RNG } from './harness';
import { FAULTY, faultySegments, packedFaulty } from './packed-harness';

test('a buffer id made available again while that buffer is in flight is refused (virtio §2.8.21.1)', async () => {
  const { sim, drv, ring } = await packedFaulty(8);
  ring.offer(faultySegments(ring, 3, FAULTY_HOLD), 3);
  ring.notify();
  assert.not.ok(sim.needsReset(FAULTY), 'holding a buffer is fine');
  ring.offer(faultySegments(ring, 4, FAULTY_HOLD), 3); // a second buffer with id 3
  ring.notify();
  assertNeedsReset(sim, drv, FAULTY, 'after a duplicate buffer id');
  assert.is(sim.stats().devices[FAULTY]!.counters['violation.BUFFER_ID_IN_FLIGHT'], 1);
  assertBusAnswers(drv, [RNG, CONSOLE, FAULTY], 'after a duplicate buffer id');
  sim.dispose();
});

test.run();
