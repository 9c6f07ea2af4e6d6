// A request whose device-readable part is shorter than struct virtio_i2c_out_hdr cannot be parsed:
// the device goes DEVICE_NEEDS_RESET (virtio §5.19.6, §2.1.2); nothing reaches the bus, other devices serve on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RngDriver } from '../../frontend/drivers/rng';
import { I2C_DEV, i2cSim, liveI2c, outHdr, submitI2c } from './_i2c';

test('a 4-byte out_hdr marks the i2c device NEEDS_RESET; the EEPROM is untouched and rng still serves', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const before = t.eeprom();
  const r = submitI2c(ring, [{ bytes: outHdr(0x50).subarray(0, 4) }, { len: 1 }]);
  assert.ok(t.s.needsReset(I2C_DEV), 'i2c NEEDS_RESET');
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['violation.I2C_NO_HEADER'], 1, 'counted as I2C_NO_HEADER');
  assert.is(r.used, null, 'nothing completed');
  assert.equal(t.eeprom(), before, 'EEPROM file unchanged');
  const rng = await RngDriver.open((await t.s.frontend()).find(4)!);
  assert.is((await rng.read(16)).length, 16, 'rng (device 0) still serves');
  t.done();
});

test.run();
