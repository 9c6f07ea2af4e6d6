// A request with no device-writable byte has nowhere for in_hdr's status: DEVICE_NEEDS_RESET
// (virtio §5.19.6), and the write it carries is not performed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { I2C_DEV, i2cSim, liveI2c, outHdr, submitI2c } from './_i2c';

test('a write request without the status byte marks the device NEEDS_RESET and writes nothing', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const r = submitI2c(ring, [{ bytes: outHdr(0x50) }, { bytes: Uint8Array.of(0x00, 1, 2, 3) }]);
  assert.ok(t.s.needsReset(I2C_DEV), 'i2c NEEDS_RESET');
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['violation.I2C_NO_STATUS'], 1, 'counted as I2C_NO_STATUS');
  assert.is(r.used, null);
  assert.equal(t.eeprom(), new Uint8Array(256).fill(0xff), 'EEPROM still erased');
  t.done();
});

test.run();
