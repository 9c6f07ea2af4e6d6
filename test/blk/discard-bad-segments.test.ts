// DISCARD / WRITE_ZEROES: unknown flags or UNMAP on a discard → UNSUPP; too many segments, a segment
// too large or out of range → IOERR; in every case no segment of the request is executed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLK_MAX_DISCARD_SECTORS, BLK_MAX_DISCARD_SEG, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES } from '../../firmware/devices/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { blkSim } from './_blk';

test('bad discard and write-zeroes requests fail without zeroing anything', async () => {
  const b = await blkSim({ sizeBytes: 4096 * 512 });
  const blk = await BlkDriver.open((await b.s.frontend()).find(2)!);
  const ok = { sector: 0, numSectors: 8 };
  const res = await blk.run([
    { type: VIRTIO_BLK_T_DISCARD, ranges: [ok, { sector: 16, numSectors: 8, flags: 4 }] },
    { type: VIRTIO_BLK_T_WRITE_ZEROES, ranges: [ok, { sector: 16, numSectors: 8, flags: 0x8000_0000 }] },
    { type: VIRTIO_BLK_T_DISCARD, ranges: [ok, { sector: 16, numSectors: 8, flags: 1 }] },
    { type: VIRTIO_BLK_T_DISCARD, ranges: Array.from({ length: BLK_MAX_DISCARD_SEG + 1 }, (_, i) => ({ sector: i * 8, numSectors: 8 })) },
    { type: VIRTIO_BLK_T_WRITE_ZEROES, ranges: [ok, { sector: 4090, numSectors: 8 }] },
    { type: VIRTIO_BLK_T_DISCARD, ranges: [ok, { sector: 0, numSectors: BLK_MAX_DISCARD_SECTORS + 1 }] },
    { type: VIRTIO_BLK_T_DISCARD, data: new Uint8Array(24) },
    { type: VIRTIO_BLK_T_DISCARD },
  ]);
  assert.equal(
    res.map((r) => r.status),
    [VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR],
    'unknown flag, unknown flag, UNMAP on discard → UNSUPP; too many segments, out of range, too large, ragged payload, no payload → IOERR',
  );
  assert.equal(b.image(), b.initial, 'not even the valid first segment was executed');
  b.done();
});

test.run();
