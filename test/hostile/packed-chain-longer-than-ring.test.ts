import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { PackedRing } from '../../frontend/fuzz/ring';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, livePackedRng, RNG } from './harness';

test('NEXT on every descriptor of the ring is a list longer than the queue size: refused, bounded (virtio §2.8.17)', async () => {
  for (const size of [1, 5, 8, 256]) {
    const { sim, drv, area } = await hostile();
    const ring = livePackedRng(drv, area(0), size);
    for (let i = size - 1; i >= 0; i--) ring.setDesc(i, ring.data + 16 * (i % 64), 16, i, PackedRing.availFlags(1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT));
    const passes = sim.passes;
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `after a list around a ring of ${size}`);
    assert.is(sim.stats().devices[RNG]!.counters['violation.CHAIN_TOO_LONG'], 1, `size ${size}: ${JSON.stringify(sim.stats().devices[RNG]!.counters)}`);
    assert.ok(sim.passes - passes < 10, `the walk stayed bounded (${sim.passes - passes} passes)`);
    assert.equal([...sim.bytes.subarray(ring.data, ring.data + 16)], new Array(16).fill(0), `size ${size}: bytes written through a refused list`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after a list of size ${size}`);
    sim.dispose();
  }
});

test.run();
