/**
 * A backend that boots on a window its previous instance left mid-I/O (rings with available entries
 * it never consumed, an unread EVENT_AVAIL in the driver→device FIFO, a device the driver believes is
 * DRIVER_OK) acts on none of it until the driver resets and re-initialises the device
 * (docs/security.md, "A restarted backend"): the pool and the disk stay as they were, stale messages
 * are not replayed, and the device serves again only through rings negotiated in this boot.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SECTOR_SIZE, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import * as P from '../../firmware/transport/protocol';
import { BACKEND_READY, FIFO_HEAD, FIFO_SLOTS, H } from '../../firmware/window/layout';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK } from '../../firmware/virtio';
import type { Ring } from '../../frontend/fuzz/raw';
import { RawDriver } from '../../frontend/fuzz/raw';
import { FrontendBus } from '../../frontend/bus';
import { createSim } from '../../frontend/sim';
import type { Sim } from '../../frontend/sim';
import { BLK, blkBoard, blkImage } from '../blk/_blk';

const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);

/** One write request of `sector` filled with `fill`, header/data/status at `at` in the window; returns its head. */
function postWrite(s: Sim, q: Ring, at: number, sector: number, fill: number): number {
  const v = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
  v.setUint32(at, VIRTIO_BLK_T_OUT, true);
  v.setUint32(at + 4, 0, true);
  v.setBigUint64(at + 8, BigInt(sector), true);
  s.bytes.fill(fill, at + 16, at + 16 + SECTOR_SIZE);
  s.bytes[at + 16 + SECTOR_SIZE] = 0xee;
  return q.chain([{ off: at, len: 16 }, { off: at + 16, len: SECTOR_SIZE }, { off: at + 16 + SECTOR_SIZE, len: 1, write: true }]);
}

test('a backend booted on a window left mid-I/O touches nothing until the driver re-initialises the device', async () => {
  const img = blkImage({ sizeBytes: 64 * SECTOR_SIZE });
  const board = blkBoard(img.path);
  try {
    // The previous instance: blk live, one write done, three more made available but never consumed,
    // an EVENT_AVAIL for them unread in the driver→device FIFO.
    const a = await createSim(board);
    const ringAt = a.layout.poolOffset + 0x10000;
    const drvA = new RawDriver(a);
    const [qa] = drvA.live(BLK, [{ size: 16, at: ringAt }]);
    postWrite(a, qa!, qa!.data, 0, 0x11);
    qa!.notify();
    assert.equal(qa!.reap().length, 1, 'the first write completed');
    assert.is(a.bytes[qa!.data + 16 + SECTOR_SIZE], VIRTIO_BLK_S_OK);
    for (let i = 1; i <= 3; i++) postWrite(a, qa!, qa!.data + 0x1000 * i, 8 * i, 0x20 + i);
    drvA.notify(BLK, 0, false);
    const oldHead = u32(a.bytes, a.layout.fifoD2V.offset + FIFO_HEAD);
    const snapshot = a.bytes.slice();
    const diskAtKill = img.image();
    a.dispose(); // killed: the window outlives it

    const b = await createSim({ ...board, window: snapshot });
    try {
      const pool = (x: Uint8Array) => x.subarray(b.layout.poolOffset);
      assert.is(u32(b.bytes, H.backendState), BACKEND_READY);
      assert.is(u32(b.bytes, H.backendGeneration), u32(snapshot, H.backendGeneration) + 1, 'the restart is visible as a new generation');
      for (const f of [b.layout.fifoD2V, b.layout.fifoV2D]) {
        assert.ok(b.bytes.subarray(f.offset, f.offset + FIFO_SLOTS + f.slots * b.layout.slotSize).every((x) => x === 0),
          `FIFO at 0x${f.offset.toString(16)} not scrubbed: indexes and slots must be zero after boot`);
      }
      const st = b.stats().devices[BLK]!;
      assert.is(st.status, 0, 'the device must boot reset, whatever the previous instance had negotiated');
      assert.ok(st.queues.every((q) => !q.enabled && !q.live), 'no queue may be set up at boot');

      // Doorbells, and a frontend that has not seen the restart yet producing on from its old head: the
      // zeroed slots before it are dropped (msg_size 0), its EVENT_AVAIL finds no live queue, its
      // DRIVER_OK without negotiation is refused.
      b.kick();
      b.step();
      const slot = (n: number) => b.layout.fifoD2V.offset + FIFO_SLOTS + (n % b.layout.fifoD2V.slots) * b.layout.slotSize;
      const v = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
      b.bytes.set(FrontendBus.encode(0, P.VIRTIO_MSG_EVENT_AVAIL, BLK, 0, new Uint8Array(8)), slot(oldHead));
      b.bytes.set(FrontendBus.encode(0, P.VIRTIO_MSG_SET_DEVICE_STATUS, BLK, 7, new Uint8Array([ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK, 0, 0, 0])), slot(oldHead + 1));
      v.setUint32(b.layout.fifoD2V.offset + FIFO_HEAD, oldHead + 2, true);
      b.kick();
      assert.ok(Buffer.from(img.image()).equals(Buffer.from(diskAtKill)), 'the disk was written from stale rings');
      assert.ok(Buffer.from(pool(b.bytes)).equals(Buffer.from(pool(snapshot))), 'the pool (rings, buffers) was written before the driver re-initialised');
      assert.is(b.deviceStatus(BLK) & DRIVER_OK, 0, 'DRIVER_OK without this boot\'s negotiation must be refused');
      const bus = b.stats().bus;
      assert.ok((bus['dropped.BAD_SIZE'] ?? 0) >= oldHead, `the ${oldHead} scrubbed slots must be dropped as empty, not replayed (${JSON.stringify(bus)})`);

      // The driver resets and re-initialises (fresh rings at the same place): only its new request runs.
      const drvB = new RawDriver(b);
      b.receive();
      const [qb] = drvB.live(BLK, [{ size: 16, at: ringAt }]);
      postWrite(b, qb!, qb!.data, 40, 0x5a);
      qb!.notify();
      assert.equal(qb!.reap().length, 1, 'the request of the new rings completed');
      assert.is(b.bytes[qb!.data + 16 + SECTOR_SIZE], VIRTIO_BLK_S_OK);
      const disk = img.image();
      assert.ok(disk.subarray(40 * SECTOR_SIZE, 41 * SECTOR_SIZE).every((x) => x === 0x5a), 'the new write is on the disk');
      for (let i = 1; i <= 3; i++) {
        assert.ok(Buffer.from(disk.subarray(8 * i * SECTOR_SIZE, (8 * i + 1) * SECTOR_SIZE)).equals(Buffer.from(diskAtKill.subarray(8 * i * SECTOR_SIZE, (8 * i + 1) * SECTOR_SIZE))),
          `stale write ${i} (made available to the previous instance) reached the disk`);
      }
    } finally {
      b.dispose();
    }
  } finally {
    img.remove();
  }
});

test.run();
