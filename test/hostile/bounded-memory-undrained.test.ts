import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as P from '../../firmware/transport/protocol';
import { le32 } from '../../frontend/fuzz/ring';
import { assertRngServes, CONSOLE, hostile, liveRng, RNG } from './harness';

const SLACK = 64 * 1024;

test('a frontend that never drains the device→driver FIFO or the used rings cannot grow the backend\'s memory or spin it', async () => {
  const { sim, drv, area } = await hostile();
  const rng = liveRng(drv, area(0), 64);
  for (let i = 0; i < 64; i++) rng.setDesc(i, rng.data + 16 * i, 16, 2);
  const round = () => {
    // Keep the ring full (never more than its size outstanding); used entries are never reaped.
    const room = (rng.usedIdx() + 64 - rng.availIdx) & 0xffff;
    for (let i = 0; i < room; i++) rng.offer((rng.availIdx + i) & 63);
    for (let i = 0; i < 16; i++) drv.postRequest(CONSOLE, P.VIRTIO_MSG_GET_DEVICE_STATUS);
    drv.post(new Uint8Array([0, P.VIRTIO_MSG_EVENT_AVAIL, 0, 0, 0, 0, 16, 0, ...le32(0, 0)]));
    sim.kick(); // throws if one doorbell runs more than maxPasses
  };
  const tryRound = () => {
    try {
      round();
    } catch (e) {
      if (!/FIFO full/.test(String(e))) throw e; // our own FIFO is full: the backend holds back, correctly
      sim.kick();
    }
  };
  for (let i = 0; i < 50; i++) tryRound();
  const before = sim.runtime.memoryUsed();
  const passesBefore = sim.passes;
  for (let i = 0; i < 2000; i++) tryRound();
  const after = sim.runtime.memoryUsed();
  assert.ok(after - before < SLACK, `memory grew by ${after - before} bytes while the frontend never drained`);
  assert.ok(sim.passes - passesBefore <= 2000 * 4, `${sim.passes - passesBefore} backend passes for 2000 doorbells: the backend spins`);
  assert.ok(sim.stats().bus['backpressure']! > 0, 'the device→driver FIFO never filled: the test did not test backpressure');
  // Drain and everything works again.
  sim.receive();
  drv.pump();
  sim.kick();
  assert.ok(drv.ping(), 'bus does not answer after the frontend drained');
  rng.lastUsed = rng.usedIdx();
  assertRngServes(drv, rng, 'after the flood');
  assert.not.ok(sim.needsReset(RNG), 'rng went NEEDS_RESET');
  sim.dispose();
});

test.run();
