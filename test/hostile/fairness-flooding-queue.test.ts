import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertHealthy, CONSOLE, hostile, liveRng, RNG } from './harness';

/**
 * The bound: a console request whose EVENT_AVAIL is in the FIFO when a backend pass starts completes
 * in that pass (K = 1), however much work the rng has: runQueues visits every kicked queue each pass
 * with budgetPerQueue chains at most. Every pass here, the rng ring is refilled as fast as it drains.
 */
const K = 1;

test(`a queue refilled as fast as it drains does not starve another device: its request completes within ${K} pass`, async () => {
  const { sim, drv, area } = await hostile();
  const rng = liveRng(drv, area(0), 256);
  for (let i = 0; i < 256; i++) rng.setDesc(i, rng.data + 16 * i, 16, 2 /* WRITE */);
  const [, tx] = drv.live(CONSOLE, [{ size: 8, at: area(1) }, { size: 8, at: area(2) }]);
  const refill = () => {
    for (const u of rng.reap()) rng.offer(u.id);
    sim.receive();
  };
  for (let i = 0; i < 256; i++) rng.offer(i);
  drv.notify(RNG, 0, false);
  sim.ring();
  for (let p = 0; p < 10; p++) {
    sim.step();
    refill();
  }
  const budget = sim.board.limits.budgetPerQueue;
  assert.ok(rng.lastUsed >= 10 * budget - budget, `rng should be busy: ${rng.lastUsed} completions in 10 passes`);
  sim.bytes.set(new TextEncoder().encode('hello'), tx!.data);
  tx!.chain([{ off: tx!.data, len: 5 }]);
  drv.notify(CONSOLE, 1, false);
  let passes = 0;
  while (tx!.usedIdx() === 0 && passes < 100) {
    sim.step();
    passes++;
    refill();
  }
  assert.ok(passes <= K, `console request took ${passes} backend passes under an rng flood (bound ${K})`);
  assert.is(sim.console().output(), 'hello');
  assertHealthy(sim, RNG, 'under flood');
  sim.dispose();
});

test(`a doorbell storm on one device does not delay another: its request completes within ${K} pass`, async () => {
  const { sim, drv, area } = await hostile();
  const rng = liveRng(drv, area(0), 256);
  const [, tx] = drv.live(CONSOLE, [{ size: 8, at: area(1) }, { size: 8, at: area(2) }]);
  for (let i = 0; i < 256; i++) rng.chain([{ off: rng.data + 16 * (i % 64), len: 16, write: true }]);
  // Fill the driver→device FIFO with rng notifies, the console's last.
  for (let i = 0; i < sim.layout.fifoD2V.slots - 1; i++) drv.notify(RNG, 0, false);
  sim.bytes.set(new TextEncoder().encode('storm'), tx!.data);
  tx!.chain([{ off: tx!.data, len: 5 }]);
  drv.notify(CONSOLE, 1, false);
  sim.ring();
  let passes = 0;
  while (tx!.usedIdx() === 0 && passes < 100) {
    sim.step();
    passes++;
  }
  assert.ok(passes <= K, `console request took ${passes} passes behind a doorbell storm (bound ${K})`);
  sim.dispose();
});

test.run();
