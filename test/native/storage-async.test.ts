/**
 * The native runtime's asynchronous storage service (docs/native.md, "Asynchronous storage"): which
 * engine serves it is said in one start-up line; io_uring by default for a file on a disk, inline for a
 * memory-backed image (/dev/shm: no worker thread per request; `--aio uring` puts it on io_uring all the
 * same), the thread pool when forced (`--aio threads`, the path taken where io_uring is refused) — all
 * under the seccomp filter, which must cover the pool's threads; `,sync` keeps the blocking service;
 * `,direct` opens the image O_DIRECT and bounces misaligned window buffers, counted in `[fw] storage`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SECTOR_SIZE, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { VIRTIO_ID_BLOCK } from '../../firmware/virtio';
import { Frontend } from '../../frontend/device';
import type { BlkRequest } from '../../frontend/drivers/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { diskImageDir, pattern } from '../blk/_blk';
import { rng } from '../blk/_rand';
import type { NativeInstance } from './_native';
import { board, withNative } from './_native';

const SECTORS = 2048; // 1 MiB

/** Serves a fresh image in `dir` with `--service disk0=PATH<flags>` and extra firmware args; checks a write/read/flush workload. */
async function served(dir: string, flags: string, args: string[], fn: (n: NativeInstance) => Promise<void>) {
  const path = join(dir, 'disk.img');
  const ref = pattern(SECTORS * SECTOR_SIZE, 5);
  writeFileSync(path, ref);
  const b = board({ devices: [{ type: 'blk', service: 'disk0', queues: 2 }], services: { disk0: { kind: 'storage', path: '/nonexistent', readOnly: false } } });
  await withNative({ board: b, services: { disk0: `${path}${flags}` }, args }, async (n) => {
    const blk = await BlkDriver.open((await Frontend.attach(n.port!)).find(VIRTIO_ID_BLOCK)!, { queues: 2, queueDepth: 16, queueSize: 64 });
    const r = rng(0xa10);
    for (let round = 0; round < 6; round++) {
      const reqs: BlkRequest[] = [];
      for (let k = 0; k < 16; k++) {
        const sector = (round * 16 + k) * 8; // disjoint 4 KiB blocks
        if (k % 2) reqs.push({ type: VIRTIO_BLK_T_IN, sector, len: 4096 });
        else {
          const data = r.bytes(4096);
          ref.set(data, sector * SECTOR_SIZE);
          reqs.push({ type: VIRTIO_BLK_T_OUT, sector, data });
        }
      }
      reqs.push({ type: VIRTIO_BLK_T_FLUSH });
      const res = await blk.run(reqs);
      res.forEach((x, i) => {
        assert.is(x.status, VIRTIO_BLK_S_OK, `round ${round} request ${i} status`);
        const q = reqs[i]!;
        if (q.type === VIRTIO_BLK_T_IN) assert.ok(Buffer.from(x.data!).equals(Buffer.from(ref.subarray(q.sector! * 512, q.sector! * 512 + 4096))), `round ${round}: read at ${q.sector} returns the image's bytes`);
      });
    }
    await fn(n);
  });
  assert.ok(Buffer.from(readFileSync(path)).equals(Buffer.from(ref)), 'the image file holds every write');
}

function withDir(base: string, fn: (dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(base, 'bulkhead-aio-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('by default a disk file is served asynchronously on io_uring, said at start-up, with a workload under seccomp', () =>
  withDir(diskImageDir(), (dir) =>
    served(dir, '', [], async (n) => {
      assert.match(n.stderr(), /storage disk0: .*asynchronous: io_uring/, 'one start-up line names io_uring');
      const st = (await n.storageStats())['disk0']!;
      assert.is(st.engine, 'io_uring');
      assert.ok(st.submitted >= 6 * 17 && st.completed === st.submitted, `every request submitted completed once (${st.completed}/${st.submitted})`);
      assert.ok(st.peakInFlight > 1, `requests overlapped (peak ${st.peakInFlight})`);
    }),
  ));

test('a memory-backed image (/dev/shm) is served inline by default: no worker thread, said at start-up, every request completed once', () =>
  withDir('/dev/shm', (dir) =>
    served(dir, '', [], async (n) => {
      assert.match(n.stderr(), /storage disk0: .*asynchronous: inline \(a memory-backed image/, 'the start-up line says inline');
      const st = (await n.storageStats())['disk0']!;
      assert.is(st.engine, 'inline');
      assert.ok(st.submitted >= 6 * 17 && st.completed === st.submitted, `every request submitted completed once (${st.completed}/${st.submitted})`);
      const threads = readdirSync(`/proc/${n.fw.pid}/task`).length;
      assert.is(threads, 1, `the firmware runs no storage worker thread (${threads} threads)`);
    }),
  ));

test('--aio uring puts a memory-backed image on io_uring all the same', () =>
  withDir('/dev/shm', (dir) =>
    served(dir, '', ['--aio', 'uring'], async (n) => {
      assert.match(n.stderr(), /storage disk0: .*asynchronous: io_uring/, 'the start-up line names io_uring');
      assert.is((await n.storageStats())['disk0']!.engine, 'io_uring');
    }),
  ));

test('--aio threads forces the thread pool (the io_uring-refused path); its threads run under the seccomp filter', () =>
  withDir(diskImageDir(), (dir) =>
    served(dir, '', ['--aio', 'threads'], async (n) => {
      assert.match(n.stderr(), /storage disk0: .*asynchronous: thread pool \(8 threads, forced\)/, 'the start-up line names the thread pool');
      const st = (await n.storageStats())['disk0']!;
      assert.is(st.engine, 'threads');
      assert.ok(st.completed === st.submitted && st.submitted > 0, 'every request completed once');
      assert.not.match(n.stderr(), /forbidden syscall/, 'no worker made a syscall the filter refuses');
    }),
  ));

test(',sync keeps the synchronous service', () =>
  withDir('/dev/shm', (dir) =>
    served(dir, ',sync', [], async (n) => {
      assert.match(n.stderr(), /storage disk0: .*, synchronous/, 'the start-up line says synchronous');
      assert.is((await n.storageStats())['disk0']!.io, 'sync');
    }),
  ));

test(',direct opens the image O_DIRECT and bounces misaligned window buffers, counted', () =>
  withDir(tmpdir(), (dir) =>
    served(dir, ',direct', [], async (n) => {
      assert.match(n.stderr(), /storage disk0: .*O_DIRECT \(block \d+, buffer alignment \d+\)/, 'the start-up line says O_DIRECT and its alignment');
      const st = (await n.storageStats())['disk0']!;
      assert.ok(st.direct, 'the service says direct');
      // The frontend model's pool aligns data to 8 bytes, so some of its buffers miss the DIO alignment.
      assert.ok(st.bounced > 0 && st.bouncedBytes >= st.bounced * 512, `misaligned buffers were bounced (${st.bounced}, ${st.bouncedBytes} bytes)`);
    }),
  ));

test.run();
