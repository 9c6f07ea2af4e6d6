import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { assertBusAnswers, CONSOLE, hostile, liveRng, RNG } from './harness';

test('a writable buffer over the queue\'s own rings only confuses that queue: no exception, others unaffected', async () => {
  const { sim, drv, area } = await hostile({ entropy: (d) => d.fill(0xff) });
  const ring = liveRng(drv, area(0), 8);
  // The buffer covers the descriptor table, the available ring and the used ring.
  ring.setDesc(0, ring.desc, ring.used + 64 - ring.desc, VIRTQ_DESC_F_WRITE);
  ring.offer(0);
  ring.notify();
  ring.notify(); // the device now reads rings full of 0xff
  assert.equal(sim.runtime.faults, [], 'an exception escaped the dispatcher');
  assertBusAnswers(drv, [RNG, CONSOLE], 'after the rng scribbled over its own rings');
  assert.not.ok(sim.stats().devices[CONSOLE]!.needsReset, 'console affected');
  sim.dispose();
});

test.run();
