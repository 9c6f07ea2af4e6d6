import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { assertNeedsReset, hostile, liveRng, RNG } from './harness';

test('a next index outside the descriptor table is refused before anything is written (virtio §2.7.5)', async () => {
  for (const next of [8, 9, 0xffff]) {
    const { sim, drv, area } = await hostile();
    const ring = liveRng(drv, area(0), 8);
    ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next);
    ring.offer(0);
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `after next = ${next}`);
    assert.is(sim.stats().devices[RNG]!.counters['violation.NEXT_OUT_OF_RANGE'], 1, `next = ${next} not counted as NEXT_OUT_OF_RANGE`);
    assert.equal([...sim.bytes.subarray(ring.data, ring.data + 16)], new Array(16).fill(0), `bytes written through a chain with next = ${next}`);
    sim.dispose();
  }
});

test.run();
