// Data whose length is not a multiple of 512 is IOERR (virtio §5.2.6.1), and moves nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { blkSim, header, liveRawBlk, submitRaw } from './_blk';

test('a write of 700 bytes is IOERR and the file is untouched', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_OUT, 2) }, { bytes: new Uint8Array(700).fill(9) }, { len: 1 }]);
  assert.is(r.at(2, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR');
  assert.equal(b.image(), b.initial, 'file unchanged');
  b.done();
});

test('a read into 513 bytes is IOERR and fills nothing', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_IN, 2) }, { len: 513, fill: 0xaa }, { len: 1 }]);
  assert.is(r.at(2, 1)[0], VIRTIO_BLK_S_IOERR, 'status IOERR');
  assert.ok(r.at(1, 513).every((x) => x === 0xaa), 'data buffer untouched');
  b.done();
});

test.run();
