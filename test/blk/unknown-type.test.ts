// Request types the device does not implement complete with UNSUPP (virtio §5.2.6.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE } from '../../firmware/devices/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { blkSim } from './_blk';

test('unknown type, GET_LIFETIME and SECURE_ERASE → UNSUPP; file untouched, device keeps serving', async () => {
  const b = await blkSim();
  const blk = await BlkDriver.open((await b.s.frontend()).find(2)!);
  const res = await blk.run([
    { type: 99, sector: 0, data: new Uint8Array(512) },
    { type: VIRTIO_BLK_T_GET_LIFETIME, len: 16 },
    { type: VIRTIO_BLK_T_SECURE_ERASE, ranges: [{ sector: 0, numSectors: 8 }] },
    { type: 0xffff_ffff },
  ]);
  assert.equal(res.map((r) => r.status), [VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP], 'all UNSUPP');
  assert.equal(res.map((r) => r.usedLen), [1, 1, 1, 1], 'used length is the status byte only');
  assert.equal(b.image(), b.initial, 'file unchanged');
  assert.equal(await blk.read(0, 1), b.initial.subarray(0, 512), 'device still serves reads');
  b.done();
});

test.run();
