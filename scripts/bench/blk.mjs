// virtio-blk scenarios: the firmware's blk device serving a raw image in /dev/shm (tmpfs, so the
// figures are the device path, not a disk).
//
// node runtime (the firmware in QuickJS-WASM, the frontend driver model on the same thread):
//   blk-randread-4k-qd1    4 KiB random reads, one in flight
//   blk-randread-4k-qd32   4 KiB random reads, 32 in flight on one queue
//   blk-seqread-64k-qd8    64 KiB sequential reads, 8 in flight
//   blk-seqwrite-64k-qd8   64 KiB sequential writes, 8 in flight (writeback; one FLUSH at the end, timed)
// Figures: iops, throughput (MB/s), doorbells-per-request (both directions, counted by the simulator's
// lines), backend-cpu-per-request: process.cpuUsage() (user+system) summed over the calls into the
// firmware only (each doorbell's backend pass, the storage syscalls included), divided by requests;
// the frontend model's own CPU is not in it. `--blk-seconds S` sets the time of one run (default 1, after a
// warm-up of S/5); each figure is the median of `--rounds N` runs (default 3), the rings alternated round
// by round (the ring measured first in a run of one each came out up to 2× slower at QD1, either way).
//
// native runtime (`--runtime native`): build/bulkhead-fw in its own process, driven by the JS-free
// loadgen (runtime/native/loadgen.c) so the figures are the backend's: blk-randread-4k-qd1 and -qd32
// (every read checked), `--rounds N` runs of `--loadgen-seconds S` each (default 3 × 1 s), the rings
// alternated round by round; iops and backend-cpu-per-request are the medians, doorbells per request too,
// and where the backend's time goes: js-per-request (time inside the calls into the bundle, the JS pass;
// the rest of backend-cpu is the loop, system calls and wake-ups) and passes-per-request (calls into the
// bundle per request: 1/passes is how many requests one pass serves).
//
// `--ring split|packed|split,packed` (both runtimes): the virtqueue format(s), measured side by side in
// one run; packed rows are named `<scenario>-packed`.
//
// `--transport T[,T…]` (msg, regblock, mmio, or all; node runtime) runs every scenario over each transport
// side by side in the same run (one simulator per transport, all alternated round by round with the
// rings); a scenario over transport T other than msg is named `<scenario>-<T>` (blk-randread-4k-qd32-mmio),
// msg keeps the plain name; with both options a row is `<scenario>-<T>-packed`.
import { InvalidArgumentError } from 'commander';
import { backendCpu } from './_backend-cpu.mjs';
import { alternated, LOADGEN_OPTIONS, loadgenOptions, loadgenRun, median, numberedImage, RING_OPTION, ringList, ringScenario, ROUNDS_OPTION } from './_shared.mjs';
import { positive, TRANSPORTS } from '../cli/_options.mjs';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** `msg`, `regblock,mmio`, `all` → the list of transports. */
function transportList(v) {
  const list = v === 'all' ? TRANSPORTS : String(v).split(',');
  for (const t of list) if (!TRANSPORTS.includes(t)) throw new InvalidArgumentError(`${t}: one of ${TRANSPORTS.join(', ')} or all`);
  return list;
}

export const runtimes = ['node', 'native'];
export const options = [
  ['--blk-seconds <s>', 'measured seconds per blk scenario', positive, 1],
  ['--transport <t,...>', 'transports to run each blk scenario over, side by side: msg, regblock, mmio or all (node runtime)', transportList, ['msg']],
  RING_OPTION,
  ...LOADGEN_OPTIONS,
  ROUNDS_OPTION,
];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IMAGE_BYTES = 64 << 20;

export async function run({ runtime = 'node', emit, opts }) {
  const rings = ringList(opts);
  const transports = opts.transport;
  if (runtime === 'native') {
    if (transports.some((t) => t !== 'msg')) throw new Error('bench blk --runtime native: the loadgen speaks virtio-msg only (--transport msg)');
    return runNative(emit, opts, rings);
  }
  const { createSim, BlkDriver } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const seconds = opts.blkSeconds;
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-blk-'));
  const sims = {};
  try {
    // One simulator per transport, each on its own image, all booted before any scenario runs.
    for (const transport of transports) {
      const path = join(dir, `disk-${transport}.img`);
      const fd = openSync(path, 'w');
      ftruncateSync(fd, IMAGE_BYTES);
      closeSync(fd);
      const sim = await createSim({
        transport,
        devices: [
          { type: 'rng', service: 'entropy0' },
          { type: 'console', service: 'console0' },
          { type: 'blk', service: 'disk0', queues: 1 },
        ],
        services: { disk0: { kind: 'storage', path, readOnly: false } },
        log: (level, msg) => level <= 1 && console.error(`[fw ${transport}] ${msg}`),
      });
      // Backend CPU: only the time spent inside calls into the firmware.
      const backendUs = backendCpu(sim);
      const fe = await sim.frontend();
      const dev = fe.find(2);
      /** The driver on `ring` rings (negotiate resets the device and gives the old queues back). */
      const open = async (ring) => {
        dev.ring = ring;
        return BlkDriver.open(dev, { queues: 1, queueSize: 128, queueDepth: 32 });
      };
      sims[transport] = { sim, backendUs, open };
    }
    /** What one run measures: a transport and a ring format, keyed `transport/ring`. */
    const variants = transports.flatMap((t) => rings.map((r) => `${t}/${r}`));
    const capacity = (await sims[transports[0]].open(rings[0])).capacity;
    let seed = 12345;
    const rand = (n) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };

    /** One timed run of scenario `name` on one transport and ring format: its figures. */
    async function once(name, variant, depth, make, finish) {
      const [transport, ring] = variant.split('/');
      const { sim, backendUs, open } = sims[transport];
      const blk = await open(ring);
      // warm-up for S/5 (Node's WASM tiers, the tmpfs image's pages), then timed rounds until `seconds` pass
      const w0 = performance.now();
      do await blk.run(Array.from({ length: depth * 4 }, (_, k) => make(k)));
      while (performance.now() - w0 < seconds * 200);
      const lines0 = { ...sim.lines };
      const cpu0 = backendUs();
      let n = 0;
      let bytes = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        const reqs = Array.from({ length: depth * 16 }, (_, k) => make(n + k));
        const res = depth === 1 ? [] : await blk.run(reqs);
        if (depth === 1) for (const r of reqs) res.push(...(await blk.run([r])));
        for (const r of res) if (r.status !== 0) throw new Error(`${name} (${variant}): request failed with status ${r.status}`);
        n += reqs.length;
        bytes += reqs.reduce((a, r) => a + (r.len ?? r.data?.length ?? 0), 0);
      }
      if (finish) await finish(blk);
      const s = (performance.now() - t0) / 1000;
      const doorbells = sim.lines.fromFrontend - lines0.fromFrontend + sim.lines.toFrontend - lines0.toFrontend;
      return { iops: n / s, mbps: bytes / s / 1e6, doorbells: doorbells / n, cpu: (backendUs() - cpu0) / n };
    }

    async function scenario(name, depth, make, finish) {
      const runs = await alternated(variants, opts.rounds, (v) => once(name, v, depth, make, finish));
      for (const v of variants) {
        const [transport, ring] = v.split('/');
        const row = ringScenario(transport === 'msg' ? name : `${name}-${transport}`, ring);
        const m = (f) => median(runs[v].map(f));
        emit(row, 'iops', m((r) => r.iops), '1/s');
        emit(row, 'throughput', m((r) => r.mbps), 'MB/s');
        emit(row, 'doorbells-per-request', m((r) => r.doorbells), '1');
        emit(row, 'backend-cpu-per-request', m((r) => r.cpu), 'us');
      }
    }

    const sectors4k = capacity / 8;
    await scenario('blk-randread-4k-qd1', 1, () => ({ type: 0, sector: rand(sectors4k) * 8, len: 4096 }));
    await scenario('blk-randread-4k-qd32', 32, () => ({ type: 0, sector: rand(sectors4k) * 8, len: 4096 }));
    const per64k = 128;
    const chunks = capacity / per64k;
    await scenario('blk-seqread-64k-qd8', 8, (k) => ({ type: 0, sector: (k % chunks) * per64k, len: 65536 }));
    const payload = new Uint8Array(65536).map((_, k) => k & 0xff);
    await scenario('blk-seqwrite-64k-qd8', 8, (k) => ({ type: 1, sector: (k % chunks) * per64k, data: payload }), (blk) => blk.flush());
  } finally {
    for (const { sim } of Object.values(sims)) sim.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The native runtime: bulkhead-fw in its own process, the JS-free loadgen as its frontend. */
async function runNative(emit, opts, rings) {
  const { nativeBuilt, startNative, runToEnd } = await import(pathToFileURL(join(root, 'runtime', 'native', 'harness.mjs')).href);
  const LOADGEN = join(root, 'build/bulkhead-loadgen');
  if (!nativeBuilt() || !existsSync(LOADGEN)) throw new Error('the native runtime is not built: run `npm run setup:native`');
  const { seconds, extra, fwArgs } = loadgenOptions(opts);
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-blk-'));
  const disk = join(dir, 'disk.img');
  numberedImage(disk, IMAGE_BYTES);
  const board = JSON.parse(readFileSync(join(root, 'boards/host-sim.json'), 'utf8'));
  board.devices.push({ type: 'blk', service: 'disk0', queues: 1 });
  board.services.disk0 = { kind: 'storage', path: disk, readOnly: false };
  try {
    const n = await startNative({ board, connect: false, args: fwArgs });
    try {
      for (const qd of [1, 32]) {
        const runs = await alternated(rings, opts.rounds, (ring) => loadgenRun(n, runToEnd, LOADGEN, 'randread', ['--qd', String(qd), '--verify', '--ring', ring, '--seconds', String(seconds), ...extra]));
        for (const ring of rings) {
          const row = ringScenario(`blk-randread-4k-qd${qd}`, ring);
          const j = runs[ring];
          emit(row, 'iops', Math.round(median(j.map((x) => x.opsPerSec))), '1/s');
          emit(row, 'backend-cpu-per-request', round(median(j.map((x) => x.backendCpuUsPerOp))), 'us');
          emit(row, 'doorbells-per-request', round(median(j.map((x) => x.doorbellsToBackendPerOp + x.doorbellsFromBackendPerOp)), 4), '1');
          emit(row, 'js-per-request', round(median(j.map((x) => x.jsUsPerOp))), 'us');
          emit(row, 'passes-per-request', round(median(j.map((x) => x.passesPerOp)), 4), '1');
        }
      }
    } finally {
      await n.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
