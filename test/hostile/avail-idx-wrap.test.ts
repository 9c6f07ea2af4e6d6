import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertHealthy, hostile, liveRng, RNG } from './harness';

test('the legitimate 65535 → 0 wrap of avail and used idx is served without a violation (virtio §2.7.6)', async () => {
  const { sim, drv, area } = await hostile();
  const size = 256;
  const ring = liveRng(drv, area(0), size);
  // Heads are reused once used; buffers are 1 byte, so 65536 + 512 requests stay cheap.
  for (let i = 0; i < size; i++) ring.setDesc(i, ring.data + i, 1, 2 /* WRITE */);
  let done = 0;
  for (let batch = 0; batch < 65536 / size + 2; batch++) {
    for (let i = 0; i < size; i++) ring.offer(i);
    ring.notify();
    sim.receive(); // a driver drains EVENT_USED, or backpressure holds its next notify
    const used = ring.reap();
    assert.is(used.length, size, `batch ${batch} (avail idx ${ring.availIdx}): ${used.length} of ${size} completed`);
    done += used.length;
  }
  assert.ok(done > 65536, 'the indices did not wrap');
  assert.is(ring.availIdx, (65536 + 2 * size) & 0xffff, 'avail idx bookkeeping');
  assert.is(ring.usedIdx(), ring.availIdx, 'used idx did not follow avail idx across the wrap');
  assertHealthy(sim, RNG, 'across the 16-bit index wrap');
  sim.dispose();
});

test.run();
