import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { Ring } from '../../frontend/fuzz/raw';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { assertHealthy, hostile, liveRng, RNG } from './harness';

/**
 * The entropy service runs inside the backend's pass, after the chain was validated and while the
 * device fills it: the perfect moment for a driver on another CPU to rewrite what was validated.
 */
async function rewriteDuringFill(indirect: boolean) {
  let attack: (() => void) | null = null;
  const { sim, drv, area } = await hostile({
    entropy: (dst) => {
      attack?.();
      attack = null;
      dst.fill(0xcd);
    },
  });
  const ring: Ring = liveRng(drv, area(0), 8, BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
  const table = ring.data + 0x1000;
  const good = ring.data + 0x2000;
  const evil = area(1); // where the rewritten descriptors point (e.g. another queue's rings)
  const write = (at: number, len: number) => {
    if (indirect) {
      ring.setDesc(0, at, len, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1, table);
      ring.setDesc(1, at + len, len, VIRTQ_DESC_F_WRITE, 0, table);
    } else {
      ring.setDesc(0, at, len, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
      ring.setDesc(1, at + len, len, VIRTQ_DESC_F_WRITE);
    }
  };
  write(good, 32);
  if (indirect) ring.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT);
  attack = () => {
    write(evil, 4096); // new addresses and lengths, after validation
    if (indirect) ring.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT);
  };
  const evilBefore = sim.bytes.slice(evil, evil + 8192);
  ring.offer(0);
  ring.notify();
  assertHealthy(sim, RNG, 'after descriptors were rewritten mid-request');
  assert.equal(ring.usedElem(0), { id: 0, len: 64 }, 'used length is not the one validated (2 × 32 bytes)');
  assert.ok(sim.bytes.subarray(good, good + 64).every((b) => b === 0xcd), 'the validated buffers were not filled');
  assert.ok(Buffer.compare(sim.bytes.slice(evil, evil + 8192), evilBefore) === 0, 'the device wrote where the rewritten descriptors point');
  sim.dispose();
}

test('rewriting the descriptor table while the device fills a chain changes nothing the device does (read once)', () => rewriteDuringFill(false));
test('rewriting an indirect table while the device fills a chain changes nothing the device does (read once)', () => rewriteDuringFill(true));

test.run();
