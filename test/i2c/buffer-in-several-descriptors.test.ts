// A device must not assume message framing (virtio §2.6.4): a write whose header and data are spread
// over several descriptors, and a read into a buffer of several descriptors, move the same bytes as
// one-descriptor requests (the bus gets one message per request, in window ranges).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_I2C_FLAGS_M_RD, VIRTIO_I2C_MSG_OK } from '../../firmware/virtio';
import { EEPROM, i2cSim, liveI2c, outHdr, submitI2c } from './_i2c';

test('a write split 3 + 2 + 4 bytes over descriptors and a read into 3 + 5 bytes round-trip', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const hdr = outHdr(EEPROM);
  // header and the first data bytes in one descriptor, the rest in two more
  const w = submitI2c(ring, [{ bytes: Uint8Array.of(...hdr, 0x30, 1, 2) }, { bytes: Uint8Array.of(3, 4) }, { bytes: Uint8Array.of(5, 6, 7, 8) }, { len: 1 }]);
  assert.is(w.at(3, 1)[0], VIRTIO_I2C_MSG_OK);
  assert.equal([...t.eeprom().subarray(0x30, 0x38)], [1, 2, 3, 4, 5, 6, 7, 8], 'one 8-byte page write');
  submitI2c(ring, [{ bytes: Uint8Array.of(...outHdr(EEPROM), 0x30) }, { len: 1 }]); // pointer to 0x30
  const r = submitI2c(ring, [{ bytes: outHdr(EEPROM, VIRTIO_I2C_FLAGS_M_RD) }, { len: 3 }, { len: 5 }, { len: 1 }]);
  assert.is(r.at(3, 1)[0], VIRTIO_I2C_MSG_OK);
  assert.is(r.used?.len, 9);
  assert.equal([...r.at(1, 3), ...r.at(2, 5)], [1, 2, 3, 4, 5, 6, 7, 8]);
  t.done();
});

test.run();
