// virtio-net scenarios: two net devices on one host-sim board, connected by the runtime's virtual
// switch (node: runtime/node/switch.ts; native: runtime/native/packet.c, the firmware in its own process
// over ivshmem); the frontend driver model sends from interface A and receives on interface B.
//   net-64b     64-byte frames (minimum Ethernet), bursts of BURST per doorbell
//   net-1500b   1500-byte frames
// Figures: packets/s and MB/s (frame bytes, A's transmit to B's receive, both frontends' work included,
// everything on one thread), doorbells-per-packet (both directions) and backend-cpu-per-packet
// (node: process.cpuUsage over the calls into the firmware only; native: the firmware process's utime+stime
// from /proc). `--net-seconds S` sets the time per scenario. `--ring split|packed|split,packed`: the
// virtqueue format(s), side by side in one run (packed rows are named `net-<size>b-packed`); each figure is
// the median of `--rounds N` runs (default 3), the formats alternated round by round.
import { alternated, median, RING_OPTION, ringList, ringScenario, ROUNDS_OPTION, TWO_NICS } from './_shared.mjs';
import { backendCpu } from './_backend-cpu.mjs';
import { positive } from '../cli/_options.mjs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['node', 'native'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BURST = 64;

const { devices: DEVICES, services: SERVICES } = TWO_NICS;

export const options = [['--net-seconds <s>', 'measured seconds per net scenario', positive, 1], RING_OPTION, ROUNDS_OPTION];

export async function run({ runtime = 'node', emit, opts }) {
  const mod = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const seconds = opts.netSeconds;
  const rings = ringList(opts);
  const rounds = opts.rounds;
  if (runtime === 'native') return runNative(mod, emit, seconds, rings, rounds);
  const { createSim, NetDriver } = mod;
  const sim = await createSim({
    devices: DEVICES,
    services: SERVICES,
    log: (level, msg) => level <= 1 && console.error(`[fw] ${msg}`),
  });
  // Backend CPU: only the time spent inside calls into the firmware.
  const backendUs = backendCpu(sim);
  const fe = await sim.frontend();
  await measure(fe, NetDriver, rings, rounds, seconds, emit, {
    lines: () => sim.lines.fromFrontend + sim.lines.toFrontend,
    cpuUs: () => backendUs(),
    wait: async () => {}, // the simulator runs the backend until idle inside every call
  });
  sim.dispose();
}

/**
 * Bursts of BURST frames from device 2 (A) to device 3 (B) of `fe`, for 64- and 1500-byte frames, on
 * each ring format of `rings`: `rounds` runs each, the formats alternated round by round, the medians
 * emitted. `probe` gives the doorbell count (null when the runtime does not count them), the backend's
 * CPU so far (µs), and how to wait for it.
 */
async function measure(fe, NetDriver, rings, rounds, seconds, emit, probe) {
  for (const size of [64, 1500]) {
    const runs = await alternated(rings, rounds, async (ring) => {
      fe.devices[2].ring = ring;
      fe.devices[3].ring = ring;
      const a = await NetDriver.open(fe.devices[2], { queueSize: 256 });
      const b = await NetDriver.open(fe.devices[3], { queueSize: 256 });
      return burst(a, b, size, seconds, probe);
    });
    for (const ring of rings) {
      const name = ringScenario(`net-${size}b`, ring);
      const m = (f) => median(runs[ring].map(f));
      emit(name, 'packets', Math.round(m((r) => r.packets)), '1/s');
      emit(name, 'throughput', (m((r) => r.packets) * size) / 1e6, 'MB/s');
      if (runs[ring][0].doorbells !== null) emit(name, 'doorbells-per-packet', m((r) => r.doorbells), '1');
      emit(name, 'backend-cpu-per-packet', m((r) => r.cpu), 'us');
    }
  }
}

/** Bursts of `size`-byte frames from a to b for `seconds`: packets/s, doorbells and backend CPU (µs) per packet. */
async function burst(a, b, size, seconds, probe) {
  const frame = new Uint8Array(size);
  frame.set(b.mac, 0);
  frame.set(a.mac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  const round = async () => {
    for (let k = 0; k < BURST; k++) a.queue(frame);
    await a.flush();
    let got = 0;
    const end = performance.now() + 5000;
    while (got < BURST && performance.now() < end) {
      const n = (await b.receive()).length;
      got += n;
      if (n === 0) await probe.wait();
    }
    if (got !== BURST) throw new Error(`net bench: ${got} of ${BURST} frames arrived`);
  };
  for (let w = 0; w < 20; w++) await round(); // warm up (JIT, rings)
  const lines0 = probe.lines();
  const cpu0 = probe.cpuUs();
  let packets = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    await round();
    packets += BURST;
  }
  const s = (performance.now() - t0) / 1000;
  return { packets: packets / s, doorbells: lines0 === null ? null : (probe.lines() - lines0) / packets, cpu: (probe.cpuUs() - cpu0) / packets };
}

/** The native runtime: bulkhead-fw in its own process, this process the frontend over ivshmem. */
async function runNative({ Frontend, NetDriver }, emit, seconds, rings, rounds) {
  const { startNative } = await import(pathToFileURL(join(root, 'runtime', 'native', 'harness.mjs')).href);
  const { readFileSync } = await import('node:fs');
  const board = JSON.parse(readFileSync(join(root, 'boards', 'host-sim.json'), 'utf8'));
  board.devices = DEVICES;
  board.services = { ...board.services, ...SERVICES };
  const n = await startNative({ board });
  try {
    const fe = await Frontend.attach(n.port);
    const tick = 1e6 / 100; // USER_HZ
    await measure(fe, NetDriver, rings, rounds, seconds, emit, {
      lines: () => null,
      cpuUs: () => {
        const stat = readFileSync(`/proc/${n.fw.pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(f[11]) + Number(f[12])) * tick; // utime, stime (fields 14, 15)
      },
      wait: () => n.port.wait(5),
    });
  } finally {
    await n.stop();
  }
}
