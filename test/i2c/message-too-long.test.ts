// One message moves at most I2C_MAX_MESSAGE_BYTES (8192, Linux i2c-dev's own limit): a longer read
// fails with VIRTIO_I2C_MSG_ERR without touching its buffer; 8192 bytes are served.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_I2C_MSG_ERR, VIRTIO_I2C_MSG_OK } from '../../firmware/virtio';
import { EEPROM, I2C_DEV, i2cSim, liveI2c, readReq, submitI2c } from './_i2c';

test('an 8193-byte read fails with MSG_ERR, buffer untouched; an 8192-byte read succeeds', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const big = submitI2c(ring, readReq(EEPROM, 8193));
  assert.is(big.at(2, 1)[0], VIRTIO_I2C_MSG_ERR);
  assert.is(big.used?.len, 1);
  assert.ok(big.at(1, 8193).every((x) => x === 0xaa), 'read buffer not written');
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['tooLong'], 1);
  const ok = submitI2c(ring, readReq(EEPROM, 8192));
  assert.is(ok.at(2, 1)[0], VIRTIO_I2C_MSG_OK);
  assert.is(ok.used?.len, 8193, 'data and status');
  assert.ok(ok.at(1, 8192).every((x) => x === 0xff), 'an erased EEPROM read 32 times round');
  t.done();
});

test.run();
