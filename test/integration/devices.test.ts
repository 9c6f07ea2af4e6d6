// The same driver-model suite the demo runs, against the rollup bundle inside QuickJS-WASM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { RngDriver } from '../../frontend/drivers/rng';
import { createSim } from '../../frontend/sim';

test('discovery finds rng and console with their device info', async () => {
  const s = await createSim();
  const fe = await s.frontend();
  assert.equal(fe.devices.map((d) => [d.devNum, d.info.deviceId, d.info.maxQueues]), [[0, 4, 1], [1, 3, 2]]);
  s.dispose();
});

test('rng fills exactly the buffer the driver posts, with bytes that vary', async () => {
  const s = await createSim();
  const fe = await s.frontend();
  const rng = await RngDriver.open(fe.find(4)!);
  const a = await rng.read(64);
  const b = await rng.read(64);
  assert.is(a.length, 64);
  assert.not.equal(a, b, 'two reads differ');
  assert.ok(new Set(a).size > 16, 'entropy looks random');
  s.dispose();
});

test('rng requests larger than the per-request cap are filled up to the cap', async () => {
  const s = await createSim();
  const rng = await RngDriver.open((await s.frontend()).find(4)!);
  assert.is((await rng.read(100_000)).length, 65536);
  s.dispose();
});

test('console carries text both ways and reports its size', async () => {
  const s = await createSim();
  const con = await ConsoleDriver.open((await s.frontend()).find(3)!);
  assert.equal(await con.size(), { cols: 80, rows: 25 });
  await con.write('héllo\n');
  assert.is(s.console().output(), 'héllo\n');
  s.console().input('from the host');
  assert.is(new TextDecoder().decode(await con.read()), 'from the host');
  s.dispose();
});

test('console input that arrives before the driver posts buffers is kept, not lost', async () => {
  const s = await createSim();
  s.console().input('early bird');
  const con = await ConsoleDriver.open((await s.frontend()).find(3)!);
  assert.is(new TextDecoder().decode(await con.read()), 'early bird');
  s.dispose();
});

test('many console writes in a row arrive complete and in order', async () => {
  const s = await createSim();
  const con = await ConsoleDriver.open((await s.frontend()).find(3)!);
  let expect = '';
  for (let i = 0; i < 200; i++) {
    await con.write(`line ${i}\n`);
    expect += `line ${i}\n`;
  }
  assert.is(s.console().output(), expect);
  s.dispose();
});

test('the window is shared without a copy: the header the firmware wrote is what the host reads', async () => {
  const s = await createSim();
  assert.equal([...s.bytes.subarray(0, 4)], [0x42, 0x48, 0x4c, 0x4b], 'magic "BHLK" written by the firmware inside QuickJS');
  assert.ok(s.bytes.buffer === s.runtime.window.buffer, 'host view aliases the WASM heap');
  s.dispose();
});

test.run();
