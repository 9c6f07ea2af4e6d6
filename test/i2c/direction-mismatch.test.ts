// A read's buffer is device-writable and a write's device-readable (virtio §5.19.6.1, M_RD): a request
// whose buffers contradict its flag fails with VIRTIO_I2C_MSG_ERR, and its buffer is left alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_I2C_FLAGS_M_RD, VIRTIO_I2C_MSG_ERR } from '../../firmware/virtio';
import { EEPROM, I2C_DEV, i2cSim, liveI2c, outHdr, submitI2c } from './_i2c';

test('M_RD with a device-readable buffer, and a write with a device-writable buffer, both fail cleanly', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const a = submitI2c(ring, [{ bytes: outHdr(EEPROM, VIRTIO_I2C_FLAGS_M_RD) }, { bytes: Uint8Array.of(0, 7) }, { len: 1 }]);
  assert.is(a.at(2, 1)[0], VIRTIO_I2C_MSG_ERR, 'read flag over a readable buffer');
  const b = submitI2c(ring, [{ bytes: outHdr(EEPROM) }, { bytes: Uint8Array.of(0) }, { len: 4, fill: 0xaa }, { len: 1 }]);
  assert.is(b.at(3, 1)[0], VIRTIO_I2C_MSG_ERR, 'write with a writable buffer besides the status');
  assert.equal([...b.at(2, 4)], [0xaa, 0xaa, 0xaa, 0xaa], 'that buffer was not written');
  assert.equal([a.used?.len, b.used?.len], [1, 1]);
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['directionMismatch'], 2);
  assert.not.ok(t.s.needsReset(I2C_DEV));
  assert.equal(t.eeprom(), new Uint8Array(256).fill(0xff));
  t.done();
});

test.run();
