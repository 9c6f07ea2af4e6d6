// Requests linked by FAIL_NEXT are one transaction (virtio §5.19.6): the device holds them until the
// last one is available and completes them together, in order; a transaction the ring cannot finish
// (every slot holds a FAIL_NEXT request) fails whole; a reset drops what is held.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_I2C_FLAGS_FAIL_NEXT, VIRTIO_I2C_MSG_ERR, VIRTIO_I2C_MSG_OK } from '../../firmware/virtio';
import { offerChains, setStatus } from '../helpers';
import { EEPROM, I2C_DEV, i2cSim, liveI2c, outHdr, readReq, submitI2c, writeReq } from './_i2c';

test('a transaction is held until its last request arrives, then completes in order', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  submitI2c(ring, writeReq(EEPROM, Uint8Array.of(0x00, 0x77)));
  const first = offerChains(ring, [writeReq(EEPROM, Uint8Array.of(0x00), VIRTIO_I2C_FLAGS_FAIL_NEXT)], { desc: 4, at: ring.data + 0x1000 });
  ring.notify(I2C_DEV, 0);
  const used0 = ring.usedIdx();
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['held'], 1, 'held, waiting for the rest');
  const second = offerChains(ring, [readReq(EEPROM, 1)], { desc: 8, at: ring.data + 0x2000 });
  ring.notify(I2C_DEV, 0);
  assert.is(ring.usedIdx(), (used0 + 2) & 0xffff, 'both completed');
  assert.equal([ring.usedElem(used0).id, ring.usedElem(used0 + 1).id], [first[0]!.head, second[0]!.head], 'in order');
  assert.is(t.s.bytes[second[0]!.offs[1]!], 0x77, 'the read after the pointer write (repeated START)');
  t.done();
});

test('a transaction as long as half the ring (the most a direct ring can hold) fails whole; the device serves on', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s, 8);
  // four requests of two descriptors each (out_hdr and data in one, the status): the ring is full
  const chains = Array.from({ length: 4 }, (_, i) => [{ bytes: Uint8Array.of(...outHdr(EEPROM, VIRTIO_I2C_FLAGS_FAIL_NEXT), i * 8, 0x11) }, { len: 1 }]);
  const laid = offerChains(ring, chains);
  ring.notify(I2C_DEV, 0);
  assert.is(ring.usedIdx(), 4, 'all four completed');
  for (const c of laid) assert.is(t.s.bytes[c.offs[1]!], VIRTIO_I2C_MSG_ERR);
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['groupTooLong'], 1);
  assert.equal(t.eeprom(), new Uint8Array(256).fill(0xff), 'nothing written');
  assert.not.ok(t.s.needsReset(I2C_DEV));
  assert.is(submitI2c(ring, writeReq(EEPROM, Uint8Array.of(0x00, 0x22))).at(2, 1)[0], VIRTIO_I2C_MSG_OK, 'the next transaction works');
  t.done();
});

test('a reset while a transaction is held drops it; after re-initialisation the device serves', async () => {
  const t = await i2cSim();
  const ring = liveI2c(t.s);
  offerChains(ring, [writeReq(EEPROM, Uint8Array.of(0x00, 0x55), VIRTIO_I2C_FLAGS_FAIL_NEXT)], { desc: 4, at: ring.data + 0x1000 });
  ring.notify(I2C_DEV, 0);
  setStatus(t.s, I2C_DEV, 0);
  assert.is(t.s.stats().devices[I2C_DEV]!.counters['held'], 0, 'dropped');
  const again = liveI2c(t.s);
  assert.is(submitI2c(again, writeReq(EEPROM, Uint8Array.of(0x00, 0x66))).at(2, 1)[0], VIRTIO_I2C_MSG_OK);
  assert.is(t.eeprom()[0], 0x66, 'the held write never happened, the new one did');
  t.done();
});

test.run();
