/**
 * Budgets in the native runtime, with the real bundle and its test-only faulty-test device: a device
 * model that loops is stopped by the watchdog, one that allocates without end by the memory limit;
 * the runtime reports it through bulkhead.onFault, the device goes NEEDS_RESET, everything else
 * keeps serving, and a reset brings the device back.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_ALLOC, FAULTY_LOOP, FAULTY_OK, FAULTY_THROW } from '../../firmware/devices/faulty';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import type { DriverDevice } from '../../frontend/device';
import { Frontend } from '../../frontend/device';
import { RngDriver } from '../../frontend/drivers/rng';
import { board, withNative } from './_native';

const FAULTY = 2;
const VIRTIO_ID_RNG = 4;

/** Goes live on the faulty device and sends one request of `mode`; returns its token's completion. */
async function request(fe: Frontend, dev: DriverDevice, mode: number) {
  await dev.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM);
  const q = await dev.setupQueue(0, 8);
  await dev.driverOk();
  const buf = dev.pool.alloc(8);
  fe.bus.port.bytes[buf] = mode;
  assert.ok(q.add([{ off: buf, len: 1 }], [], 1));
  await q.kick();
  return q;
}

async function scenario(mode: number, limits: object, kind: RegExp) {
  await withNative({ board: board({ devices: [{ type: 'faulty-test' }], limits }) }, async (n) => {
    const fe = await Frontend.attach(n.port!);
    const dev = fe.devices[FAULTY]!;
    assert.is(dev.info.deviceId, 0xfffe);
    await request(fe, dev, mode);
    await fe.bus.until(() => dev.needsReset, 10_000, () => `faulty-test did not report NEEDS_RESET; firmware said: ${n.stderr()}`);
    // The runtime logs after the call returns; the device's EVENT_CONFIG doorbell may come first.
    for (let i = 0; i < 500 && !kind.test(n.stderr()); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(n.stderr(), kind, 'the runtime names the budget that stopped the call');
    // The partition goes on: the bus, the rng, and the device itself after a reset.
    assert.is(await fe.ping(42), 42);
    const rng = await RngDriver.open(fe.find(VIRTIO_ID_RNG)!);
    assert.is((await rng.read(32)).length, 32);
    const q = await request(fe, dev, FAULTY_OK);
    assert.is(await q.complete(1), 0, 'a good request after reset completes');
    assert.not.ok(dev.needsReset && (await dev.getStatus()) & 0x40, 'device healthy again');
    assert.is(n.fw.exitCode, null, 'the firmware is still running');
  });
}

test('watchdog: a device model that loops is stopped (onFault "watchdog"), the partition keeps serving', async () => {
  await scenario(FAULTY_LOOP, { watchdogMs: 150 }, /onInterrupt stopped \(watchdog\)/);
});

test('memory limit: a device model that allocates without end is stopped (onFault "memory")', async () => {
  // Native QuickJS throws a catchable null on OOM; the dispatcher catches it and quarantines the
  // model, so the runtime reports the limit hit rather than stopping the call itself.
  // The watchdog only guards the test here (long enough that a loaded machine never reaches it first).
  await scenario(FAULTY_ALLOC, { memoryBytes: 16 << 20, watchdogMs: 10_000 }, /memory limit reached \(\d+ allocations refused\)|stopped \(memory\)/);
});

test('a device model that throws: the firmware contains it, NEEDS_RESET, the others keep serving', async () => {
  await scenario(FAULTY_THROW, {}, /faulty-test/);
});

test.run();
