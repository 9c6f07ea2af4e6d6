// Seeded randomized workload: mixed reads, writes, discards, write-zeroes and flushes spread over
// four request queues, many in flight at once, against a reference model of the disk. Every read
// must return exactly the reference bytes, and at the end the image file must equal the reference.
// Requests in flight together never overlap a write (a driver may not rely on the order of
// overlapping in-flight requests). Set BLK_SEED to replay another seed.
//
// Written once, run on every backend: test/blk/integrity.test.ts (simulator) and
// test/native/shared-blk-integrity.test.ts (native runtime, the image a real file served with pread/pwrite).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SECTOR_SIZE, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP } from '../../firmware/devices/blk';
import { VIRTIO_F_RING_PACKED, VIRTIO_ID_BLOCK } from '../../firmware/virtio';
import type { BlkRequest } from '../../frontend/drivers/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { blkBoard, blkImage, diskImageDir, pattern } from '../blk/_blk';
import { rng } from '../blk/_rand';
import type { BackendKind } from './backends';
import { withBackend } from './suite';

const SEED = Number(process.env['BLK_SEED'] ?? 0x5eed);
const SECTORS = 4096; // 2 MiB image
const BATCHES = 40;
const PER_BATCH = 24;

/**
 * Runs the workload on `kind` with the storage service synchronous or asynchronous (docs/hal.md), the
 * image in /dev/shm (`memory`) or in a folder on a disk (`disk`): the native runtime's asynchronous
 * service runs a memory-backed image's requests inline and a disk file's on io_uring (docs/native.md).
 */
export function register(kind: BackendKind, io: 'sync' | 'async' = 'sync', where: 'memory' | 'disk' = 'memory'): void {
  const name = `${kind.label}, ${io}${where === 'disk' ? ', disk image' : ''}`;
  const test = suite(`blk-integrity [${name}]`);
  test(`[${name} storage] random mixed workload over 4 queues matches the reference model (seed ${SEED})`, async () => {
    const ref = pattern(SECTORS * SECTOR_SIZE, 3);
    const disk = blkImage({ content: ref.slice(), ...(where === 'disk' ? { dir: diskImageDir() } : {}) });
    try {
      await withBackend(kind, blkBoard(disk.path, { queues: 4, io }), async (b) => {
        const r = rng(SEED);
        const blk = await BlkDriver.open((await b.frontend()).find(VIRTIO_ID_BLOCK)!, { queues: 4, queueDepth: 8, queueSize: 32 });
        assert.is(blk.queueCount, 4, 'four queues in use');
        assert.is((blk.features & VIRTIO_F_RING_PACKED) !== 0n, b.ring === 'packed', `the driver asked for ${b.ring} rings`);
        let reads = 0;
        for (let batch = 0; batch < BATCHES; batch++) {
          const reqs: BlkRequest[] = [];
          const spans: { lo: number; hi: number; write: boolean }[] = [];
          const conflicts = (lo: number, hi: number, write: boolean) => spans.some((s) => lo < s.hi && s.lo < hi && (write || s.write));
          for (let tries = 0; reqs.length < PER_BATCH && tries < PER_BATCH * 8; tries++) {
            const kind = r.int(0, 99);
            const count = r.int(1, 32);
            const sector = r.int(0, SECTORS - count);
            const queue = r.int(0, 3);
            if (kind < 10) {
              reqs.push({ type: VIRTIO_BLK_T_FLUSH, queue });
              continue;
            }
            const write = kind >= 50;
            if (conflicts(sector, sector + count, write)) continue;
            spans.push({ lo: sector, hi: sector + count, write });
            if (kind < 50) reqs.push({ type: VIRTIO_BLK_T_IN, sector, len: count * SECTOR_SIZE, queue });
            else if (kind < 85) reqs.push({ type: VIRTIO_BLK_T_OUT, sector, data: r.bytes(count * SECTOR_SIZE), queue });
            else if (kind < 92) reqs.push({ type: VIRTIO_BLK_T_DISCARD, ranges: [{ sector, numSectors: count }], queue });
            else reqs.push({ type: VIRTIO_BLK_T_WRITE_ZEROES, ranges: [{ sector, numSectors: count, flags: kind & 1 ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0 }], queue });
          }
          const res = await blk.run(reqs);
          res.forEach((x, i) => {
            const q = reqs[i]!;
            assert.is(x.status, VIRTIO_BLK_S_OK, `batch ${batch} request ${i} (type ${q.type}, sector ${q.sector}) status`);
            if (q.type === VIRTIO_BLK_T_IN) {
              const lo = q.sector! * SECTOR_SIZE;
              const want = ref.subarray(lo, lo + q.len!);
              if (!Buffer.from(x.data!).equals(Buffer.from(want))) {
                assert.unreachable(`batch ${batch} request ${i}: read of ${q.len! / 512} sectors at ${q.sector} differs from the reference`);
              }
              reads++;
            }
          });
          // Apply the batch to the reference (no two requests of a batch overlap a write).
          for (const q of reqs) {
            if (q.type === VIRTIO_BLK_T_OUT) ref.set(q.data!, q.sector! * SECTOR_SIZE);
            else if (q.type === VIRTIO_BLK_T_DISCARD || q.type === VIRTIO_BLK_T_WRITE_ZEROES) {
              const g = q.ranges![0]!;
              ref.fill(0, g.sector * SECTOR_SIZE, (g.sector + g.numSectors) * SECTOR_SIZE);
            }
          }
        }
        assert.ok(reads > BATCHES * 4, `enough reads were checked (${reads})`);
        const perQueue = blk.queues.map((q) => q.counters.used);
        assert.ok(perQueue.every((n) => n > 0), `every queue carried requests (${perQueue.join(', ')})`);
        const whole = await blk.run([{ type: VIRTIO_BLK_T_IN, sector: 0, len: 1 << 20 }, { type: VIRTIO_BLK_T_IN, sector: 2048, len: 1 << 20 }]);
        assert.ok(Buffer.from(whole[0]!.data!).equals(Buffer.from(ref.subarray(0, 1 << 20))), 'first MiB through the device equals the reference');
        assert.ok(Buffer.from(whole[1]!.data!).equals(Buffer.from(ref.subarray(1 << 20))), 'second MiB through the device equals the reference');
        assert.ok(Buffer.from(disk.image()).equals(Buffer.from(ref)), 'the image file equals the reference');
        const c = (await b.stats()).devices.find((d) => d.type === 'blk')!.counters;
        if (io === 'async') assert.ok(c['inFlightPeak']! > 1, `the asynchronous storage held several requests at once (peak ${c['inFlightPeak']})`);
        else assert.is(c['inFlightPeak'], 0, 'the synchronous storage holds no request');
        assert.is(c['inFlight'], 0, 'nothing is left in flight');
      });
    } finally {
      disk.remove();
    }
  });
  test.run();
}
