import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONSOLE, hostile } from './harness';

test('a reset with buffers in flight drops them: later input goes only to buffers of the new rings', async () => {
  const { sim, drv, area } = await hostile();
  const [rx] = drv.live(CONSOLE, [{ size: 8, at: area(0) }, { size: 8, at: area(1) }]);
  for (let i = 0; i < 4; i++) rx!.chain([{ off: rx!.data + 256 * i, len: 64, write: true }]);
  rx!.notify();
  assert.ok(sim.stats().devices[CONSOLE]!.queues[0]!.inFlight >= 1, 'a receive buffer should be held in flight');
  drv.setStatus(CONSOLE, 0);
  assert.is(sim.stats().devices[CONSOLE]!.queues[0]!.inFlight, 0, 'in-flight buffers survived the reset');
  sim.console().input('after reset');
  assert.is(rx!.usedIdx(), 0, 'a buffer of the reset rings was completed');
  assert.ok(sim.bytes.subarray(rx!.data, rx!.data + 1024).every((b) => b === 0), 'input written into a buffer dropped by the reset');
  // The new rings get the pending input.
  const [rx2] = drv.live(CONSOLE, [{ size: 8, at: area(2) }, { size: 8, at: area(3) }]);
  rx2!.chain([{ off: rx2!.data, len: 64, write: true }]);
  rx2!.notify();
  sim.serviceReady('console0');
  assert.is(rx2!.usedIdx(), 1, 'the new receive buffer did not get the input');
  assert.is(new TextDecoder().decode(sim.bytes.subarray(rx2!.data, rx2!.data + rx2!.usedElem(0).len)), 'after reset');
  assert.is(rx!.usedIdx(), 0, 'an old buffer was completed after the new rings went live');
  sim.dispose();
});

test.run();
