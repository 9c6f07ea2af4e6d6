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
//
// Options (after `bulkhead bench native-blk --runtime native`):
//   --loadgen-seconds S   measured seconds per scenario (default 1, after a warm-up of S/5)
//   --pin                 backend on CPU 0, loadgen on CPU 1 (helps only on an otherwise idle machine)
//   --spin                the loadgen spins instead of sleeping on its eventfd
import { loadgenOptions } from './_shared.mjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['native'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOADGEN = join(root, 'build/bulkhead-loadgen');
const PINGPONG = join(root, 'build/bulkhead-pingpong');
const DISK_BYTES = 64 << 20;

export async function run({ emit, args = [] }) {
  const { nativeBuilt, startNative, runToEnd } = await import(pathToFileURL(join(root, 'runtime', 'native', 'harness.mjs')).href);
  if (!nativeBuilt() || !existsSync(LOADGEN)) throw new Error('the native runtime is not built: run `npm run setup:native`');
  const { seconds, extra, fwArgs } = loadgenOptions(args);

  // The floor moves with the machine's load (other jobs delay wake-ups): the best of three short runs.
  let floorUs = Infinity;
  for (let i = 0; i < 3; i++) {
    const pp = await runToEnd(PINGPONG, ['eventfd', '5000']);
    if (pp.code !== 0) throw new Error(`bulkhead-pingpong: ${pp.stderr}`);
    floorUs = Math.min(floorUs, Number(pp.stdout.trim()) / 1000);
  }
  emit('eventfd-pingpong', 'latency-best-of-3', round(floorUs), 'us');

  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-'));
  const disk = join(dir, 'disk.img');
  const img = Buffer.alloc(DISK_BYTES);
  for (let b = 0; b < DISK_BYTES / 4096; b++) img.writeBigUInt64LE(BigInt(b), b * 4096); // what --verify checks
  writeFileSync(disk, img);
  const board = JSON.parse(readFileSync(join(root, 'boards/host-sim.json'), 'utf8'));
  board.devices.push({ type: 'blk', service: 'disk0', queues: 1 });
  board.services.disk0 = { kind: 'storage', path: disk, readOnly: false };
  const n = await startNative({ board, connect: false, args: fwArgs });
  try {
    const load = async (mode, more) => {
      const r = await runToEnd(LOADGEN, [n.socket, mode, ...more, '--seconds', String(seconds), '--backend-pid', String(n.fw.pid), ...extra]);
      if (r.code !== 0) throw new Error(`bulkhead-loadgen ${mode} ${more.join(' ')}: ${r.stderr.trim()}`);
      return JSON.parse(r.stdout);
    };
    for (const qd of [1, 32]) {
      const j = await load('randread', ['--qd', String(qd), '--verify']);
      const s = `backend-blk-randread-4k-qd${qd}`;
      emit(s, 'iops', Math.round(j.opsPerSec), '1/s');
      emit(s, 'latency', round(j.usPerOp * qd), 'us');
      emit(s, 'backend-cpu', round(j.backendCpuUsPerOp), 'us/request');
      emit(s, 'backend-capacity', Math.round(1e6 / j.backendCpuUsPerOp), '1/s');
      emit(s, 'doorbells', round(j.doorbellsToBackendPerOp + j.doorbellsFromBackendPerOp, 4), '1/request');
    }
    const p = await load('ping', []);
    emit('backend-ping-rtt', 'latency', round(p.usPerOp), 'us');
    emit('backend-ping-rtt', 'ratio-vs-eventfd-pingpong', round(p.usPerOp / floorUs), 'x');
    emit('backend-ping-rtt', 'backend-cpu', round(p.backendCpuUsPerOp), 'us/request');
    emit('backend-fw-peak-rss', 'rss', n.peakRss(), 'bytes');
  } finally {
    await n.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
