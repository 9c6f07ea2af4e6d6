/**
 * Fault-isolation set-up: host-sim plus the test-only `faulty-test` device (dev 2, see
 * firmware/devices/faulty.ts), a short watchdog and a small memory limit so the runtime stops it fast.
 */
import * as assert from 'uvu/assert';
import { FAULTY_BUFFERS, FAULTY_LOOP, FAULTY_OK } from '../../firmware/devices/faulty';
import type { Ring } from '../../frontend/fuzz/raw';
import { assertBusAnswers, assertHealthy, assertNeedsReset, assertRngServes, CONSOLE, hostile, liveRng, RNG } from './harness';

export const FAULTY = 2;

/**
 * Runs one faulty request of `mode` in the same doorbell as an rng request, then checks the whole
 * isolation promise: the faulty device is stopped and NEEDS_RESET with EVENT_CONFIG, the rng request
 * of that pass completed, the bus and the other devices answer, and a reset brings the device back.
 * Returns the sim's runtime faults and the device's stats for mode-specific checks.
 */
export async function faultScenario(mode: number) {
  // The loop modes test the watchdog (short); the memory modes test the memory limit, so their watchdog
  // is only the guard that ends the test should the limit fail: long enough that allocating 16 MiB on a
  // loaded machine (seen: 2 s at load average 17 on 2 cores) never reaches it first.
  const watchdogMs = mode === FAULTY_LOOP || mode === FAULTY_BUFFERS ? 150 : 10_000;
  const { sim, drv, area } = await hostile({ extra: [{ type: 'faulty-test' }], limits: { watchdogMs, memoryBytes: 16 << 20 } });
  const faulty = drv.live(FAULTY, [{ size: 8, at: area(0) }])[0]!;
  const rng = liveRng(drv, area(1));
  const memBefore = sim.runtime.memoryUsed();

  sim.bytes[faulty.data] = mode;
  faulty.chain([{ off: faulty.data, len: 1 }]);
  rng.chain([{ off: rng.data, len: 32, write: true }]);
  drv.notify(FAULTY, 0, false);
  drv.notify(RNG, 0, false);
  sim.kick();

  const stats = sim.stats().devices[FAULTY]!;
  assertNeedsReset(sim, drv, FAULTY, `after a faulty-test request of mode ${mode}`);
  assert.is(rng.usedIdx(), 1, 'the rng request of the same doorbell was not completed');
  assertHealthy(sim, RNG, 'because another device misbehaved');
  assertHealthy(sim, CONSOLE, 'because another device misbehaved');
  assertBusAnswers(drv, [RNG, CONSOLE, FAULTY], 'after a device model was stopped');
  assertRngServes(drv, rng, 'after a device model was stopped');

  const again = resetAndServe(drv, area(2));
  assert.is(again.usedIdx(), 1, `faulty-test did not serve a good request after reset (mode ${mode})`);
  assertHealthy(sim, FAULTY, 'after reset and a good request');
  const memAfter = sim.runtime.memoryUsed();
  assert.ok(memAfter < memBefore + (1 << 20), `memory not given back after the fault: ${memBefore} → ${memAfter} bytes`);
  const faults = [...sim.runtime.faults];
  sim.dispose();
  return { stats, faults };
}

function resetAndServe(drv: import('../../frontend/fuzz/raw').RawDriver, at: number): Ring {
  const r = drv.live(FAULTY, [{ size: 8, at }])[0]!;
  drv.sim.bytes[r.data] = FAULTY_OK;
  r.chain([{ off: r.data, len: 1 }]);
  r.notify();
  return r;
}
