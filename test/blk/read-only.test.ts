// A read-only image: the device offers VIRTIO_BLK_F_RO, writes are IOERR and the file stays as it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_RO, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { blkSim } from './_blk';

test('write on a read-only disk is IOERR and the file is untouched; reads and flush still work', async () => {
  const b = await blkSim({ readOnly: true });
  const blk = await BlkDriver.open((await b.s.frontend()).find(2)!);
  assert.ok(blk.features & VIRTIO_BLK_F_RO, 'RO offered and negotiated');
  assert.not.ok(blk.features & VIRTIO_BLK_F_DISCARD, 'no DISCARD on a read-only disk');
  const [w, d, f] = await blk.run([
    { type: VIRTIO_BLK_T_OUT, sector: 0, data: new Uint8Array(512) },
    { type: VIRTIO_BLK_T_DISCARD, ranges: [{ sector: 0, numSectors: 8 }] },
    { type: VIRTIO_BLK_T_FLUSH },
  ]);
  assert.is(w!.status, VIRTIO_BLK_S_IOERR, 'write → IOERR');
  assert.is(d!.status, VIRTIO_BLK_S_UNSUPP, 'discard (not negotiated) → UNSUPP');
  assert.is(f!.status, VIRTIO_BLK_S_OK, 'flush → OK');
  assert.equal(await blk.read(0, 2), b.initial.subarray(0, 1024), 'reads return the image');
  assert.equal(b.image(), b.initial, 'file unchanged');
  b.done();
});

test.run();
