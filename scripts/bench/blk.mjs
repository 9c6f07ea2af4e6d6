// virtio-blk scenarios: the firmware's blk device serving a raw image in /dev/shm (tmpfs, so the
// figures are the device path, not a disk) to the frontend driver model.
//   blk-randread-4k-qd1    4 KiB random reads, one in flight
//   blk-randread-4k-qd32   4 KiB random reads, 32 in flight on one queue
//   blk-seqread-64k-qd8    64 KiB sequential reads, 8 in flight
//   blk-seqwrite-64k-qd8   64 KiB sequential writes, 8 in flight (writeback; one FLUSH at the end, timed)
// Figures: iops, throughput (MB/s), doorbells-per-request (both directions, counted by the simulator's
// lines), backend-cpu-per-request: process.cpuUsage() (user+system) summed over the calls into the
// firmware only (each doorbell's backend pass, the storage syscalls included), divided by requests;
// the frontend model's own CPU is not in it. `--blk-seconds S` sets the time per scenario (default 1).
// `--transport T[,T…]` (msg, regblock, mmio, or all) runs every scenario over each transport side by
// side in the same run, the transports alternating per scenario; a scenario over transport T other than
// msg is named `<scenario>-<T>` (blk-randread-4k-qd32-mmio), msg keeps the plain name.
import { backendCpu } from './_backend-cpu.mjs';
import { positive } from '../cli/_options.mjs';
import { InvalidArgumentError } from 'commander';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const TRANSPORTS = ['msg', 'regblock', 'mmio'];

/** `msg`, `regblock,mmio`, `all` → the list of transports. */
function transportList(v) {
  const list = v === 'all' ? TRANSPORTS : String(v).split(',');
  for (const t of list) if (!TRANSPORTS.includes(t)) throw new InvalidArgumentError(`${t}: one of ${TRANSPORTS.join(', ')} or all`);
  return list;
}

export const runtimes = ['node'];
export const options = [
  ['--blk-seconds <s>', 'measured seconds per blk scenario', positive, 1],
  ['--transport <t,...>', 'transports to run each blk scenario over, side by side: msg, regblock, mmio or all', transportList, ['msg']],
];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IMAGE_BYTES = 64 << 20;
const SECTOR = 512;

export async function run({ emit, opts }) {
  const { createSim, BlkDriver } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const seconds = opts.blkSeconds;
  const transports = opts.transport;
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-blk-'));
  const sims = [];
  try {
    // One simulator per transport, each on its own image, all booted before any scenario runs.
    for (const transport of transports) {
      const tpath = join(dir, `disk-${transport}.img`);
      const tfd = openSync(tpath, 'w');
      ftruncateSync(tfd, IMAGE_BYTES);
      closeSync(tfd);
      const sim = await createSim({
        transport,
        devices: [
          { type: 'rng', service: 'entropy0' },
          { type: 'console', service: 'console0' },
          { type: 'blk', service: 'disk0', queues: 1 },
        ],
        services: { disk0: { kind: 'storage', path: tpath, readOnly: false } },
        log: (level, msg) => level <= 1 && console.error(`[fw ${transport}] ${msg}`),
      });
      // Backend CPU: only the time spent inside calls into the firmware.
      const backendUs = backendCpu(sim);
      const fe = await sim.frontend();
      const blk = await BlkDriver.open(fe.find(2), { queues: 1, queueSize: 128, queueDepth: 32 });
      sims.push({ transport, sim, backendUs, blk, suffix: transport === 'msg' ? '' : `-${transport}` });
    }
    const capacity = sims[0].blk.capacity;
    let seed = 12345;
    const rand = (n) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };

    async function scenario(name, depth, make, finish) {
      for (const { sim, backendUs, blk, suffix } of sims) {
        // warm-up (JIT, page cache of the tmpfs image), then timed rounds until `seconds` pass
        await blk.run(Array.from({ length: depth * 4 }, (_, k) => make(k)));
        const lines0 = { ...sim.lines };
        const cpu0 = backendUs();
        let n = 0;
        let bytes = 0;
        const t0 = performance.now();
        while (performance.now() - t0 < seconds * 1000) {
          const reqs = Array.from({ length: depth * 16 }, (_, k) => make(n + k));
          const res = depth === 1 ? [] : await blk.run(reqs);
          if (depth === 1) for (const r of reqs) res.push(...(await blk.run([r])));
          for (const r of res) if (r.status !== 0) throw new Error(`${name}${suffix}: request failed with status ${r.status}`);
          n += reqs.length;
          bytes += reqs.reduce((a, r) => a + (r.len ?? r.data?.length ?? 0), 0);
        }
        if (finish) await finish(blk);
        const s = (performance.now() - t0) / 1000;
        emit(`${name}${suffix}`, 'iops', n / s, '1/s');
        emit(`${name}${suffix}`, 'throughput', bytes / s / 1e6, 'MB/s');
        emit(`${name}${suffix}`, 'doorbells-per-request', (sim.lines.fromFrontend - lines0.fromFrontend + sim.lines.toFrontend - lines0.toFrontend) / n, '1');
        emit(`${name}${suffix}`, 'backend-cpu-per-request', (backendUs() - cpu0) / n, 'us');
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
    for (const { sim } of sims) sim.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
