// Crash consistency (DESIGN §6.6): a backend process serving an image is killed with SIGKILL at
// random points of a write+flush workload and restarted; every write acknowledged by a completed
// FLUSH must be on the file, and readable through the device after the restart.
// The child is test/blk/crash-child.mjs (the built bundle in the node runtime). BLK_SEED replays.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlkDriver } from '../../frontend/drivers/blk';
import { blkSim } from './_blk';
import { rng } from './_rand';

const here = dirname(fileURLToPath(import.meta.url));
const WRITES_PER_ITER = 4;
const SEED = Number(process.env['BLK_SEED'] ?? 0xc4a5);

function block(i: number, j: number): Uint8Array {
  const b = new Uint8Array(4096);
  for (let k = 0; k < b.length; k++) b[k] = (i * 7 + j * 13 + k) & 0xff;
  new DataView(b.buffer).setUint32(0, i, true);
  return b;
}

/** Runs the child from `start`, kills it `delayMs` after its first ACK; returns the last ACK seen (or start-1). */
function crashRound(image: string, start: number, delayMs: number, io: 'sync' | 'async'): Promise<{ lastAck: number; acks: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'crash-child.mjs'), image, String(start), io], { stdio: ['ignore', 'pipe', 'pipe'] });
    let lastAck = start - 1;
    let acks = 0;
    let buf = '';
    let err = '';
    let armed = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ACK (\d+)$/.exec(line);
        if (m) {
          lastAck = Number(m[1]);
          acks++;
          if (!armed) {
            armed = true;
            setTimeout(() => child.kill('SIGKILL'), delayMs);
          }
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`backend process exited with ${code}: ${err}`));
      else resolve({ lastAck, acks });
    });
  });
}

// The same workload on the synchronous and the asynchronous storage service (docs/hal.md).
for (const io of ['sync', 'async'] as const) {
  test(`[${io} storage] every write acknowledged by a completed FLUSH survives SIGKILL of the backend (seed ${SEED})`, async () => {
    const r = rng(SEED);
    const b = await blkSim({ sizeBytes: 8 << 20, content: new Uint8Array(8 << 20) });
    b.s.dispose(); // the image is served by the child processes; this process only checks
    let lastAck = -1;
    for (let round = 0; round < 3; round++) {
      const res = await crashRound(b.path, lastAck + 1, r.int(0, 120), io);
      assert.ok(res.acks > 0, `round ${round}: the backend acknowledged at least one FLUSH before it was killed`);
      lastAck = res.lastAck;
      const img = b.image();
      for (let i = 0; i <= lastAck; i++) {
        for (let j = 0; j < WRITES_PER_ITER; j++) {
          const off = (i * WRITES_PER_ITER + j) * 4096;
          if (!Buffer.from(img.subarray(off, off + 4096)).equals(Buffer.from(block(i, j)))) {
            assert.unreachable(`round ${round}: write ${j} of iteration ${i} was acknowledged by a FLUSH (last ACK ${lastAck}) but is not on the file`);
          }
        }
      }
    }
    // Restart: a fresh backend on the same file serves the acknowledged data through the device.
    const again = await blkSim({ path: b.path, io });
    const blk = await BlkDriver.open((await again.s.frontend()).find(2)!);
    const n = (lastAck + 1) * WRITES_PER_ITER;
    const all = await blk.run(Array.from({ length: n }, (_, k) => ({ type: 0, sector: k * 8, len: 4096 })));
    all.forEach((x, k) => {
      if (!Buffer.from(x.data!).equals(Buffer.from(block(Math.floor(k / WRITES_PER_ITER), k % WRITES_PER_ITER)))) {
        assert.unreachable(`after restart, block ${k} read through the device differs from what was acknowledged`);
      }
    });
    again.done();
    b.done();
  });
}

test.run();
