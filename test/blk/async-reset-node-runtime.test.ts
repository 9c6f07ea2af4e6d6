// The node runtime's asynchronous storage (node's fs on libuv's thread pool) under a device reset with
// reads and writes in flight, through the simulator and the real bundle: the reset cancels them
// (storageCancel), and when their completions arrive later nothing is written into the window the driver
// has reused — no status byte, no used entry, no read data — each is counted cancelled once, and the
// device serves the next request on the same memory normally (docs/blk.md, "Asynchronous storage").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SECTOR_SIZE, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { Sim } from '../../frontend/sim';
import { setStatus } from '../helpers';
import { BLK, blkSim, header, liveRawBlk } from './_blk';

const DATA = 4096;
const SENTINEL = 0x5a;

/** Offers chain `n` (descriptors 3n..3n+2: header, 4 KiB, status) of a request in its own slot of the ring's data area. */
function offer(ring: ReturnType<typeof liveRawBlk>, n: number, type: number, sector: number, fill: number) {
  const bytes = ring.s.bytes;
  const base = ring.data + n * (DATA + 64);
  const hdr = base;
  const data = base + 16;
  const status = base + 16 + DATA;
  bytes.set(header(type, sector), hdr);
  bytes.fill(fill, data, data + DATA);
  bytes[status] = 0xee;
  ring.setDesc(3 * n, hdr, 16, VIRTQ_DESC_F_NEXT, 3 * n + 1);
  ring.setDesc(3 * n + 1, data, DATA, (type === VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0) | VIRTQ_DESC_F_NEXT, 3 * n + 2);
  ring.setDesc(3 * n + 2, status, 1, VIRTQ_DESC_F_WRITE);
  ring.offer(3 * n);
  return { head: 3 * n, data, status };
}

/** Lets every outstanding storage completion arrive and the firmware take it (onService). */
async function drain(s: Sim) {
  for (let i = 0; s.runtime.storageInFlight() > 0; i++) {
    if (i > 200) throw new Error(`storage requests still in flight after 200 waits: ${s.runtime.storageInFlight()}`);
    await s.runtime.storageSettled(100);
  }
  s.runServices();
}

test('node runtime: a device reset with async reads and writes in flight writes nothing late into the reused ring', async () => {
  const t = await blkSim({ io: 'async', sizeBytes: 1 << 20 });
  try {
    const { s } = t;
    let ring = liveRawBlk(s, undefined, 16);
    const reqs = [
      offer(ring, 0, VIRTIO_BLK_T_IN, 0, 0),
      offer(ring, 1, VIRTIO_BLK_T_OUT, 64, 0xc3),
      offer(ring, 2, VIRTIO_BLK_T_IN, 128, 0),
      offer(ring, 3, VIRTIO_BLK_T_IN, 512, 0),
    ];
    ring.notify(BLK, 0);
    // Nothing awaited since the notify: node's fs callbacks cannot have run, so all four are in the storage.
    assert.is(s.runtime.storageInFlight(), reqs.length, 'premise: every request is in flight in the storage when the reset comes');
    assert.is(ring.usedIdx(), 0, 'premise: nothing completed yet');

    assert.is(setStatus(s, BLK, 0), 0, 'the driver resets the device');
    // The orphans keep their records until their completions come (then counted cancelled, below).
    assert.is(s.stats().devices[BLK]!.counters['inFlight'], reqs.length, 'the orphans are still in the storage after the reset');

    // The driver reuses the memory: a fresh ring over the same area, its own bytes in every buffer.
    ring = liveRawBlk(s, undefined, 16);
    for (const r of reqs) {
      s.bytes.fill(SENTINEL, r.data, r.data + DATA);
      s.bytes[r.status] = SENTINEL;
    }
    await drain(s);
    for (const [i, r] of reqs.entries()) {
      assert.is(s.bytes[r.status], SENTINEL, `request ${i}: its late completion wrote no status byte`);
      // (the firmware cannot hold back a read's copy: only storageCancel reaching the runtime does)
      assert.ok(s.bytes.subarray(r.data, r.data + DATA).every((b) => b === SENTINEL), `request ${i}: its late completion wrote no data into the window`);
    }
    assert.is(ring.usedIdx(), 0, 'no used entry was written into the new ring');
    const after = s.stats().devices[BLK]!.counters;
    assert.is(after['cancelled'], reqs.length, 'each orphan counted once');
    assert.is(after['inFlight'], 0, 'every record freed: no completion lost');

    // The device works on the same memory: a read of what the image holds at sector 8.
    const fresh = offer(ring, 0, VIRTIO_BLK_T_IN, 8, 0);
    ring.notify(BLK, 0);
    await drain(s);
    assert.is(ring.usedIdx(), 1, 'the new request completes');
    assert.equal(ring.usedElem(0), { id: fresh.head, len: DATA + 1 }, 'with its own head and length');
    assert.is(s.bytes[fresh.status], VIRTIO_BLK_S_OK, 'with OK');
    const want = t.initial.subarray(8 * SECTOR_SIZE, 8 * SECTOR_SIZE + DATA);
    assert.ok(Buffer.from(s.bytes.subarray(fresh.data, fresh.data + DATA)).equals(Buffer.from(want)), 'and the image bytes');
  } finally {
    t.done();
  }
});

test.run();
