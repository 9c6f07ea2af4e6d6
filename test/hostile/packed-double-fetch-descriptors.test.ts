import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { BASE_FEATURES } from '../../frontend/fuzz/raw';
import { PackedRing } from '../../frontend/fuzz/ring';
import { assertHealthy, hostile, livePackedRng, RNG } from './harness';

/**
 * The entropy service runs inside the backend's pass, after the list was validated and while the device
 * fills it: the moment for a driver on another CPU to rewrite what was validated — addresses, lengths,
 * the buffer id, the flags (NEXT, INDIRECT), the indirect table.
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
  const ring = livePackedRng(drv, area(0), 8, BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC);
  const table = ring.data + 0x1000;
  const good = ring.data + 0x2000;
  const evil = area(1); // where the rewritten descriptors point (e.g. another queue's rings)
  const segs = (at: number, len: number) => [{ off: at, len, write: true }, { off: at + len, len, write: true }];
  if (indirect) ring.offerIndirect(segs(good, 32), 5, table);
  else ring.offer(segs(good, 32), 5);
  attack = () => {
    // New addresses and lengths, another id, NEXT and INDIRECT flags — after validation, and only on the
    // descriptors of this buffer (the ones after it stay unavailable: nothing new is offered).
    const f = PackedRing.availFlags(1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
    for (let i = 0; i < (indirect ? 1 : 2); i++) ring.setDesc(i, evil + 4096 * i, 4096, 7, f);
    for (let i = 0; i < 2; i++) ring.setDesc(i, evil, 4096, 7, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_INDIRECT, table);
  };
  const evilBefore = sim.bytes.slice(evil, evil + 0x8000);
  ring.notify();
  assertHealthy(sim, RNG, 'after descriptors were rewritten mid-request');
  const used = ring.reap();
  assert.equal(used.map((u) => [u.id, u.len]), [[5, 64]], 'used id or length is not the one validated (buffer 5, 2 × 32 bytes)');
  assert.ok(sim.bytes.subarray(good, good + 64).every((b) => b === 0xcd), 'the validated buffers were not filled');
  assert.ok(Buffer.compare(sim.bytes.slice(evil, evil + 0x8000), evilBefore) === 0, 'the device wrote where the rewritten descriptors point');
  sim.dispose();
}

test('rewriting the descriptor ring while the device fills a list changes nothing the device does (read once)', () => rewriteDuringFill(false));
test('rewriting an indirect table while the device fills its buffer changes nothing the device does (read once)', () => rewriteDuringFill(true));

test.run();
