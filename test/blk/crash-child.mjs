// Backend process for crash-consistency.test.ts: serves `image` through the firmware (node runtime)
// and runs a write+flush workload on it from iteration `start`. Iteration i writes WRITES_PER_ITER
// blocks of 8 sectors (never rewritten later), then FLUSHes; only once the FLUSH completed OK does it
// print "ACK i" (a synchronous write to stdout). The parent kills it with SIGKILL at a random point.
// The third argument is the storage service's `io`: sync or async (docs/hal.md).
import { writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { createSim, BlkDriver } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
const [image, startArg, io = 'sync'] = process.argv.slice(2);
const WRITES_PER_ITER = 4; // keep in sync with crash-consistency.test.ts

/** The bytes of write j of iteration i (the test computes the same). */
function block(i, j) {
  const b = new Uint8Array(4096);
  for (let k = 0; k < b.length; k++) b[k] = (i * 7 + j * 13 + k) & 0xff;
  new DataView(b.buffer).setUint32(0, i, true);
  return b;
}

const sim = await createSim({
  devices: [
    { type: 'rng', service: 'entropy0' },
    { type: 'console', service: 'console0' },
    { type: 'blk', service: 'disk0', queues: 2 },
  ],
  services: { disk0: { kind: 'storage', path: image, readOnly: false, io } },
});
const blk = await BlkDriver.open((await sim.frontend()).find(2), { queues: 2 });
const iters = Math.floor(blk.capacity / (8 * WRITES_PER_ITER));
writeSync(1, 'READY\n');
for (let i = Number(startArg); i < iters; i++) {
  const reqs = [];
  for (let j = 0; j < WRITES_PER_ITER; j++) reqs.push({ type: 1, sector: (i * WRITES_PER_ITER + j) * 8, data: block(i, j) });
  const res = await blk.run(reqs);
  if (res.some((r) => r.status !== 0)) throw new Error(`iteration ${i}: a write failed`);
  await blk.flush();
  writeSync(1, `ACK ${i}\n`);
}
writeSync(1, 'DONE\n');
sim.dispose();
