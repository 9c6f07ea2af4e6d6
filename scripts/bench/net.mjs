// virtio-net scenarios: two net devices on one host-sim board, connected by the node runtime's virtual
// switch; the frontend driver model sends from interface A and receives on interface B.
//   net-64b     64-byte frames (minimum Ethernet), bursts of BURST per doorbell
//   net-1500b   1500-byte frames
// Figures: packets/s and MB/s (frame bytes, A's transmit to B's receive, both frontends' work included,
// everything on one thread), doorbells-per-packet (both directions) and backend-cpu-per-packet
// (process.cpuUsage over the calls into the firmware only). `--net-seconds S` sets the time per scenario.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['node'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BURST = 64;

export async function run({ emit, args = [] }) {
  const { createSim, NetDriver } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const i = args.indexOf('--net-seconds');
  const seconds = i >= 0 ? Number(args[i + 1]) : 1;
  const sim = await createSim({
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'console', service: 'console0' },
      { type: 'net', service: 'net0', mac: '52:54:00:00:00:01' },
      { type: 'net', service: 'net1', mac: '52:54:00:00:00:02' },
    ],
    services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
    log: (level, msg) => level <= 1 && console.error(`[fw] ${msg}`),
  });
  const rt = sim.runtime;
  const call = rt.call.bind(rt);
  let backendUs = 0;
  rt.call = (...a) => {
    const c0 = process.cpuUsage();
    const r = call(...a);
    const c = process.cpuUsage(c0);
    backendUs += c.user + c.system;
    return r;
  };
  const fe = await sim.frontend();
  const a = await NetDriver.open(fe.devices[2], { queueSize: 256 });
  const b = await NetDriver.open(fe.devices[3], { queueSize: 256 });
  for (const size of [64, 1500]) {
    const frame = new Uint8Array(size);
    frame.set(b.mac, 0);
    frame.set(a.mac, 6);
    frame[12] = 0x88;
    frame[13] = 0xb5;
    const round = async () => {
      for (let k = 0; k < BURST; k++) a.queue(frame);
      await a.flush();
      let got = 0;
      for (let tries = 0; got < BURST && tries < 8; tries++) got += (await b.receive()).length;
      if (got !== BURST) throw new Error(`net bench: ${got} of ${BURST} frames arrived`);
    };
    for (let w = 0; w < 20; w++) await round(); // warm up (JIT, rings)
    const lines0 = sim.lines.fromFrontend + sim.lines.toFrontend;
    backendUs = 0;
    let packets = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      await round();
      packets += BURST;
    }
    const s = (performance.now() - t0) / 1000;
    const name = `net-${size}b`;
    emit(name, 'packets', Math.round(packets / s), '1/s');
    emit(name, 'throughput', (packets * size) / s / 1e6, 'MB/s');
    emit(name, 'doorbells-per-packet', (sim.lines.fromFrontend + sim.lines.toFrontend - lines0) / packets, '1');
    emit(name, 'backend-cpu-per-packet', backendUs / packets, 'us');
  }
  sim.dispose();
}
