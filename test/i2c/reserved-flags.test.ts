// Reserved bits of `flags` must be zero (virtio §5.19.6.1): such a request fails with
// VIRTIO_I2C_MSG_ERR and is not sent to the bus; the device keeps serving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_I2C_MSG_ERR, VIRTIO_I2C_MSG_OK } from '../../firmware/virtio';
import { EEPROM, I2C_DEV, i2cSim, liveI2c, submitI2c, writeReq } from './_i2c';

test('a write with reserved flag bits fails with MSG_ERR and changes nothing', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const r = submitI2c(ring, writeReq(EEPROM, Uint8Array.of(0x00, 0x42), 1 << 5));
  assert.equal(r.used?.len, 1, 'completed with the status byte only');
  assert.is(r.at(2, 1)[0], VIRTIO_I2C_MSG_ERR);
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['reservedFlags'], 1);
  assert.equal(t.eeprom(), new Uint8Array(256).fill(0xff), 'not written');
  assert.not.ok(t.s.needsReset(I2C_DEV));
  assert.is(submitI2c(ring, writeReq(EEPROM, Uint8Array.of(0x00, 0x42))).at(2, 1)[0], VIRTIO_I2C_MSG_OK, 'a good request still works');
  t.done();
});

test.run();
