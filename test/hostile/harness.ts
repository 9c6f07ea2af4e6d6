/**
 * Shared set-up for the hostile-frontend suite: a simulator on host-sim (rng = dev 0, console = dev 1,
 * plus whatever `extra` devices a test adds) driven by a RawDriver, and window areas that never overlap.
 */
import * as assert from 'uvu/assert';
import { DEVICE_NEEDS_RESET } from '../../firmware/virtio';
import type { PackedRawRing, Ring } from '../../frontend/fuzz/raw';
import { RawDriver } from '../../frontend/fuzz/raw';
import type { DeviceManifestEntry } from '../../firmware/hal';
import type { Sim, SimOptions } from '../../frontend/sim';
import { createSim, loadBoard } from '../../frontend/sim';

export const RNG = 0;
export const CONSOLE = 1;

/** Options of `hostile()`: extra devices, board limits to override, sim options. */
export interface HostileOptions extends SimOptions {
  extra?: DeviceManifestEntry[];
  limits?: Partial<{ memoryBytes: number; watchdogMs: number; budgetPerQueue: number }>;
}

/** A simulator with a raw driver; `area(k)` is the k-th disjoint 256 KiB slice of the pool. */
export async function hostile(opts: HostileOptions = {}): Promise<{ sim: Sim; drv: RawDriver; area: (k: number) => number }> {
  const board = loadBoard(opts.board);
  if (opts.extra) board.devices = [...board.devices, ...opts.extra];
  Object.assign(board.limits, opts.limits ?? {});
  const sim = await createSim({ ...opts, board });
  const drv = new RawDriver(sim);
  return { sim, drv, area: (k) => sim.layout.poolOffset + k * 0x40000 };
}

/** rng live with one ring of `size` at `at`. */
export function liveRng(drv: RawDriver, at: number, size = 8, features?: bigint): Ring {
  return drv.live(RNG, [{ size, at }], features)[0]!;
}

/** rng live with one packed ring of `size` at `at` (VIRTIO_F_RING_PACKED added to `features`). */
export function livePackedRng(drv: RawDriver, at: number, size = 8, features?: bigint): PackedRawRing {
  return drv.livePacked(RNG, [{ size, at }], features)[0]!;
}

/** Asserts the rng device still serves: one 16-byte request completes with 16 bytes. */
export function assertRngServes(drv: RawDriver, ring: Ring, why: string): void {
  const before = ring.usedIdx();
  const head = ring.chain([{ off: ring.data + 0x8000, len: 16, write: true }]);
  ring.notify();
  assert.is(ring.usedIdx(), (before + 1) & 0xffff, `rng did not complete a request ${why}`);
  assert.equal(ring.usedElem(before), { id: head, len: 16 }, `rng completed the wrong head or length ${why}`);
}

/** Asserts the bus answers PING and every device in `devs` answers GET_DEVICE_STATUS. */
export function assertBusAnswers(drv: RawDriver, devs: number[], why: string): void {
  assert.ok(drv.ping(), `bus did not answer PING ${why}`);
  for (const d of devs) assert.ok(drv.getStatus(d) !== null, `device ${d} did not answer GET_DEVICE_STATUS ${why}`);
}

/** Asserts `dev` is in DEVICE_NEEDS_RESET and the driver got an EVENT_CONFIG saying so. */
export function assertNeedsReset(sim: Sim, drv: RawDriver, dev: number, why: string): void {
  assert.ok(sim.needsReset(dev), `device ${dev} not marked DEVICE_NEEDS_RESET ${why}`);
  const ev = drv.configEvents(dev).at(-1);
  assert.ok(ev, `no EVENT_CONFIG for device ${dev} ${why}`);
  assert.ok(ev!.payload.getUint32(0, true) & DEVICE_NEEDS_RESET, `EVENT_CONFIG of device ${dev} lacks DEVICE_NEEDS_RESET ${why}`);
}

/** Asserts `dev` is live and not in DEVICE_NEEDS_RESET. */
export function assertHealthy(sim: Sim, dev: number, why: string): void {
  const d = sim.stats().devices[dev]!;
  assert.not.ok(d.needsReset, `device ${dev} went DEVICE_NEEDS_RESET ${why}: ${d.lastViolation}`);
}
