// Core scenarios: the cost of the transport itself, with a memcpy baseline measured in the same run.
//   bus-ping        PING round trips through both FIFOs (µs each; one doorbell each way)
//   rng-4k-qd1      4 KiB rng requests one at a time (req/s, MB/s, doorbells per request)
//   baseline-memcpy 4 KiB copies in the host JS engine (GB/s), the floor every bounce pays
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['node'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function run({ emit }) {
  const { createSim, RngDriver } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const sim = await createSim();
  const fe = await sim.frontend();

  const pings = 2000;
  let t0 = performance.now();
  for (let i = 0; i < pings; i++) await fe.ping(i);
  emit('bus-ping', 'rtt', ((performance.now() - t0) * 1000) / pings, 'us');

  const rng = await RngDriver.open(fe.find(4));
  const n = 2000;
  const kicks0 = sim.lines.fromFrontend;
  const raises0 = sim.lines.toFrontend;
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  for (let i = 0; i < n; i++) await rng.read(4096);
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  emit('rng-4k-qd1', 'iops', n / s, '1/s');
  emit('rng-4k-qd1', 'throughput', (n * 4096) / s / 1e6, 'MB/s');
  emit('rng-4k-qd1', 'doorbells-per-request', (sim.lines.fromFrontend - kicks0 + sim.lines.toFrontend - raises0) / n, '1');
  emit('rng-4k-qd1', 'cpu-per-request', ((cpu.user + cpu.system) / n), 'us');
  sim.dispose();

  const src = new Uint8Array(4096).fill(7);
  const dst = new Uint8Array(4096);
  const copies = 200_000;
  t0 = performance.now();
  for (let i = 0; i < copies; i++) dst.set(src);
  emit('baseline-memcpy', 'throughput', (copies * 4096) / ((performance.now() - t0) / 1000) / 1e9, 'GB/s');
}
