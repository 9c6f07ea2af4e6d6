import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_HOLD, FAULTY_OK, FAULTY_RELEASE } from '../../firmware/devices/faulty';
import { assertHealthy } from './harness';
import { FAULTY, faultySegments, packedFaulty } from './packed-harness';

test('buffers completed out of order come back with their own ids, lap after lap (12 laps of 6 descriptors; virtio §2.8.6)', async () => {
  const { sim, ring } = await packedFaulty(6);
  for (let lap = 0; lap < 12; lap++) {
    // A: a list of 3 kept; B: 1 kept; C: a list of 2 that completes B, then A, then itself.
    const [a, b, c] = [(lap * 2) % 6, (lap * 2 + 1) % 6, (lap * 2 + 2) % 6];
    ring.offer(faultySegments(ring, a, FAULTY_HOLD, 2), a);
    ring.notify();
    ring.offer(faultySegments(ring, b, FAULTY_HOLD), b);
    ring.notify();
    assert.equal(ring.reap(), [], `lap ${lap}: a held buffer was used`);
    ring.offer(faultySegments(ring, c, FAULTY_RELEASE, 1), c);
    ring.notify();
    assert.equal(ring.reap().map((u) => u.id), [b, a, c], `lap ${lap}: used ids in completion order`);
    assert.is(ring.inFlight.size, 0);
  }
  // And an ordinary request after all that.
  ring.offer(faultySegments(ring, 0, FAULTY_OK), 0);
  ring.notify();
  assert.equal(ring.reap().map((u) => u.id), [0]);
  assertHealthy(sim, FAULTY, 'after out-of-order completions');
  sim.dispose();
});

test.run();
