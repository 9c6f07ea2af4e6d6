// A request past the capacity, or whose sector*512 overflows, fails with IOERR and moves nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { blkSim, header, liveRawBlk, submitRaw } from './_blk';

test('a read that runs past the capacity is IOERR and writes no data byte (virtio §5.2.6)', async () => {
  const b = await blkSim({ sizeBytes: 64 * 512 });
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_IN, 63) }, { len: 1024, fill: 0xaa }, { len: 1 }]);
  assert.ok(r.used, 'the request completes');
  assert.is(r.at(2, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR');
  assert.ok(r.at(1, 1024).every((x) => x === 0xaa), 'the data buffer is untouched');
  assert.is(r.used!.len, 1, 'used length counts only the status byte');
  b.done();
});

test('a write that runs past the capacity is IOERR and leaves the file untouched', async () => {
  const b = await blkSim({ sizeBytes: 64 * 512 });
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_OUT, 63) }, { bytes: new Uint8Array(1024).fill(1) }, { len: 1 }]);
  assert.is(r.at(2, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR');
  assert.equal(b.image(), b.initial, 'file unchanged: not even the in-range first sector was written');
  // The same with the data in two descriptors: the first alone would be in range.
  const r2 = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_OUT, 63) }, { bytes: new Uint8Array(512).fill(1) }, { bytes: new Uint8Array(512).fill(2) }, { len: 1 }]);
  assert.is(r2.at(3, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR (split data)');
  assert.equal(b.image(), b.initial, 'file unchanged: the in-range first descriptor was not written');
  b.done();
});

test('a sector whose byte offset overflows 64 bits (sector*512) is IOERR, nothing written', async () => {
  const b = await blkSim({ sizeBytes: 64 * 512 });
  const ring = liveRawBlk(b.s);
  // 2^55 + 1: sector * 512 wraps to 512 in u64 arithmetic.
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_OUT, 1, 0x0080_0000) }, { bytes: new Uint8Array(512).fill(1) }, { len: 1 }]);
  assert.is(r.at(2, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR');
  assert.equal(b.image(), b.initial, 'file unchanged');
  const r2 = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_IN, 0xffff_ffff, 0xffff_ffff) }, { len: 512, fill: 0xaa }, { len: 1 }]);
  assert.is(r2.at(2, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR for the largest sector number');
  assert.ok(r2.at(1, 512).every((x) => x === 0xaa), 'nothing read');
  assert.not.ok(b.s.needsReset(2), 'a bad sector is a request error, not a device fault');
  b.done();
});

test.run();
