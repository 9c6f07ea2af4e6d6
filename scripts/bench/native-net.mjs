// The native backend's virtio-net alone: build/bulkhead-loadgen (runtime/native/loadgen.c, mode `net`),
// a JS-free C frontend, drives bulkhead-fw over ivshmem with the board of scripts/bench/net.mjs (two net
// devices on switch sw0): every receive buffer of B posted, frames from A's transmitq to B's receiveq
// with a window of frames in flight, each received frame's length and sequence number checked. So the
// figures are the firmware's, not the Node frontend model's (`bench net --runtime native` has those).
//
//   packets, throughput  frames/s and frame MB/s from A's transmit to B's receive, as the loadgen saw
//   backend-cpu          the firmware's CPU time (/proc/PID/schedstat) per frame
//   backend-capacity     1e6 / backend-cpu: frames per second the backend serves on one core
//   doorbells            both directions, per frame
//   js, passes           time inside the calls into the bundle (the JS pass) and calls into it, per frame
// Each figure is the median of `--rounds N` runs (default 3), the ring formats alternated round by round.
//
// Options (after `bulkhead bench native-net --runtime native`):
//   --loadgen-seconds S   measured seconds per frame size (default 1, after a warm-up of S/5)
//   --pin                 backend on CPU 0, loadgen on CPU 1 (helps only on an otherwise idle machine)
//   --spin                the loadgen spins instead of sleeping on its eventfd
//   --ring R[,R]          split (default), packed, or split,packed side by side (packed rows: `-packed`)
//   --rounds N            runs per ring format and frame size (default 3)
import { alternated, LOADGEN_OPTIONS, loadgenOptions, loadgenRun, median, RING_OPTION, ringList, ringScenario, ROUNDS_OPTION, TWO_NICS } from './_shared.mjs';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['native'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOADGEN = join(root, 'build/bulkhead-loadgen');

const { devices: DEVICES, services: SERVICES } = TWO_NICS;

export const options = [...LOADGEN_OPTIONS, RING_OPTION, ROUNDS_OPTION];

export async function run({ emit, opts }) {
  const { nativeBuilt, startNative, runToEnd } = await import(pathToFileURL(join(root, 'runtime', 'native', 'harness.mjs')).href);
  if (!nativeBuilt() || !existsSync(LOADGEN)) throw new Error('the native runtime is not built: run `npm run setup:native`');
  const { seconds, extra, fwArgs } = loadgenOptions(opts);
  const rings = ringList(opts);

  const board = JSON.parse(readFileSync(join(root, 'boards/host-sim.json'), 'utf8'));
  board.devices = DEVICES;
  board.services = { ...board.services, ...SERVICES };
  const n = await startNative({ board, connect: false, args: fwArgs });
  try {
    for (const size of [64, 1500]) {
      const runs = await alternated(rings, opts.rounds, (ring) => loadgenRun(n, runToEnd, LOADGEN, 'net', ['--size', String(size), '--ring', ring, '--seconds', String(seconds), ...extra]));
      for (const ring of rings) {
        const s = ringScenario(`backend-net-${size}b`, ring);
        const m = (f) => median(runs[ring].map(f));
        emit(s, 'packets', Math.round(m((j) => j.opsPerSec)), '1/s');
        emit(s, 'throughput', round(m((j) => j.MBPerSec)), 'MB/s');
        emit(s, 'backend-cpu', round(m((j) => j.backendCpuUsPerOp)), 'us/packet');
        emit(s, 'backend-capacity', Math.round(1e6 / m((j) => j.backendCpuUsPerOp)), '1/s');
        emit(s, 'doorbells', round(m((j) => j.doorbellsToBackendPerOp + j.doorbellsFromBackendPerOp), 4), '1/packet');
        emit(s, 'js', round(m((j) => j.jsUsPerOp)), 'us/packet');
        emit(s, 'passes', round(m((j) => j.passesPerOp), 4), '1/packet');
      }
    }
    emit('backend-fw-peak-rss', 'rss', n.peakRss(), 'bytes');
  } finally {
    await n.stop();
  }
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
