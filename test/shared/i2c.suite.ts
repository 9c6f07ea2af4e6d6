/**
 * virtio-i2c through the frontend driver model, on any backend (test/integration/i2c.test.ts: the
 * simulator; test/native/shared-i2c.test.ts: the native runtime): what i2cdetect, i2cget, i2cset and
 * i2ctransfer rely on — probing, the 24C02's addressing rules and its file, the sensor's registers,
 * NACKs and transactions that stop at the first failure.
 */
import * as assert from 'uvu/assert';
import { I2cDriver } from '../../frontend/drivers/i2c';
import { VIRTIO_I2C_MSG_ERR, VIRTIO_I2C_MSG_OK } from '../../firmware/virtio';
import type { Backend } from './backends';
import { EEPROM, I2C_DEV, lowSpeed, SENSOR, SENSOR_CELSIUS } from './lowspeed';
import type { TestFn } from './suite';
import { behaviour } from './suite';

const SENSOR_MANUFACTURER_ID = 0x42;
const SENSOR_DEVICE_ID = 0x54;

async function open(b: Backend): Promise<I2cDriver> {
  const fe = await b.frontend();
  assert.is(fe.devices[I2C_DEV]!.info.deviceId, 34, 'device 1 is virtio-i2c (ID 34)');
  return I2cDriver.open(fe.devices[I2C_DEV]!);
}

/** One test on a fresh EEPROM file (removed afterwards). */
function withEeprom(test: TestFn, title: string, body: (b: Backend, ls: ReturnType<typeof lowSpeed>) => Promise<void>) {
  const ls = lowSpeed();
  test(
    title,
    async (b) => {
      try {
        await body(b, ls);
      } finally {
        ls.done();
      }
    },
    ls.opts,
  );
}

export const register = behaviour('i2c', (test) => {
  withEeprom(test, 'a zero-length write (SMBus Quick, what i2cdetect sends) is acknowledged only where a target answers', async (b) => {
    const i2c = await open(b);
    const found: number[] = [];
    for (let a = 0x03; a <= 0x77; a++) if (await i2c.probe(a)) found.push(a);
    assert.equal(found, [SENSOR, EEPROM], 'i2cdetect would show 0x48 and 0x50 and nothing else');
  });

  withEeprom(test, '24c02: a byte written at a word address reads back (i2cset / i2cget)', async (b) => {
    const i2c = await open(b);
    await i2c.writeRegisters(EEPROM, 0x10, Uint8Array.of(0xab));
    assert.equal([...(await i2c.readRegisters(EEPROM, 0x10, 1))], [0xab]);
    assert.equal([...(await i2c.readRegisters(EEPROM, 0x11, 1))], [0xff], 'the neighbour is still erased');
  });

  withEeprom(test, '24c02: a page write rolls over inside its 8-byte page and overwrites the page start', async (b) => {
    const i2c = await open(b);
    await i2c.writeRegisters(EEPROM, 0x26, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    // 0x26, 0x27, then back to 0x20 .. 0x27: bytes 9 and 10 overwrite what 1 and 2 wrote
    assert.equal([...(await i2c.readRegisters(EEPROM, 0x20, 8))], [3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal([...(await i2c.readRegisters(EEPROM, 0x28, 1))], [0xff], 'the next page is untouched');
  });

  withEeprom(test, '24c02: a read without an address continues after the last access; sequential reads roll over 255 → 0', async (b) => {
    const i2c = await open(b);
    await i2c.writeRegisters(EEPROM, 0xfe, Uint8Array.of(0x11, 0x22)); // 0xfe, 0xff
    await i2c.writeRegisters(EEPROM, 0x00, Uint8Array.of(0x33));
    assert.equal([...(await i2c.readRegisters(EEPROM, 0xfe, 3))], [0x11, 0x22, 0x33], 'rolled over to 0x00');
    const [cur] = await i2c.transferAll([{ addr: EEPROM, read: 1 }]);
    assert.equal([...cur!], [0xff], 'current address read: 0x01, after the three bytes read');
  });

  withEeprom(test, '24c02: written bytes are in its file on the host once the transaction completed', async (b, ls) => {
    const i2c = await open(b);
    assert.equal(ls.file(), new Uint8Array(256).fill(0xff), 'a new part is created erased');
    await i2c.writeRegisters(EEPROM, 0x40, new TextEncoder().encode('bulkhead'));
    const f = ls.file();
    assert.is(new TextDecoder().decode(f.subarray(0x40, 0x48)), 'bulkhead');
    assert.is(f.length, 256);
  });

  withEeprom(test, 'temperature sensor: ID registers, the temperature the board gives, a limit written and read back', async (b) => {
    const i2c = await open(b);
    const regs = await i2c.readRegisters(SENSOR, 0, 8);
    assert.is(regs[6], SENSOR_MANUFACTURER_ID, 'manufacturer ID');
    assert.is(regs[7], SENSOR_DEVICE_ID, 'device ID');
    assert.is(((regs[0]! << 24) >> 24) + regs[1]! / 256, SENSOR_CELSIUS, 'temperature (°C + 1/256 °C)');
    await i2c.writeRegisters(SENSOR, 3, Uint8Array.of(20)); // T_HIGH below the temperature
    assert.equal([...(await i2c.readRegisters(SENSOR, 3, 1))], [20]);
    assert.is((await i2c.readRegisters(SENSOR, 5, 1))[0]! & 1, 1, 'status shows the high alert');
  });

  withEeprom(test, 'temperature sensor: a write to a read-only register is not acknowledged and changes nothing', async (b) => {
    const i2c = await open(b);
    const r = await i2c.transfer([{ addr: SENSOR, write: Uint8Array.of(7, 0x99) }]);
    assert.is(r.completed, 0);
    assert.equal(r.status, [VIRTIO_I2C_MSG_ERR]);
    assert.is((await i2c.readRegisters(SENSOR, 7, 1))[0], SENSOR_DEVICE_ID, 'device ID unchanged');
  });

  withEeprom(test, 'a read longer than the target has is a clean error: the transaction stops there, the buffer is not filled', async (b) => {
    const i2c = await open(b);
    const r = await i2c.transfer([{ addr: SENSOR, write: Uint8Array.of(0) }, { addr: SENSOR, read: 9 }]);
    assert.is(r.completed, 1, 'the register write completed, the 9-byte read did not (8 registers)');
    assert.equal(r.status, [VIRTIO_I2C_MSG_OK, VIRTIO_I2C_MSG_ERR]);
    assert.equal(r.usedLen, [1, 1], 'only the status byte was written for the failed read');
    assert.equal([...(await i2c.readRegisters(SENSOR, 6, 2))], [SENSOR_MANUFACTURER_ID, SENSOR_DEVICE_ID], 'the device keeps serving');
  });

  withEeprom(test, 'an address no target answers is NACKed, and the rest of its transaction is failed, not run (FAIL_NEXT)', async (b) => {
    const i2c = await open(b);
    await i2c.writeRegisters(EEPROM, 0x80, Uint8Array.of(0x5a));
    const r = await i2c.transfer([
      { addr: 0x51, write: Uint8Array.of(0x00) },
      { addr: EEPROM, write: Uint8Array.of(0x90, 0x01) },
    ]);
    assert.is(r.completed, 0);
    assert.is(r.status[0], VIRTIO_I2C_MSG_ERR, 'the absent address');
    assert.equal([...(await i2c.readRegisters(EEPROM, 0x90, 1))], [0xff], 'the write after the failure did not happen');
    const [cur] = await i2c.transferAll([{ addr: EEPROM, read: 1 }]);
    assert.equal([...cur!], [0xff], 'pointer after the check read (0x91): nothing else moved it');
  });

  withEeprom(test, 'a register write and a read in one transaction (repeated START) and a 4 KiB sequential read', async (b) => {
    const i2c = await open(b);
    const data = Uint8Array.from({ length: 8 }, (_, i) => 0xa0 + i);
    await i2c.writeRegisters(EEPROM, 0x00, data);
    const [, all] = await i2c.transferAll([{ addr: EEPROM, write: Uint8Array.of(0) }, { addr: EEPROM, read: 4096 }]);
    assert.is(all!.length, 4096);
    for (let k = 0; k < 4096; k += 256) assert.equal([...all!.subarray(k, k + 8)], [...data], `pass ${k / 256} over the 256 bytes`);
  });
});
