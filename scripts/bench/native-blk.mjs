// The native backend alone: build/bulkhead-loadgen (runtime/native/loadgen.c), a JS-free C frontend,
// drives bulkhead-fw over ivshmem — blk 4 KiB random reads at QD1 and QD32 on an image in /dev/shm
// (every block holds its number; each read is checked) and a PING loop — so the figures are the
// firmware's, not the Node frontend model's (scripts/bench/native.mjs has those). The eventfd
// ping-pong floor is measured in the same run.
//
//   backend-cpu      the firmware's CPU time (/proc/PID/schedstat) per request
//   backend-capacity 1e6 / backend-cpu: requests per second the backend serves on one core
//   iops, latency    what the loadgen saw (machine load from other jobs shows here first)
//   doorbells        both directions, per request
//   js               time inside the firmware's calls (its JS pass) per request: the backend's work
//                    without the wake-ups (bulkhead-fw's `[fw] calls` line)
//
// The doorbell round trip (PING through the FIFOs and the firmware) is compared with the raw eventfd
// ping-pong *in the same placement*, both pinned, because on a VM the floor itself depends on it
// (here 2 µs when one core switches between the two processes, ~70 µs when a wake-up crosses cores):
//   backend-ping-rtt-same-core    loadgen and firmware on CPU 0, both sleeping  vs eventfd-pingpong-same-core
//   backend-ping-rtt-cross-core   loadgen on CPU 1, firmware on CPU 0 (the backend on a core of its own,
//                                 the partition's shape), both sleeping           vs eventfd-pingpong-cross-core
//   backend-ping-rtt-cross-core-busy-poll   the same with a second firmware started with --busy-poll 50:
//                                 it polls 50 µs after each event before sleeping (doorbells still rung)
// plus `backend-ping-rtt` as the options ask (unpinned; --spin), latency only: an unpinned floor is not
// a like-for-like baseline. blk QD1 also runs on the busy-polling firmware.
//
// Storage, synchronous vs asynchronous service, side by side (`storage-*`): 4 KiB random reads at QD1,
// QD8 and QD32 on (a) an image in /dev/shm (buffered) and (b) an image file on the machine's disk opened
// O_DIRECT (`--service disk0=PATH,direct`), each with `,sync` and `,async` (the default engine: inline on
// the memory-backed /dev/shm image, io_uring on the disk file), on /dev/shm also `async-uring` (`--aio
// uring`). The firmwares run at once and the loadgen alternates between them, --storage-rounds times per
// depth (the order flips each round), so runs compared are seconds apart on a shared machine. Rows iops,
// latency, backend-cpu, js (time inside the firmware's calls, `[fw] calls`) per request (the median over
// the rounds) and `bounced` (requests the backend bounced for O_DIRECT alignment, all rounds); per
// location and depth `async-vs-sync` (IOPS) and `async-vs-sync-cpu` (backend CPU per request), the median
// of each round's ratio, and the same for `async-uring`. `page-cache-bytes` is how much of the disk image sat in the page
// cache after the O_DIRECT runs (fincore): near 0 means the reads really went to the disk.
//
// Options (after `bulkhead bench native-blk --runtime native`):
//   --storage-only        only the storage comparison
//   --disk-dir DIR        where the O_DIRECT image lives (default: the OS temp dir; it must be on a disk)
//   --disk-mib N          its size (default 1024)
//   --storage-rounds N    runs of each service per depth in the storage comparison (default 3)
//   --loadgen-seconds S   measured seconds per scenario (default 1, after a warm-up of S/5)
//   --pin                 backend on CPU 0, loadgen on CPU 1 for the blk and unpinned-ping runs
//   --spin                the loadgen spins instead of sleeping on its eventfd (blk, unpinned ping)
//   --busy-poll US        the first firmware busy-polls too
import { LOADGEN_OPTIONS, loadgenOptions, loadgenRun, median, numberedImage } from './_shared.mjs';
import { count } from '../cli/_options.mjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['native'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOADGEN = join(root, 'build/bulkhead-loadgen');
const DISK_BYTES = 64 << 20;

export const options = [
  ...LOADGEN_OPTIONS,
  ['--storage-only', 'only the storage comparison, synchronous vs asynchronous service'],
  ['--disk-dir <dir>', 'where the O_DIRECT image of the storage comparison lives (default: the OS temp dir; it must be on a disk)'],
  ['--disk-mib <n>', 'the size of that image in MiB', count, 1024],
  ['--storage-rounds <n>', 'runs of each service per depth in the storage comparison, alternating (the medians are reported)', count, 3],
];

export async function run({ emit, opts }) {
  const { nativeBuilt, startNative, runToEnd, eventfdFloor } = await import(pathToFileURL(join(root, 'runtime', 'native', 'harness.mjs')).href);
  if (!nativeBuilt() || !existsSync(LOADGEN)) throw new Error('the native runtime is not built: run `npm run setup:native`');
  const { seconds, extra, fwArgs } = loadgenOptions(opts);
  if (opts.storageOnly) return storage(emit, opts, seconds, { startNative, runToEnd });

  // The floors, pinned: the best of three short runs each.
  const cross = cpus().length >= 2;
  const floorSame = await eventfdFloor(0, 0, { runs: 3 });
  emit('eventfd-pingpong-same-core', 'latency-best-of-3', round(floorSame), 'us');
  const floorCross = cross ? await eventfdFloor(1, 0, { runs: 3 }) : NaN;
  if (cross) emit('eventfd-pingpong-cross-core', 'latency-best-of-3', round(floorCross), 'us');

  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-'));
  const disk = join(dir, 'disk.img');
  numberedImage(disk, DISK_BYTES);
  const board = JSON.parse(readFileSync(join(root, 'boards/host-sim.json'), 'utf8'));
  board.devices.push({ type: 'blk', service: 'disk0', queues: 1 });
  board.services.disk0 = { kind: 'storage', path: disk, readOnly: false };
  // One loadgen run against firmware `n`; also the firmware's JS time per request (warm-up included
  // in both the calls and the loadgen's total, so the ratio holds).
  const load = (n, mode, more, own = false) => loadgenRun(n, runToEnd, LOADGEN, mode, [...more, '--seconds', String(seconds), ...(own ? [] : extra)]);
  /** A round trip against its like-for-like floor (or none: latency only). */
  const rttRows = (s, j, floorUs, floorName) => {
    emit(s, 'latency', round(j.usPerOp), 'us');
    if (floorName) emit(s, `ratio-vs-${floorName}`, round(j.usPerOp / floorUs), 'x');
    emit(s, 'js', round(j.jsUsPerOp), 'us/request');
  };
  // Pinned runs: the loadgen's own --cpu and --pin-backend (options' --pin/--spin are left out).
  const pinned = (cpu) => ['--cpu', cpu, '--pin-backend', '0'];
  try {
    const n = await startNative({ board, connect: false, args: fwArgs });
    try {
      for (const qd of [1, 32]) {
        const j = await load(n, 'randread', ['--qd', String(qd), '--verify']);
        const s = `backend-blk-randread-4k-qd${qd}`;
        emit(s, 'iops', Math.round(j.opsPerSec), '1/s');
        emit(s, 'latency', round(j.usPerOp * qd), 'us');
        emit(s, 'backend-cpu', round(j.backendCpuUsPerOp), 'us/request');
        emit(s, 'backend-capacity', Math.round(1e6 / j.backendCpuUsPerOp), '1/s');
        emit(s, 'js', round(j.jsUsPerOp), 'us/request');
        emit(s, 'doorbells', round(j.doorbellsToBackendPerOp + j.doorbellsFromBackendPerOp, 4), '1/request');
      }
      const p = await load(n, 'ping', []);
      rttRows('backend-ping-rtt', p);
      emit('backend-ping-rtt', 'backend-cpu', round(p.backendCpuUsPerOp), 'us/request');
      emit('backend-fw-peak-rss', 'rss', n.peakRss(), 'bytes');
      // From here on the firmware is pinned to CPU 0.
      rttRows('backend-ping-rtt-same-core', await load(n, 'ping', pinned('0'), true), floorSame, 'eventfd-pingpong-same-core');
      if (cross) rttRows('backend-ping-rtt-cross-core', await load(n, 'ping', pinned('1'), true), floorCross, 'eventfd-pingpong-cross-core');
    } finally {
      await n.stop();
    }
    await storage(emit, opts, seconds, { startNative, runToEnd });
    const b = await startNative({ board, connect: false, args: ['--busy-poll', '50'] });
    try {
      const q = await load(b, 'randread', ['--qd', '1', '--verify']);
      emit('backend-blk-randread-4k-qd1-busy-poll', 'latency', round(q.usPerOp), 'us');
      emit('backend-blk-randread-4k-qd1-busy-poll', 'js', round(q.jsUsPerOp), 'us/request');
      if (cross) rttRows('backend-ping-rtt-cross-core-busy-poll', await load(b, 'ping', pinned('1'), true), floorCross, 'eventfd-pingpong-cross-core');
    } finally {
      await b.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Bytes of `path` in the page cache (util-linux fincore), NaN if it cannot tell. */
function pageCacheBytes(path) {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : NaN;
}

/** The storage comparison (header): one firmware per location and service, the loadgen at each depth. */
async function storage(emit, opts, seconds, { startNative, runToEnd }) {
  const diskMib = opts.diskMib;
  const rounds = opts.storageRounds;
  const shmDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-'));
  const diskDir = mkdtempSync(join(opts.diskDir ?? tmpdir(), 'bulkhead-bench-disk-'));
  const board = JSON.parse(readFileSync(join(root, 'boards/host-sim.json'), 'utf8'));
  board.devices.push({ type: 'blk', service: 'disk0', queues: 1 });
  board.services.disk0 = { kind: 'storage', path: '/nonexistent', readOnly: false };
  try {
    const shmImg = join(shmDir, 'disk.img');
    const diskImg = join(diskDir, 'disk.img');
    numberedImage(shmImg, DISK_BYTES);
    numberedImage(diskImg, diskMib << 20);
    // Out of the page cache before the O_DIRECT runs, so that nothing earlier warms it.
    spawnSync('dd', [`if=${diskImg}`, 'iflag=nocache', 'count=0', 'status=none']);
    // The services compared at each place: `sync` and `async` (the default engine: inline for the
    // memory-backed /dev/shm image, io_uring for the disk file), and on /dev/shm also `async-uring`
    // (`--aio uring`: io_uring there too, whose every request on tmpfs goes through an io-wq thread).
    const places = [
      { loc: 'shm', path: shmImg, flags: '', variants: ['sync', 'async', 'async-uring'] },
      { loc: 'disk-direct', path: diskImg, flags: ',direct', variants: ['sync', 'async'] },
    ];
    for (const p of places) {
      const fw = {};
      try {
        for (const v of p.variants) {
          const io = v === 'sync' ? 'sync' : 'async';
          fw[v] = await startNative({ board, connect: false, services: { disk0: `${p.path}${p.flags},${io}` }, args: v === 'async-uring' ? ['--aio', 'uring'] : [] });
        }
        for (const qd of [1, 8, 32]) {
          const got = Object.fromEntries(p.variants.map((v) => [v, []]));
          for (let k = 0; k < rounds; k++) {
            for (const v of k % 2 ? [...p.variants].reverse() : p.variants) {
              const n = fw[v];
              const before = (await n.storageStats())['disk0'];
              const callsBefore = await n.callTimes();
              const r = await runToEnd(LOADGEN, [n.socket, 'randread', '--qd', String(qd), '--verify', '--seconds', String(seconds), '--backend-pid', String(n.fw.pid)]);
              if (r.code !== 0) throw new Error(`bulkhead-loadgen randread --qd ${qd} (${p.loc}, ${v}): ${r.stderr.trim()}`);
              const calls = await n.callTimes();
              const after = (await n.storageStats())['disk0'];
              const j = JSON.parse(r.stdout);
              const jsUs = Object.keys(calls).reduce((a, c) => a + calls[c].us - (callsBefore[c]?.us ?? 0), 0);
              got[v].push({ iops: j.opsPerSec, latency: j.usPerOp * qd, cpu: j.backendCpuUsPerOp, js: jsUs / j.opsTotal, bounced: after.bounced - before.bounced });
            }
          }
          for (const v of p.variants) {
            const s = `storage-randread-4k-qd${qd}-${p.loc}-${v}`;
            const g = got[v];
            emit(s, 'iops', Math.round(median(g.map((x) => x.iops))), '1/s');
            emit(s, 'latency', round(median(g.map((x) => x.latency))), 'us');
            emit(s, 'backend-cpu', round(median(g.map((x) => x.cpu))), 'us/request');
            emit(s, 'js', round(median(g.map((x) => x.js))), 'us/request');
            emit(s, 'bounced', g.reduce((t, x) => t + x.bounced, 0), 'requests');
          }
          for (const v of p.variants.filter((x) => x !== 'sync')) {
            const ratio = (k) => round(median(got[v].map((x, i) => x[k] / got.sync[i][k])));
            emit(`storage-randread-4k-qd${qd}-${p.loc}`, `${v}-vs-sync`, ratio('iops'), 'x');
            emit(`storage-randread-4k-qd${qd}-${p.loc}`, `${v}-vs-sync-cpu`, ratio('cpu'), 'x');
          }
        }
      } finally {
        for (const n of Object.values(fw)) await n.stop();
      }
      if (p.loc === 'disk-direct') emit('storage-disk-direct-image', 'page-cache-bytes', pageCacheBytes(diskImg), 'bytes');
    }
  } finally {
    rmSync(shmDir, { recursive: true, force: true });
    rmSync(diskDir, { recursive: true, force: true });
  }
}
