// addr carries a 7-bit address in bits 7:1 (virtio §5.19.6). The board's targets are 7-bit: a 10-bit
// address is not acknowledged, and an address with bit 0 or high bits set is malformed; both fail with
// VIRTIO_I2C_MSG_ERR, never reaching a target at the truncated address.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_I2C_MSG_ERR } from '../../firmware/virtio';
import { EEPROM, I2C_DEV, i2cSim, liveI2c, outHdr, submitI2c } from './_i2c';

test('a 10-bit address and malformed 7-bit encodings fail; the EEPROM at 0x50 is not written', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  const data = { bytes: Uint8Array.of(0, 0x11) };
  const tenBit = (a: number) => ((a & 0xff) << 8) | 0xf0 | ((a >> 7) & 6); // A7..A0 in 15:8, 11110 A9 A8 0
  for (const raw of [tenBit(EEPROM), (EEPROM << 1) | 1, 0x100 | (EEPROM << 1)]) {
    const r = submitI2c(ring, [{ bytes: outHdr(0, 0, raw) }, data, { len: 1 }]);
    assert.is(r.at(2, 1)[0], VIRTIO_I2C_MSG_ERR, `addr 0x${raw.toString(16)}`);
  }
  const c = t.s.stats().devices[I2C_DEV]!.counters;
  assert.equal([c['nack'], c['badAddress']], [1, 2], 'one 10-bit NACK, two malformed');
  assert.equal(t.eeprom(), new Uint8Array(256).fill(0xff));
  t.done();
});

test.run();
