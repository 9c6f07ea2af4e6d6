import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { loadBoard } from '../../frontend/sim';
import { assertNeedsReset, hostile, liveRng, RNG } from './harness';

test('a chain whose lengths add up to more than 2^32 bytes is refused (virtio §2.7.5), with no overflow', async () => {
  // An 8 MiB window: 1024 indirect entries each covering the whole pool exceed 2^32 bytes.
  const board = loadBoard();
  board.window.size = 8 << 20;
  const { sim, drv, area } = await hostile({ board });
  const ring = liveRng(drv, area(0), 8, BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
  const pool = sim.layout.poolOffset;
  const whole = sim.layout.windowSize - pool;
  const table = ring.data;
  for (let i = 0; i < 1024; i++) ring.setDesc(i, pool, whole, VIRTQ_DESC_F_WRITE | (i < 1023 ? VIRTQ_DESC_F_NEXT : 0), i + 1, table);
  ring.setDesc(0, table, 1024 * 16, VIRTQ_DESC_F_INDIRECT);
  ring.offer(0);
  const snapshot = sim.bytes.slice(pool);
  ring.notify();
  assertNeedsReset(sim, drv, RNG, 'after a chain of more than 2^32 bytes');
  assert.is(sim.stats().devices[RNG]!.counters['violation.CHAIN_TOO_LONG'], 1, 'not counted as CHAIN_TOO_LONG');
  assert.ok(Buffer.compare(sim.bytes.slice(pool), snapshot) === 0, 'the device wrote through an oversized chain');
  sim.dispose();
});

test.run();
