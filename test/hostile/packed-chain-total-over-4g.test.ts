import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { loadBoard } from '../../frontend/sim';
import { assertNeedsReset, hostile, livePackedRng, RNG } from './harness';

test('a packed buffer whose lengths add up to more than 2^32 bytes is refused, with no overflow', async () => {
  // An 8 MiB window: 1024 indirect entries each covering the whole pool exceed 2^32 bytes.
  const board = loadBoard();
  board.window.size = 8 << 20;
  const { sim, drv, area } = await hostile({ board });
  const ring = livePackedRng(drv, area(0), 8, BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
  const pool = sim.layout.poolOffset;
  const whole = sim.layout.windowSize - pool;
  const table = ring.data;
  for (let i = 0; i < 1024; i++) ring.setDesc(i, pool, whole, 0, VIRTQ_DESC_F_WRITE, table);
  ring.publish(ring.write([{ off: table, len: 1024 * 16 }], 0, VIRTQ_DESC_F_INDIRECT));
  const snapshot = sim.bytes.slice(pool);
  ring.notify();
  assertNeedsReset(sim, drv, RNG, 'after a buffer of more than 2^32 bytes');
  assert.is(sim.stats().devices[RNG]!.counters['violation.CHAIN_TOO_LONG'], 1, 'not counted as CHAIN_TOO_LONG');
  assert.ok(Buffer.compare(sim.bytes.slice(pool), snapshot) === 0, 'the device wrote through an oversized buffer');
  sim.dispose();
});

test.run();
