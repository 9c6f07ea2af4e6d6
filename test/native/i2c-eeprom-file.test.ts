/**
 * The 24C02's contents file on the native runtime: `--service TARGET=PATH` names it instead of the
 * board's path, it is created erased when missing, what the guest wrote is there after a clean stop
 * and is read back by the next backend, and a file of the wrong size is refused at boot with a reason.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { I2cDriver } from '../../frontend/drivers/i2c';
import { board, scratch, startNative, withNative } from './_native';

const i2cBoard = (path: string) =>
  board({ devices: [{ type: 'i2c', service: 'i2c0' }], services: { i2c0: { kind: 'i2c', targets: [{ name: 'eeprom0', type: '24c02', address: '0x50', path }] } } });

test('--service eeprom0=PATH overrides the board; the contents survive a backend restart', async () => {
  const tmp = scratch();
  const boardPath = join(tmp.dir, 'board-eeprom.bin');
  const mine = join(tmp.dir, 'mine.bin');
  try {
    await withNative({ board: i2cBoard(boardPath), services: { eeprom0: mine } }, async (n) => {
      const i2c = await I2cDriver.open((await Frontend.attach(n.port!)).find(34)!);
      await i2c.writeRegisters(0x50, 0x08, new TextEncoder().encode('persist!'));
    });
    assert.not.ok(existsSync(boardPath), 'the board’s path was not used');
    assert.is(new TextDecoder().decode(readFileSync(mine).subarray(8, 16)), 'persist!');
    await withNative({ board: i2cBoard(mine) }, async (n) => {
      const i2c = await I2cDriver.open((await Frontend.attach(n.port!)).find(34)!);
      assert.is(new TextDecoder().decode(await i2c.readRegisters(0x50, 0x08, 8)), 'persist!', 'read back by a new backend');
    });
  } finally {
    tmp.done();
  }
});

test('an EEPROM file that is not 256 bytes is refused at boot with a one-line reason', async () => {
  const tmp = scratch();
  const bad = join(tmp.dir, 'short.bin');
  writeFileSync(bad, new Uint8Array(100));
  try {
    const err = await startNative({ board: i2cBoard(bad) }).then(
      async (n) => {
        await n.stop();
        return null;
      },
      (e: Error) => e.message,
    );
    assert.ok(err, 'the firmware did not start');
    assert.match(err!, /short\.bin is 100 bytes, a 24c02 holds 256/);
  } finally {
    tmp.done();
  }
});

test.run();
