import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, liveRng, RNG } from './harness';

test('a chain that cycles through every descriptor is stopped by the queue-size TTL and nothing is written (virtio §2.7.5.2)', async () => {
  const { sim, drv, area } = await hostile();
  const size = 256;
  const ring = liveRng(drv, area(0), size);
  for (let i = 0; i < size; i++) ring.setDesc(i, ring.data + 16 * i, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (i + 1) % size);
  const before = sim.bytes.slice(ring.data, ring.data + 16 * size);
  ring.offer(17);
  ring.notify();
  assertNeedsReset(sim, drv, RNG, 'after a chain of period 256 in a 256-entry table');
  assert.is(sim.stats().devices[RNG]!.counters['violation.CHAIN_LOOP'], 1, 'not counted as CHAIN_LOOP');
  assert.equal(sim.bytes.slice(ring.data, ring.data + 16 * size), before, 'the device wrote into a looping chain');
  assert.is(ring.usedIdx(), 0, 'a looping chain was completed');
  assertBusAnswers(drv, [RNG, CONSOLE], 'after the loop');
  sim.dispose();
});

test.run();
