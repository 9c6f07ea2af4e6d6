// Data segments that are adjacent in the window reach the storage as one call (fewer host calls per
// request), and the bytes are still exactly the image's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN } from '../../firmware/devices/blk';
import { blkSim, header, liveRawBlk, submitRaw } from './_blk';

test('four adjacent 512-byte IN segments are one storage read with the right bytes', async () => {
  const b = await blkSim();
  const ring = liveRawBlk(b.s);
  const reads0 = b.s.runtime.hostCalls['storageRead']!;
  const r = submitRaw(ring, [{ bytes: header(VIRTIO_BLK_T_IN, 3) }, { len: 512 }, { len: 512 }, { len: 512 }, { len: 512 }, { len: 1 }]);
  assert.equal(r.used, { id: 0, len: 2049 });
  assert.is(b.s.bytes[r.offs[5]!], VIRTIO_BLK_S_OK);
  assert.is(b.s.runtime.hostCalls['storageRead']! - reads0, 1, 'one storage call for the four adjacent segments');
  assert.equal(b.s.bytes.slice(r.offs[1]!, r.offs[1]! + 2048), b.initial.slice(3 * 512, 7 * 512), 'the bytes of sectors 3..6');
  b.done();
});

test.run();
