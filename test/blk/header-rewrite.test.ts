// The request header is read once into private memory (DESIGN §6.2, no double fetch): a frontend that
// rewrites the header while the backend is working on the request does not change what the backend
// does. Runs the device on the TS sources with a storage fake that rewrites the header mid-request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlkDevice, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import type { StorageService } from '../../firmware/services';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { SplitQueue } from '../../firmware/virtqueue/split';
import { GuestWindow } from '../../firmware/window/window';

const POOL = 0x1000;
const DESC = POOL;
const AVAIL = POOL + 0x400;
const USED = POOL + 0x1000;
const HDR = POOL + 0x2000;
const DATA = POOL + 0x3000;
const STATUS = POOL + 0x5000;

test('rewriting type and sector after the backend read the header changes nothing', async () => {
  const buf = new ArrayBuffer(1 << 20);
  const v = new DataView(buf);
  const win = new GuestWindow(buf, POOL);
  const calls: string[] = [];
  const storage: StorageService = {
    sizeBytes: 1 << 20,
    readOnly: false,
    queueDepth: 0, // synchronous: the header rewrite strikes inside read()
    blockSize: 512,
    handle: 0,
    submit: () => -38,
    complete: () => 0,
    cancel: () => -38,
    read(fileOffset, _w, len) {
      calls.push(`read ${fileOffset} +${len}`);
      // The hostile frontend strikes between the backend's header read and the data transfer.
      v.setUint32(HDR, VIRTIO_BLK_T_OUT, true);
      v.setUint32(HDR + 8, 1000, true);
      return 0;
    },
    write(fileOffset, _w, len) {
      calls.push(`write ${fileOffset} +${len}`);
      return 0;
    },
    flush: () => 0,
    discard: () => 0,
    writeZeroes: () => 0,
  };
  const dev = new BlkDevice({ storage, log: () => {} });
  const q = new SplitQueue(win, 0, 8, DESC, AVAIL, USED, false, false, () => {});
  dev.acceptFeatures(0n);
  dev.activate({ features: 0n, queue: (i) => (i === 0 ? q : null), configChanged: () => {}, kick: () => {} });
  const d = (i: number, addr: number, len: number, flags: number, next = 0) => {
    v.setUint32(DESC + 16 * i, addr, true);
    v.setUint32(DESC + 16 * i + 8, len, true);
    v.setUint16(DESC + 16 * i + 12, flags, true);
    v.setUint16(DESC + 16 * i + 14, next, true);
  };
  v.setUint32(HDR, VIRTIO_BLK_T_IN, true);
  v.setUint32(HDR + 8, 4, true);
  d(0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
  d(1, DATA, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
  // Not adjacent to the first segment, so the device makes two storage calls and the rewrite lands
  // between them (adjacent segments are merged into one call).
  d(2, DATA + 1024, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
  d(3, STATUS, 1, VIRTQ_DESC_F_WRITE);
  v.setUint16(AVAIL + 4, 0, true);
  v.setUint16(AVAIL + 2, 1, true);
  dev.processQueue(0, 8);
  assert.equal(calls, ['read 2048 +512', 'read 2560 +512'], 'both data segments read from the sector first seen, nothing written');
  assert.is(v.getUint8(STATUS), VIRTIO_BLK_S_OK, 'status OK');
  assert.is(v.getUint32(USED + 8, true), 1025, 'used length of the read it was');
});

test.run();
