// The device does not assume a message framing (virtio §2.7.4): header, data and status may share or
// split descriptors; the status byte is the last writable byte and the used length is exact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { blkSim, header, liveRawBlk, submitRaw } from './_blk';

test('header and data in one descriptor, data and status in one descriptor', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const payload = new Uint8Array(1024).map((_, i) => (i * 13) & 0xff);
  const hdrAndData = new Uint8Array(16 + 1024);
  hdrAndData.set(header(VIRTIO_BLK_T_OUT, 4));
  hdrAndData.set(payload, 16);
  const w = submitRaw(ring, [{ bytes: hdrAndData.subarray(0, 100) }, { bytes: hdrAndData.subarray(100) }, { len: 1 }]);
  assert.is(w.at(2, 1)[0], VIRTIO_BLK_S_OK, 'write OK');
  assert.is(w.used!.len, 1, 'write used length 1');
  assert.equal(b.image().subarray(2048, 3072), payload, 'file holds the data');
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_IN, 4) }, { len: 300 }, { len: 1024 + 1 - 300 }]);
  const got = new Uint8Array(1025);
  got.set(r.at(1, 300));
  got.set(r.at(2, 725), 300);
  assert.equal(got.subarray(0, 1024), payload, 'read returns the data across the split');
  assert.is(got[1024], VIRTIO_BLK_S_OK, 'status is the last writable byte');
  assert.is(r.used!.len, 1025, 'read used length: data + status');
  b.done();
});

test.run();
