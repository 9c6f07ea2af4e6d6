// `bulkhead demo` (`npm start`): the embedded default. The firmware bundle runs in the node runtime
// (QuickJS-WASM) on the host-sim board and serves its devices to the TypeScript frontend driver model
// across the shared window; a short workload runs on each device and the summary says what happened
// and how fast. Each device step is a function in STEPS so a new device adds one entry.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { createSim, loadBoard, RngDriver, ConsoleDriver, NetDriver, virtio } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);

const fmt = (n, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d });

/** Runs `fn` and returns its result with the wall time in seconds. */
async function timed(fn) {
  const t0 = performance.now();
  const r = await fn();
  return { r, s: (performance.now() - t0) / 1000 };
}

const STEPS = [
  {
    name: 'rng',
    deviceId: virtio.VIRTIO_ID_RNG,
    async run(sim, fe, dev) {
      const rng = await RngDriver.open(dev);
      const chunk = 4096;
      const total = 4 << 20;
      const { s } = await timed(async () => {
        for (let got = 0; got < total; ) got += (await rng.read(chunk)).length;
      });
      const sample = Buffer.from(await rng.read(16)).toString('hex');
      return `${fmt(total / 2 ** 20)} MiB of entropy in ${total / chunk} requests: ${fmt(total / 2 ** 20 / s)} MB/s, ${fmt(total / chunk / s, 0)} req/s (sample ${sample})`;
    },
  },
  {
    name: 'console',
    deviceId: virtio.VIRTIO_ID_CONSOLE,
    async run(sim, fe, dev) {
      const con = await ConsoleDriver.open(dev);
      const { cols, rows } = await con.size();
      await con.write('hello from the frontend\n');
      const hostSaw = sim.console().output();
      const trips = 500;
      const { s } = await timed(async () => {
        for (let i = 0; i < trips; i++) {
          await con.write(`ping ${i}\n`);
          sim.console().input(`pong ${i}\n`);
          const back = new TextDecoder().decode(await con.read());
          if (back !== `pong ${i}\n`) throw new Error(`console round trip ${i}: got ${JSON.stringify(back)}`);
        }
      });
      sim.console().output();
      return `${cols}x${rows}; host received ${JSON.stringify(hostSaw)}; ${trips} round trips: ${fmt((s / trips) * 1e6, 0)} µs each`;
    },
  },
  {
    name: 'net',
    deviceId: virtio.VIRTIO_ID_NET,
    async run(sim, fe, dev) {
      // two interfaces on the node runtime's virtual switch sw0: A sends bursts of 1500-byte frames to B
      const [a, b] = await Promise.all(fe.devices.filter((d) => d?.info.deviceId === virtio.VIRTIO_ID_NET).slice(0, 2).map((d) => NetDriver.open(d, { queueSize: 128 })));
      const frame = new Uint8Array(1500);
      frame.set(b.mac, 0);
      frame.set(a.mac, 6);
      frame.set([0x88, 0xb5], 12);
      const burst = 64;
      const rounds = 150;
      let got = 0;
      const { s } = await timed(async () => {
        for (let r = 0; r < rounds; r++) {
          for (let k = 0; k < burst; k++) a.queue(frame);
          await a.flush();
          got += (await b.receive()).length;
        }
      });
      if (got !== burst * rounds) throw new Error(`${got} of ${burst * rounds} frames arrived`);
      const mac = (m) => Array.from(m, (x) => x.toString(16).padStart(2, '0')).join(':');
      return `${mac(a.mac)} → ${mac(b.mac)} through switch sw0: ${got} frames of 1500 bytes, ${fmt(got / s, 0)} packets/s, ${fmt((got * 1500) / s / 1e6)} MB/s`;
    },
  },
];

export async function run(args) {
  const quiet = args.includes('--quiet');
  const t0 = performance.now();
  // host-sim's devices plus two net interfaces on the node runtime's virtual switch (net step)
  const board = loadBoard('host-sim');
  const sim = await createSim({
    devices: [...board.devices, { type: 'net', service: 'net0', mac: '52:54:00:00:00:01' }, { type: 'net', service: 'net1', mac: '52:54:00:00:00:02' }],
    services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
    log: (level, msg) => level <= 1 && console.error(`[fw] ${msg}`),
  });
  const bootMs = performance.now() - t0;
  const fe = await sim.frontend();
  console.log(`Bulkhead demo — board ${sim.board.name}: window ${sim.layout.windowSize >> 10} KiB (pool ${sim.layout.poolSize >> 10} KiB at 0x${sim.layout.poolOffset.toString(16)}), firmware in QuickJS-WASM, booted in ${fmt(bootMs, 0)} ms`);
  console.log(`devices: ${fe.devices.map((d) => `${d.devNum}:${STEPS.find((s) => s.deviceId === d.info.deviceId)?.name ?? `id${d.info.deviceId}`}`).join(' ')}`);
  let failed = false;
  for (const step of STEPS) {
    const dev = fe.find(step.deviceId);
    if (!dev) continue;
    try {
      const line = await step.run(sim, fe, dev);
      console.log(`  ${step.name.padEnd(8)} ${line}`);
    } catch (e) {
      failed = true;
      console.log(`  ${step.name.padEnd(8)} FAILED: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const st = sim.stats();
  const violations = Object.entries(st.bus).filter(([k]) => k.startsWith('violation') || k.startsWith('dropped')).reduce((a, [, v]) => a + v, 0);
  console.log(`transport: ${st.bus.messages ?? 0} messages in, ${st.bus.sent ?? 0} out; doorbells ${sim.lines.fromFrontend} to the backend, ${sim.lines.toFrontend} to the frontend; ${violations} violations`);
  if (!quiet) for (const d of st.devices) console.log(`  dev ${d.devNum} ${d.type.padEnd(8)} status 0x${d.status.toString(16)} ${JSON.stringify(d.counters)}`);
  sim.dispose();
  return failed ? 1 : 0;
}
