import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { assertHealthy, hostile, liveRng, RNG } from './harness';

test('zero-length descriptors carry nothing, whatever their address, and still count against the chain TTL', async () => {
  const { sim, drv, area } = await hostile();
  const ring = liveRng(drv, area(0), 8);
  // Zero-length segments at absurd addresses (header, beyond the window) around one real segment.
  ring.setDesc(0, 0, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  ring.setDesc(1, ring.data, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
  ring.setDesc(2, 0xfffffff0, 0, VIRTQ_DESC_F_WRITE, 0, ring.desc, 0xffffffff);
  const header = sim.bytes.slice(0, 4096);
  ring.offer(0);
  ring.notify();
  assertHealthy(sim, RNG, 'for a chain with zero-length segments');
  assert.equal(ring.usedElem(0), { id: 0, len: 8 }, 'used length should be the one non-empty segment');
  assert.equal(sim.bytes.slice(0, 4096), header, 'the window header changed');
  // A chain of zero-length descriptors only: completed with 0 bytes.
  ring.setDesc(3, ring.data + 64, 0, VIRTQ_DESC_F_WRITE);
  ring.offer(3);
  ring.notify();
  assert.equal(ring.usedElem(1), { id: 3, len: 0 }, 'an all-empty chain should complete with 0 bytes');
  sim.dispose();
});

test.run();
