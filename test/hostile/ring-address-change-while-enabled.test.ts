import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as P from '../../firmware/transport/protocol';
import { Ring } from '../../frontend/fuzz/raw';
import { le32 } from '../../frontend/fuzz/ring';
import { assertHealthy, hostile, liveRng, RNG } from './harness';

test('SET_VQUEUE on an enabled queue is refused: the device keeps the rings it validated', async () => {
  const { sim, drv, area } = await hostile();
  const ring = liveRng(drv, area(0), 8);
  const moved = new Ring(drv, RNG, 0, 8, area(1));
  drv.setQueue(RNG, 0, 8, moved.desc, moved.avail, moved.used);
  const g = drv.request(RNG, P.VIRTIO_MSG_GET_VQUEUE, le32(0))!;
  assert.is(g.getUint32(16, true), ring.desc, 'GET_VQUEUE shows a descriptor table changed while enabled');
  assert.ok(sim.stats().devices[RNG]!.counters['refused.SET_VQUEUE'] >= 1, 'SET_VQUEUE on an enabled queue not refused');
  // Requests on the new rings are ignored; the old rings still serve.
  moved.chain([{ off: moved.data, len: 16, write: true }]);
  ring.chain([{ off: ring.data, len: 16, write: true }]);
  ring.notify();
  assert.is(ring.usedIdx(), 1, 'the validated rings stopped serving');
  assert.is(moved.usedIdx(), 0, 'the device used rings it never validated');
  assert.equal([...sim.bytes.subarray(moved.data, moved.data + 16)], new Array(16).fill(0), 'bytes written through unvalidated rings');
  assertHealthy(sim, RNG, 'after a refused SET_VQUEUE');
  sim.dispose();
});

test.run();
