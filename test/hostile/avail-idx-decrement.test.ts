import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, liveRng, RNG } from './harness';

test('an available index that goes backwards is an index jump: NEEDS_RESET, nothing more completed (virtio §2.7.13.3)', async () => {
  const { sim, drv, area } = await hostile();
  const ring = liveRng(drv, area(0), 8);
  for (let i = 0; i < 3; i++) ring.chain([{ off: ring.data + 64 * i, len: 16, write: true }]);
  ring.notify();
  assert.is(ring.usedIdx(), 3, 'three good requests should complete first');
  ring.setAvailIdx(1); // 65534 ahead of the device's next entry
  ring.notify();
  assertNeedsReset(sim, drv, RNG, 'after avail idx went backwards');
  assert.is(sim.stats().devices[RNG]!.counters['violation.AVAIL_IDX_JUMP'], 1, 'not counted as AVAIL_IDX_JUMP');
  assert.is(ring.usedIdx(), 3, 'the device completed something after the decrement');
  assertBusAnswers(drv, [RNG, CONSOLE], 'after the rng index attack');
  sim.dispose();
});

test.run();
