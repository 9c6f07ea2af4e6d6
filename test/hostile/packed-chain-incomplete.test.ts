import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { PackedRing } from '../../frontend/fuzz/ring';
import { assertNeedsReset, hostile, livePackedRng, RNG } from './harness';

test('a list whose head is available before the rest is refused, nothing written (virtio §2.8.17)', async () => {
  const { sim, drv, area } = await hostile();
  const ring = livePackedRng(drv, area(0), 8);
  // NEXT on the head, but descriptor 1 still has the flags of the previous lap (not available).
  ring.setDesc(0, ring.data, 16, 0, PackedRing.availFlags(1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT));
  ring.setDesc(1, ring.data + 16, 16, 0, PackedRing.availFlags(0, VIRTQ_DESC_F_WRITE));
  ring.notify();
  assertNeedsReset(sim, drv, RNG, 'after a list whose second descriptor was not available');
  assert.is(sim.stats().devices[RNG]!.counters['violation.CHAIN_INCOMPLETE'], 1);
  assert.equal([...sim.bytes.subarray(ring.data, ring.data + 32)], new Array(32).fill(0), 'bytes written through an incomplete list');
  sim.dispose();
});

test.run();
