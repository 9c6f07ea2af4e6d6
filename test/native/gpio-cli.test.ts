/**
 * `npx bulkhead gpio …` against a running native backend's control socket (after seccomp): list shows
 * the board's lines, set drives an input the guest reads, get shows what the guest drives, and a
 * mistake is one clear line with exit status 1. The socket survives bad commands and serves several
 * clients at once.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { GpioDriver } from '../../frontend/drivers/gpio';
import { GpioControl } from '../../runtime/native/gpio-control.mjs';
import { board, ROOT, scratch, withNative } from './_native';

const run = promisify(execFile);
const gpioBoard = (ctl: string) =>
  board({ devices: [{ type: 'gpio', service: 'gpio0' }], services: { gpio0: { kind: 'gpio', lines: ['LED0', 'BUTTON0', '', 'Red LED Vdd'], control: `unix:${ctl}` } } });

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [join(ROOT, 'bin/bulkhead.mjs'), 'gpio', ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test('bulkhead gpio list / set / get drive and show the lines of a running backend', async () => {
  const tmp = scratch();
  const ctl = join(tmp.dir, 'gpio.sock');
  try {
    await withNative({ board: gpioBoard(ctl) }, async (n) => {
      const g = await GpioDriver.open((await Frontend.attach(n.port!)).find(41)!);
      const list = await cli('list', '--socket', ctl);
      assert.is(list.code, 0, list.stderr);
      assert.match(list.stdout, /^\s+0\s+LED0\s+in\s+0/m);
      assert.match(list.stdout, /^\s+3\s+Red LED Vdd\s+in\s+0/m, 'a name with spaces');
      assert.is((await cli('set', 'BUTTON0', '1', '--socket', ctl)).code, 0);
      assert.is(await g.get(1), 1, 'the guest reads what the host drives');
      assert.is((await cli('set', 'Red LED Vdd', '1', '--socket', ctl)).code, 0);
      assert.is(await g.get(3), 1, 'set by a name with spaces');
      await g.output(0, 1);
      const got = await cli('get', 'LED0', '--socket', ctl);
      assert.equal([got.code, got.stdout.trim()], [0, '1'], 'the host sees the guest’s output value');
      const bad = await cli('set', 'NOPE', '1', '--socket', ctl);
      assert.is(bad.code, 1);
      assert.match(bad.stderr, /no line 'NOPE'/);
      assert.is((await cli('set', 'LED0', '2', '--socket', ctl)).code, 2, 'a value other than 0/1 is a usage error');
    });
  } finally {
    tmp.done();
  }
});

test('the control socket answers bad and over-long commands with an error line and serves several clients', async () => {
  const tmp = scratch();
  const ctl = join(tmp.dir, 'gpio.sock');
  try {
    await withNative({ board: gpioBoard(ctl) }, async () => {
      const a = await GpioControl.connect(ctl);
      const b = await GpioControl.connect(ctl);
      const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (e: Error) => e.message);
      assert.match(await refused(a.command('frobnicate')), /unknown command/);
      assert.match(await refused(a.command(`get ${'x'.repeat(1000)}`)), /command too long/);
      assert.match(await refused(a.command('set LED0 7')), /usage: set LINE 0\|1/);
      await b.set('BUTTON0', 1);
      assert.is((await a.get('BUTTON0')).input, 1, 'both clients see one state');
      // a client that vanishes mid-command costs nothing
      const raw = connect(ctl);
      await new Promise((r) => raw.on('connect', r));
      raw.write('set BUTT');
      raw.destroy();
      assert.is((await a.list()).length, 4);
      a.close();
      b.close();
    });
  } finally {
    tmp.done();
  }
});

test.run();
