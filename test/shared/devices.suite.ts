/**
 * The driver-model suite (the one the demo runs): discovery, rng, console, through the TypeScript
 * frontend (frontend/device.ts) attached to a backend's FrontendPort. test/integration/devices.test.ts
 * runs it on the simulator, test/native/shared-devices.test.ts on the native runtime.
 *
 * Simulator-only assertion: that the host's view of the window aliases the QuickJS-WASM heap
 * (`runtime.window`); on native, the window is the ivshmem shared memory and the header check
 * (written by the firmware in the other process, read here) is the aliasing check.
 */
import * as assert from 'uvu/assert';
import { VIRTIO_F_RING_PACKED } from '../../firmware/virtio';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { RngDriver } from '../../frontend/drivers/rng';
import type { Backend } from './backends';
import { NATIVE_TIMEOUT_MS } from './backends';
import { behaviour } from './suite';

const VIRTIO_ID_RNG = 4;
const VIRTIO_ID_CONSOLE = 3;

const open = async (b: Backend) => ConsoleDriver.open((await b.frontend()).find(VIRTIO_ID_CONSOLE)!);

/**
 * Reads console input until at least as many bytes as `expect` has arrived (on native the host's
 * bytes travel through a socket and the firmware's event loop; on the simulator they are there at once).
 */
async function readText(b: Backend, con: ConsoleDriver, expect: string): Promise<string> {
  const want = new TextEncoder().encode(expect).length;
  const end = Date.now() + (b.sim ? 0 : NATIVE_TIMEOUT_MS);
  const parts: Uint8Array[] = [];
  let got = 0;
  for (;;) {
    const p = await con.read();
    parts.push(p);
    got += p.length;
    if (got >= want || Date.now() >= end) return Buffer.concat(parts).toString('utf8');
    await b.port.wait(end - Date.now());
  }
}

export const register = behaviour('devices', (test) => {
  test('discovery finds rng and console with their device info', async (b) => {
    const fe = await b.frontend();
    assert.equal(fe.devices.map((d) => [d.devNum, d.info.deviceId]), [[0, 4], [1, 3]]);
    // virtio-mmio has no register for the number of queues (its drivers know their devices)
    if (b.transport !== 'mmio') assert.equal(fe.devices.map((d) => d.info.maxQueues), [1, 2], 'queues per device');
  });

  test('rng fills exactly the buffer the driver posts, with bytes that vary', async (b) => {
    const rng = await RngDriver.open((await b.frontend()).find(VIRTIO_ID_RNG)!);
    assert.is((rng.dev.features & VIRTIO_F_RING_PACKED) !== 0n, b.ring === 'packed', `the driver asked for ${b.ring} rings`);
    const x = await rng.read(64);
    const y = await rng.read(64);
    assert.is(x.length, 64);
    assert.not.equal(x, y, 'two reads differ');
    assert.ok(new Set(x).size > 16, 'entropy looks random');
  });

  test('rng requests larger than the per-request cap are filled up to the cap', async (b) => {
    const rng = await RngDriver.open((await b.frontend()).find(VIRTIO_ID_RNG)!);
    assert.is((await rng.read(100_000)).length, 65536);
  });

  test('console carries text both ways and reports its size', async (b) => {
    const con = await open(b);
    assert.equal(await con.size(), { cols: 80, rows: 25 });
    await con.write('héllo\n');
    assert.is(await b.console().output('héllo\n'), 'héllo\n');
    await b.console().input('from the host');
    assert.is(await readText(b, con, 'from the host'), 'from the host');
  });

  test('console input that arrives before the driver posts buffers is kept, not lost', async (b) => {
    await b.console().input('early bird');
    const con = await open(b);
    assert.is(await readText(b, con, 'early bird'), 'early bird');
  });

  test('many console writes in a row arrive complete and in order', async (b) => {
    const con = await open(b);
    let expect = '';
    for (let i = 0; i < 200; i++) {
      await con.write(`line ${i}\n`);
      expect += `line ${i}\n`;
    }
    assert.is(await b.console().output(expect), expect);
  });

  test('the window is shared without a copy: the header the firmware wrote is what the host reads', async (b) => {
    assert.equal([...b.bytes.subarray(0, 4)], [0x42, 0x48, 0x4c, 0x4b], 'magic "BHLK" written by the firmware');
    if (b.sim) assert.ok(b.sim.bytes.buffer === b.sim.runtime.window.buffer, 'host view aliases the WASM heap (sim-only)');
  });
});
