/**
 * virtio-blk served by the native runtime from a real image file: a seeded random workload checked
 * against a reference model (and the file itself at the end), read-only refusal, and SIGTERM
 * (stop() flushes, the data is in the file, exit 0).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SECTOR_SIZE, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_WRITE_ZEROES,
} from '../../firmware/devices/blk';
import { VIRTIO_ID_BLOCK } from '../../firmware/virtio';
import { Frontend } from '../../frontend/device';
import type { BlkRequest } from '../../frontend/drivers/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { rng } from '../blk/_rand';
import type { NativeInstance } from './_native';
import { board, scratch, withNative } from './_native';

const SECTORS = 2048; // 1 MiB

async function withBlk(o: { readOnly?: boolean; content?: Uint8Array; queues?: number }, fn: (n: NativeInstance, blk: BlkDriver, path: string) => Promise<void>) {
  const tmp = scratch();
  const path = tmp.file('disk.img', o.content ?? new Uint8Array(SECTORS * SECTOR_SIZE));
  try {
    const b = board({
      devices: [{ type: 'blk', service: 'disk0', queues: o.queues ?? 2 }],
      services: { disk0: { kind: 'storage', path, readOnly: o.readOnly === true } },
    });
    await withNative({ board: b }, async (n) => {
      const fe = await Frontend.attach(n.port!);
      const blk = await BlkDriver.open(fe.find(VIRTIO_ID_BLOCK)!, { queues: o.queues ?? 2, queueDepth: 8, queueSize: 32 });
      await fn(n, blk, path);
    });
  } finally {
    tmp.done();
  }
}

test('random mixed workload over 2 queues matches the reference model and the file', async () => {
  const r = rng(0xb10c);
  const ref = r.bytes(SECTORS * SECTOR_SIZE);
  await withBlk({ content: ref.slice() }, async (_n, blk, path) => {
    for (let batch = 0; batch < 30; batch++) {
      const reqs: BlkRequest[] = [];
      const spans: { lo: number; hi: number; write: boolean }[] = [];
      for (let tries = 0; reqs.length < 12 && tries < 100; tries++) {
        const kind = r.int(0, 99);
        const count = r.int(1, 16);
        const sector = r.int(0, SECTORS - count);
        const write = kind >= 50;
        if (kind < 8) { reqs.push({ type: VIRTIO_BLK_T_FLUSH }); continue; }
        if (spans.some((s) => sector < s.hi && s.lo < sector + count && (write || s.write))) continue;
        spans.push({ lo: sector, hi: sector + count, write });
        if (!write) reqs.push({ type: VIRTIO_BLK_T_IN, sector, len: count * SECTOR_SIZE });
        else if (kind < 85) reqs.push({ type: VIRTIO_BLK_T_OUT, sector, data: r.bytes(count * SECTOR_SIZE) });
        else if (kind < 92) reqs.push({ type: VIRTIO_BLK_T_DISCARD, ranges: [{ sector, numSectors: count }] });
        else reqs.push({ type: VIRTIO_BLK_T_WRITE_ZEROES, ranges: [{ sector, numSectors: count }] });
      }
      const res = await blk.run(reqs);
      res.forEach((x, i) => {
        const q = reqs[i]!;
        assert.is(x.status, VIRTIO_BLK_S_OK, `batch ${batch} request ${i} type ${q.type}`);
        if (q.type === VIRTIO_BLK_T_IN) {
          const lo = q.sector! * SECTOR_SIZE;
          if (!Buffer.from(x.data!).equals(Buffer.from(ref.subarray(lo, lo + q.len!)))) assert.unreachable(`batch ${batch}: read at sector ${q.sector} differs`);
        }
      });
      for (const q of reqs) {
        if (q.type === VIRTIO_BLK_T_OUT) ref.set(q.data!, q.sector! * SECTOR_SIZE);
        if (q.type === VIRTIO_BLK_T_DISCARD || q.type === VIRTIO_BLK_T_WRITE_ZEROES) {
          const g = q.ranges![0]!;
          ref.fill(0, g.sector * SECTOR_SIZE, (g.sector + g.numSectors) * SECTOR_SIZE);
        }
      }
    }
    await blk.flush();
    assert.ok(Buffer.from(readFileSync(path)).equals(Buffer.from(ref)), 'the image file equals the reference');
  });
});

test('a read-only backing refuses writes and leaves the file untouched', async () => {
  const content = new Uint8Array(SECTORS * SECTOR_SIZE).fill(0x5a);
  await withBlk({ readOnly: true, content }, async (_n, blk, path) => {
    const [res] = await blk.run([{ type: VIRTIO_BLK_T_OUT, sector: 0, data: new Uint8Array(512) }]);
    assert.is.not(res!.status, VIRTIO_BLK_S_OK);
    assert.ok(readFileSync(path).every((b) => b === 0x5a));
  });
});

test('SIGTERM: acknowledged writes are in the file, stop() ran, exit 0', async () => {
  await withBlk({}, async (n, blk, path) => {
    const data = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
    await blk.write(100, data);
    n.fw.kill('SIGTERM');
    const r = await n.exited;
    assert.is(r.code, 0, r.stderr);
    assert.ok(Buffer.from(readFileSync(path).subarray(100 * 512, 100 * 512 + data.length)).equals(Buffer.from(data)));
  });
});

test.run();
