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
import { backendCpu } from './_backend-cpu.mjs';
import { positive } from '../cli/_options.mjs';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['node'];
export const options = [['--blk-seconds <s>', 'measured seconds per blk scenario', positive, 1]];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IMAGE_BYTES = 64 << 20;
const SECTOR = 512;

export async function run({ emit, opts }) {
  const { createSim, BlkDriver } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const seconds = opts.blkSeconds;
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-blk-'));
  const path = join(dir, 'disk.img');
  const fd = openSync(path, 'w');
  ftruncateSync(fd, IMAGE_BYTES);
  closeSync(fd);
  try {
    const sim = await createSim({
      devices: [
        { type: 'rng', service: 'entropy0' },
        { type: 'console', service: 'console0' },
        { type: 'blk', service: 'disk0', queues: 1 },
      ],
      services: { disk0: { kind: 'storage', path, readOnly: false } },
      log: (level, msg) => level <= 1 && console.error(`[fw] ${msg}`),
    });
    // Backend CPU: only the time spent inside calls into the firmware.
    const backendUs = backendCpu(sim);
    const fe = await sim.frontend();
    const blk = await BlkDriver.open(fe.find(2), { queues: 1, queueSize: 128, queueDepth: 32 });
    const capacity = blk.capacity;
    let seed = 12345;
    const rand = (n) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };

    async function scenario(name, depth, make, finish) {
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
        for (const r of res) if (r.status !== 0) throw new Error(`${name}: request failed with status ${r.status}`);
        n += reqs.length;
        bytes += reqs.reduce((a, r) => a + (r.len ?? r.data?.length ?? 0), 0);
      }
      if (finish) await finish();
      const s = (performance.now() - t0) / 1000;
      emit(name, 'iops', n / s, '1/s');
      emit(name, 'throughput', bytes / s / 1e6, 'MB/s');
      emit(name, 'doorbells-per-request', (sim.lines.fromFrontend - lines0.fromFrontend + sim.lines.toFrontend - lines0.toFrontend) / n, '1');
      emit(name, 'backend-cpu-per-request', (backendUs() - cpu0) / n, 'us');
    }

    const sectors4k = capacity / 8;
    await scenario('blk-randread-4k-qd1', 1, () => ({ type: 0, sector: rand(sectors4k) * 8, len: 4096 }));
    await scenario('blk-randread-4k-qd32', 32, () => ({ type: 0, sector: rand(sectors4k) * 8, len: 4096 }));
    const per64k = 128;
    const chunks = capacity / per64k;
    await scenario('blk-seqread-64k-qd8', 8, (k) => ({ type: 0, sector: (k % chunks) * per64k, len: 65536 }));
    const payload = new Uint8Array(65536).map((_, k) => k & 0xff);
    await scenario('blk-seqwrite-64k-qd8', 8, (k) => ({ type: 1, sector: (k % chunks) * per64k, data: payload }), () => blk.flush());
    sim.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
