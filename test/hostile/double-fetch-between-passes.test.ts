import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { assertHealthy, hostile, liveRng, RNG } from './harness';

test('a chain popped in one backend pass is completed as validated even if the driver rewrites it before the next pass', async () => {
  // Console receive buffers are popped, then held across passes until host input arrives.
  const { sim, drv, area } = await hostile();
  const [rx] = drv.live(1, [{ size: 8, at: area(0) }, { size: 8, at: area(1) }]);
  const head = rx!.chain([{ off: rx!.data, len: 8, write: true }]);
  drv.notify(1, 0, false);
  sim.ring();
  while (sim.step()); // backend pops and holds the buffer
  rx!.setDesc(head, area(2), 4096, VIRTQ_DESC_F_WRITE); // driver rewrites it between passes
  const evilBefore = sim.bytes.slice(area(2), area(2) + 4096);
  sim.console().input('0123456789abcdef');
  assert.equal(rx!.usedElem(0), { id: head, len: 8 }, 'used length is not bounded by the validated 8 bytes');
  assert.is(new TextDecoder().decode(sim.bytes.subarray(rx!.data, rx!.data + 8)), '01234567', 'validated buffer not filled');
  assert.ok(Buffer.compare(sim.bytes.slice(area(2), area(2) + 4096), evilBefore) === 0, 'the device followed the rewritten descriptor');
  // rng as well: rewrite between ring() and step() (the backend has not fetched yet: the new value counts).
  const ring = liveRng(drv, area(3));
  ring.chain([{ off: ring.data, len: 16, write: true }]);
  drv.notify(RNG, 0, false);
  sim.ring();
  ring.setDesc(0, ring.data + 64, 8, VIRTQ_DESC_F_WRITE);
  while (sim.step());
  assert.equal(ring.usedElem(0), { id: 0, len: 8 }, 'a descriptor rewritten before the fetch should be read as rewritten');
  assertHealthy(sim, RNG, 'after the rewrite');
  sim.dispose();
});

test.run();
