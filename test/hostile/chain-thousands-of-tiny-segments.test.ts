import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { assertHealthy, hostile, liveRng, RNG } from './harness';

test('a chain of 1024 one-byte segments is filled exactly: every segment, nothing between them', async () => {
  const entropy = (dst: Uint8Array) => dst.fill(0xab);
  const { sim, drv, area } = await hostile({ entropy });
  const ring = liveRng(drv, area(0), 8, BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
  const table = ring.data;
  const bufs = ring.data + 0x4000;
  for (let i = 0; i < 1024; i++) ring.setDesc(i, bufs + 2 * i, 1, VIRTQ_DESC_F_WRITE | (i < 1023 ? VIRTQ_DESC_F_NEXT : 0), i + 1, table);
  ring.setDesc(0, table, 1024 * 16, VIRTQ_DESC_F_INDIRECT);
  ring.offer(0);
  ring.notify();
  assertHealthy(sim, RNG, 'for 1024 one-byte segments');
  assert.equal(ring.usedElem(0), { id: 0, len: 1024 }, 'used length should be 1024');
  const b = sim.bytes;
  for (let i = 0; i < 1024; i++) {
    assert.is(b[bufs + 2 * i], 0xab, `segment ${i} not filled`);
    assert.is(b[bufs + 2 * i + 1], 0, `byte between segments ${i} and ${i + 1} written`);
  }
  sim.dispose();
});

test.run();
