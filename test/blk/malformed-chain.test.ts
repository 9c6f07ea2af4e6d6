// A chain without the 16-byte header or without a writable status byte cannot be answered: the
// device is marked DEVICE_NEEDS_RESET (virtio §5.2.6, §2.1.2) and nothing is read or written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { BLK, blkSim, header, liveRawBlk, submitRaw } from './_blk';

test('a chain whose readable part is shorter than the header marks the device NEEDS_RESET', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_OUT, 0).subarray(0, 12) }, { len: 1 }]);
  assert.ok(b.s.needsReset(BLK), 'device NEEDS_RESET');
  assert.is(b.s.stats().devices[BLK]!.counters['violation.BLK_NO_HEADER'], 1, 'counted as BLK_NO_HEADER');
  assert.is(r.used, null, 'nothing completed');
  assert.equal(b.image(), b.initial, 'file unchanged');
  b.done();
});

test('a write chain without any writable byte marks the device NEEDS_RESET and writes nothing', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_OUT, 0) }, { bytes: new Uint8Array(512).fill(3) }]);
  assert.ok(b.s.needsReset(BLK), 'device NEEDS_RESET');
  assert.is(b.s.stats().devices[BLK]!.counters['violation.BLK_NO_STATUS'], 1, 'counted as BLK_NO_STATUS');
  assert.is(r.used, null, 'nothing completed');
  assert.equal(b.image(), b.initial, 'file unchanged');
  assert.not.ok(b.s.needsReset(0), 'the other devices are not affected');
  b.done();
});

test.run();
