// GET_ID writes at most 20 bytes, and never more than the driver made writable (virtio §5.2.6).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_GET_ID } from '../../firmware/devices/blk';
import { blkSim, header, liveRawBlk, submitRaw } from './_blk';

test('GET_ID with 8 writable bytes before the status writes exactly those 8', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const r2 = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_GET_ID) }, { len: 8, fill: 0xaa }, { len: 1 }]);
  assert.is(r2.at(2, 1)[0], VIRTIO_BLK_S_OK, 'status OK');
  assert.equal(new TextDecoder().decode(r2.at(1, 8)), 'bulkhead', 'first 8 bytes of the id');
  assert.is(r2.used!.len, 9, 'used length: 8 id bytes + status');
  const after = b.s.bytes.slice(r2.offs[2]! + 1, r2.offs[2]! + 16);
  assert.ok(after.every((x) => x === 0), 'nothing written after the status byte');
  b.done();
});

test('GET_ID with a 64-byte buffer writes 20 bytes, NUL-padded', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_GET_ID) }, { len: 64, fill: 0xaa }, { len: 1 }]);
  const id = r.at(1, 64);
  assert.equal([...id.subarray(0, 20)], [...new TextEncoder().encode('bulkhead'), ...new Array(12).fill(0)], '20 bytes of id');
  assert.ok(id.subarray(20).every((x) => x === 0xaa), 'bytes 20..63 untouched');
  assert.is(r.used!.len, 21, 'used length 20 + status');
  b.done();
});

test.run();
