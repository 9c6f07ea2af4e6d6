#!/usr/bin/env node
/**
 * Native-runtime benchmarks, for `bulkhead bench --runtime native`. Every figure is one object
 * { scenario, runtime, metric, value, unit } (DESIGN.md §7); the baselines are measured in the same
 * run so ratios mean something on whatever machine runs them:
 *
 *   eventfd-pingpong-*      two C processes ping-pong over eventfds, pinned to one core (same-core)
 *                           or two (cross-core): the floor of any doorbell in that placement
 *   ivshmem-echo-rtt        Node port → a JS-free C ivshmem peer → back: our port's own cost
 *   doorbell-rtt            Node port → PING through the FIFO → bulkhead-fw (QuickJS) → back
 *   doorbell-rtt ratio      against the echo peer (same port, same placement: like for like). The
 *                           backend's round trip against the eventfd floors, pinned, is
 *                           `bulkhead bench native-blk` (scripts/bench/native-blk.mjs)
 *   blk-randread-4k-qd32    the driver model over the port, 4 KiB random reads, 32 in flight
 *                           (needs dist/sim.mjs from npm run build)
 *   fw-peak-rss             VmHWM of the firmware process after the runs
 *
 *   node runtime/native/bench.mjs [--json] [--rounds N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventfdFloor, PINGPONG, ROOT, run, startNative } from './harness.mjs';
import { connectNative } from './port.mjs';

const RUNTIME = 'native';

/* Window header / FIFO layout (docs/window-layout.md). */
const HDR = { slotSize: 0x0c, d2vOffset: 0x10, d2vSlots: 0x14, v2dOffset: 0x18, v2dSlots: 0x1c };
const FIFO_HEAD = 0;
const FIFO_TAIL = 64;
const FIFO_SLOTS = 128;
const TYPE_RESPONSE = 1;
const TYPE_BUS = 2;
const BUS_MSG_PING = 0x03;

const fig = (scenario, metric, value, unit) => ({ scenario, runtime: RUNTIME, metric, value, unit });

/** A minimal raw-FIFO PING client: exactly one message each way per doorbell. */
function pinger(port) {
  const b = port.bytes;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const slot = v.getUint32(HDR.slotSize, true);
  const d2v = { off: v.getUint32(HDR.d2vOffset, true), n: v.getUint32(HDR.d2vSlots, true) };
  const v2d = { off: v.getUint32(HDR.v2dOffset, true), n: v.getUint32(HDR.v2dSlots, true) };
  let token = 1;
  return async function ping(data) {
    const t = token;
    token = token === 0xffff ? 1 : token + 1;
    const head = v.getUint32(d2v.off + FIFO_HEAD, true);
    const at = d2v.off + FIFO_SLOTS + (head & (d2v.n - 1)) * slot;
    v.setUint8(at, TYPE_BUS);
    v.setUint8(at + 1, BUS_MSG_PING);
    v.setUint16(at + 2, 0, true);
    v.setUint16(at + 4, t, true);
    v.setUint16(at + 6, 12, true);
    v.setUint32(at + 8, data, true);
    v.setUint32(d2v.off + FIFO_HEAD, (head + 1) >>> 0, true);
    port.kick();
    for (;;) {
      const h = v.getUint32(v2d.off + FIFO_HEAD, true);
      let tail = v.getUint32(v2d.off + FIFO_TAIL, true);
      while (tail !== h) {
        const m = v2d.off + FIFO_SLOTS + (tail & (v2d.n - 1)) * slot;
        const ok = v.getUint8(m) === (TYPE_BUS | TYPE_RESPONSE) && v.getUint16(m + 4, true) === t;
        const echoed = v.getUint32(m + 8, true);
        tail = (tail + 1) >>> 0;
        v.setUint32(v2d.off + FIFO_TAIL, tail, true);
        if (ok) {
          if (echoed !== data) throw new Error(`PING echoed ${echoed}, sent ${data}`);
          return;
        }
      }
      if (!(await port.wait(5000))) throw new Error('no doorbell from the firmware within 5 s');
    }
  };
}

async function timeLoop(n, fn) {
  for (let i = 0; i < Math.min(200, n); i++) await fn(i); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - t0) / n / 1000; // µs per iteration
}

/** Runs the native benchmarks; returns the figures. */
export async function benchNative({ rounds = 5000 } = {}) {
  const figures = [];
  // 1. eventfd floors, pinned: one core, and across two (when there are two)
  figures.push(fig('eventfd-pingpong-same-core', 'latency', round(await eventfdFloor(0, 0, { rounds })), 'us'));
  if (cpus().length >= 2) figures.push(fig('eventfd-pingpong-cross-core', 'latency', round(await eventfdFloor(1, 0, { rounds })), 'us'));

  // 2 + 3. the firmware, with an echo peer measured on the same server first
  const n = await startNative({ connect: false });
  try {
    const echo = run(PINGPONG, ['echo', n.socket]);
    await until(() => /ready/.test(echo.out.stderr), 5000);
    const port = await connectNative({ socket: n.socket });
    const echoId = Number(/peer (\d+)/.exec(echo.out.stderr)[1]);
    // Ring only the echo peer: the header names the firmware as backend, so aim the port by hand.
    const echoUs = await timeLoop(rounds, async () => {
      port.kickPeer(echoId);
      if (!(await port.wait(5000))) throw new Error('echo peer did not answer');
    });
    port.close();
    echo.child.kill('SIGTERM');
    await echo.exited;
    figures.push(fig('ivshmem-echo-rtt', 'latency', round(echoUs), 'us'));

    const fe = await connectNative({ socket: n.socket });
    const ping = pinger(fe);
    while (await fe.wait(0));
    const rttUs = await timeLoop(rounds, (i) => ping(i));
    figures.push(fig('doorbell-rtt', 'latency', round(rttUs), 'us'));
    figures.push(fig('doorbell-rtt', 'ratio-vs-ivshmem-echo', round(rttUs / echoUs), 'x'));
    fe.close();
    figures.push(fig('fw-peak-rss', 'rss', n.peakRss(), 'bytes'));
  } finally {
    await n.stop();
  }
  figures.push(...(await benchBlk({ rounds })));
  return figures;
}

/** blk 4 KiB random reads at queue depth 32 through the driver model (dist/sim.mjs). */
async function benchBlk({ rounds }) {
  const sim = join(ROOT, 'dist/sim.mjs');
  if (!existsSync(sim)) return [];
  const { Frontend, BlkDriver } = await import(sim);
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-'));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, new Uint8Array(64 << 20));
  const board = JSON.parse((await import('node:fs')).readFileSync(join(ROOT, 'boards/host-sim.json'), 'utf8'));
  board.devices.push({ type: 'blk', service: 'disk0', queues: 1 });
  board.services.disk0 = { kind: 'storage', path: disk, readOnly: false };
  const n = await startNative({ board });
  try {
    const fe = await Frontend.attach(n.port);
    const blk = await BlkDriver.open(fe.find(2), { queueDepth: 32, queueSize: 128 });
    const sectors = (64 << 20) / 512;
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % (sectors / 8);
    const batch = () => Array.from({ length: 32 }, () => ({ type: 0, sector: rand() * 8, len: 4096 }));
    await blk.run(batch());
    const batches = Math.max(10, Math.floor(rounds / 32));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batches; i++) await blk.run(batch());
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return [fig('blk-randread-4k-qd32', 'iops', Math.round((batches * 32) / s), '1/s'), fig('fw-peak-rss-after-blk', 'rss', n.peakRss(), 'bytes')];
  } finally {
    await n.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (x) => Math.round(x * 100) / 100;

async function until(cond, ms) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const json = process.argv.includes('--json');
  const ri = process.argv.indexOf('--rounds');
  const figures = await benchNative({ rounds: ri > 0 ? Number(process.argv[ri + 1]) : undefined });
  if (json) for (const f of figures) console.log(JSON.stringify(f));
  else console.table(figures);
}
