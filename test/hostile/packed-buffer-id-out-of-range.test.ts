import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertBusAnswers, assertNeedsReset, CONSOLE, hostile, livePackedRng, RNG } from './harness';

test('a buffer id ≥ the queue size is refused before anything is written (virtio §2.8.13)', async () => {
  for (const id of [8, 9, 0xffff]) {
    const { sim, drv, area } = await hostile();
    const ring = livePackedRng(drv, area(0), 8);
    ring.offer([{ off: ring.data, len: 16, write: true }], id);
    ring.notify();
    assertNeedsReset(sim, drv, RNG, `after buffer id ${id}`);
    assert.is(sim.stats().devices[RNG]!.counters['violation.BUFFER_ID_OUT_OF_RANGE'], 1, `id ${id} not counted as BUFFER_ID_OUT_OF_RANGE`);
    assert.equal([...sim.bytes.subarray(ring.data, ring.data + 16)], new Array(16).fill(0), `bytes written for buffer id ${id}`);
    assert.equal(ring.reap(), [], `buffer id ${id} was used`);
    assertBusAnswers(drv, [RNG, CONSOLE], `after buffer id ${id}`);
    sim.dispose();
  }
});

test('only the last descriptor of a list carries the buffer id: the others may hold anything (virtio §2.8.6)', async () => {
  const { sim, drv, area } = await hostile();
  const ring = livePackedRng(drv, area(0), 8);
  const w = ring.write([{ off: ring.data, len: 8, write: true }, { off: ring.data + 8, len: 8, write: true }], 2);
  ring.setDesc(0, ring.data, 8, 0xffff, ring.descAt(0).flags); // a bogus id in the first descriptor: ignored
  ring.publish(w);
  ring.notify();
  assert.equal(ring.reap().map((u) => [u.id, u.len]), [[2, 16]]);
  assert.not.ok(sim.needsReset(RNG));
  sim.dispose();
});

test.run();
