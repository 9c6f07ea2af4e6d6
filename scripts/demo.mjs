// The embedded default (`npm start`, `bulkhead demo`; scripts/cli/demo.mjs is its command line). The firmware bundle runs in the node runtime
// (QuickJS-WASM) on the host-sim board (or --board B, on its transport or the one --transport names) and serves its devices to the TypeScript frontend driver model
// across the shared window; a short workload runs on each device and the summary says what happened
// and how fast. Each device step is a function in STEPS so a new device adds one entry.
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importSim } from './cli/_bundle.mjs';

const { createSim, loadBoard, RngDriver, ConsoleDriver, NetDriver, BlkDriver, VsockDriver, I2cDriver, GpioDriver, virtio } = await importSim();

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
  {
    name: 'blk',
    deviceId: virtio.VIRTIO_ID_BLOCK,
    async run(sim, fe, dev) {
      // a 16 MiB temporary image: write 4 MiB in 64 KiB requests (8 in flight), flush, read back and verify
      const blk = await BlkDriver.open(dev, { queueDepth: 8 });
      const chunk = 65536;
      const total = 4 << 20;
      const n = total / chunk;
      const data = (k) => new Uint8Array(chunk).map((_, i) => (i * 7 + k * 31) & 0xff);
      const w = await timed(() => blk.run(Array.from({ length: n }, (_, k) => ({ type: 1, sector: (k * chunk) / 512, data: data(k) }))));
      await blk.flush();
      const r = await timed(() => blk.run(Array.from({ length: n }, (_, k) => ({ type: 0, sector: (k * chunk) / 512, len: chunk }))));
      r.r.forEach((x, k) => {
        if (x.status !== 0 || !Buffer.from(x.data).equals(Buffer.from(data(k)))) throw new Error(`read-back of block ${k} differs`);
      });
      const q = 4096;
      const rr = await timed(() => blk.run(Array.from({ length: 4096 }, (_, k) => ({ type: 0, sector: ((k * 7919) % (blk.capacity / 8)) * 8, len: q }))));
      return `${blk.capacity} sectors, id "${await blk.getId()}": wrote ${fmt(total / 2 ** 20)} MiB at ${fmt(total / w.s / 1e6)} MB/s, read back and verified at ${fmt(total / r.s / 1e6)} MB/s; 4 KiB random reads QD8: ${fmt(4096 / rr.s, 0)} IOPS`;
    },
  },
  {
    name: 'vsock',
    deviceId: virtio.VIRTIO_ID_VSOCK,
    async run(sim, fe, dev) {
      // guest CID 3 ↔ host: an echo program on host port 5000 (native: the unix socket <uds>_5000), and a
      // host client reaching a listening guest port (native: CONNECT 7000 on <uds>)
      const host = sim.vsock();
      host.listen(5000, (c) => (c.onData = (cc) => cc.write(cc.read())));
      const vs = await VsockDriver.open(dev);
      const sock = await vs.connect(5000);
      const total = 4 << 20;
      const pattern = (from, n) => new Uint8Array(n).map((_, i) => ((from + i) * 131 + ((from + i) >> 9)) & 0xff);
      let sent = 0;
      let got = 0;
      const { s } = await timed(() =>
        vs.until(
          () => {
            if (sent < total && sock.txPending < 256 * 1024) {
              const n = Math.min(65536, total - sent);
              sock.send(pattern(sent, n));
              sent += n;
            }
            const r = sock.read();
            if (!Buffer.from(r).equals(Buffer.from(pattern(got, r.length)))) throw new Error(`vsock echo differs at byte ${got}`);
            got += r.length;
            return got === total;
          },
          60000,
          () => `vsock: ${got} of ${total} bytes echoed`,
        ),
      );
      await sock.close();
      const listener = vs.listen(7000);
      const client = host.connectToGuest(7000);
      const gs = await listener.accept();
      await vs.until(() => client.state === 'open', 2000, () => 'the host client was not accepted');
      client.write('hello guest');
      const hello = new TextDecoder().decode(await gs.readExactly(11));
      const c = sim.stats().devices[dev.devNum].counters;
      return `guest CID ${vs.guestCid}: ${fmt(total / 2 ** 20)} MiB echoed by a host program on port 5000 and verified, ${fmt((2 * total) / s / 1e6)} MB/s both ways (${c.creditUpdates ?? 0} credit updates); host client → guest port 7000 as host port ${client.localPort}: "${hello}"`;
    },
  },
  {
    name: 'i2c',
    deviceId: virtio.VIRTIO_ID_I2C_ADAPTER,
    async run(sim, fe, dev) {
      // an i2cdetect-style scan, the 24C02 written page by page and read back, the sensor's registers
      const i2c = await I2cDriver.open(dev);
      const found = [];
      for (let a = 0x03; a <= 0x77; a++) if (await i2c.probe(a)) found.push(`0x${a.toString(16)}`);
      const data = Uint8Array.from({ length: 256 }, (_, i) => (i * 37 + 11) & 0xff);
      for (let p = 0; p < 256; p += 8) await i2c.writeRegisters(0x50, p, data.subarray(p, p + 8));
      const back = await i2c.readRegisters(0x50, 0, 256);
      if (!Buffer.from(back).equals(Buffer.from(data))) throw new Error('EEPROM read-back differs');
      const regs = await i2c.readRegisters(0x48, 0, 8);
      const long = await i2c.transfer([{ addr: 0x48, write: Uint8Array.of(0) }, { addr: 0x48, read: 9 }]);
      const n = 500;
      const { s } = await timed(async () => {
        for (let k = 0; k < n; k++) await i2c.readRegisters(0x48, 0, 2);
      });
      const c = (((regs[0] << 24) >> 24) + regs[1] / 256).toFixed(2);
      return `targets ${found.join(' ')} (scan of 117 addresses); 24c02: 256 bytes in 32 page writes, read back and verified (in its file); sensor ID 0x${regs[7].toString(16)}, ${c} °C; a 9-byte read of its 8 registers: ${long.completed} of 2 messages, clean NACK; register reads: ${fmt((s / n) * 1e6, 0)} µs per transaction`;
    },
  },
  {
    name: 'gpio',
    deviceId: virtio.VIRTIO_ID_GPIO,
    async run(sim, fe, dev) {
      // named lines; the guest drives LED0 (the host sees it); host edges on BUTTON0 reach the guest as interrupts
      const g = await GpioDriver.open(dev);
      const names = await g.names();
      await g.output(0, 1);
      const led = sim.gpio().get('LED0');
      await g.setIrqType(1, virtio.VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
      const n = 500;
      let irqs = 0;
      const { s } = await timed(async () => {
        for (let k = 0; k < n; k++) {
          await g.arm(1);
          sim.gpio().set('BUTTON0', (k + 1) & 1);
          irqs += g.events().filter((e) => e.status === virtio.VIRTIO_GPIO_IRQ_STATUS_VALID).length;
        }
      });
      if (irqs !== n) throw new Error(`${irqs} of ${n} interrupts arrived`);
      return `${names.length} lines (${names.map((x) => x || '-').join(' ')}); LED0 driven ${led.value} by the guest, seen by the host (${led.direction}); ${n} host edges on BUTTON0 → ${irqs} interrupts, ${fmt((s / n) * 1e6, 0)} µs from edge to interrupt (re-armed each time)`;
    },
  },
];

export async function run({ quiet, board: boardName = 'host-sim', transport: named }) {
  const t0 = performance.now();
  // host-sim's devices (or the named board's) plus two net interfaces on the node runtime's virtual
  // switch (net step), a disk (blk step), a vsock device whose host side is the node runtime's in-memory
  // host (vsock step), an i2c bus and gpio lines
  const board = loadBoard(boardName);
  const transport = named ?? board.transport ?? 'msg';
  // blk step: a sparse 16 MiB temporary image (in /dev/shm when there is one), removed at the end
  const imgDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-demo-'));
  const img = join(imgDir, 'disk.img');
  const fd = openSync(img, 'w');
  ftruncateSync(fd, 16 << 20);
  closeSync(fd);
  const sim = await createSim({
    board,
    transport,
    devices: [
      ...board.devices,
      { type: 'net', service: 'net0', mac: '52:54:00:00:00:01' },
      { type: 'net', service: 'net1', mac: '52:54:00:00:00:02' },
      { type: 'blk', service: 'disk0' },
      { type: 'vsock', service: 'vsock0', guestCid: 3 },
      { type: 'i2c', service: 'i2c0' },
      { type: 'gpio', service: 'gpio0' },
    ],
    services: {
      net0: { kind: 'packet', switch: 'sw0' },
      net1: { kind: 'packet', switch: 'sw0' },
      disk0: { kind: 'storage', path: img, readOnly: false },
      vsock0: { kind: 'vsock', uds: 'vsock.sock' },
      // i2c step: a 24C02 whose contents file lives with the disk image, and a temperature sensor
      i2c0: { kind: 'i2c', targets: [{ name: 'eeprom0', type: '24c02', address: 0x50, path: join(imgDir, 'eeprom.bin') }, { name: 'temp0', type: 'temperature-sensor', address: 0x48, celsius: 23.5 }] },
      gpio0: { kind: 'gpio', lines: ['LED0', 'BUTTON0', 'RESET_N', 'ALERT_N', '', '', '', ''] },
    },
    log: (level, msg) => level <= 1 && console.error(`[fw] ${msg}`),
  });
  const bootMs = performance.now() - t0;
  const fe = await sim.frontend();
  console.log(`Bulkhead demo — board ${sim.board.name}, transport ${sim.layout.transport}: window ${sim.layout.windowSize >> 10} KiB (pool ${sim.layout.poolSize >> 10} KiB at 0x${sim.layout.poolOffset.toString(16)}), firmware in QuickJS-WASM, booted in ${fmt(bootMs, 0)} ms`);
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
  const wire = { msg: `${st.bus.messages ?? 0} messages in, ${st.bus.sent ?? 0} out`, regblock: `${st.bus.transactions ?? 0} register transactions`, mmio: `${st.bus.records ?? 0} access records` }[sim.layout.transport];
  console.log(`transport ${sim.layout.transport}: ${wire}; doorbells ${sim.lines.fromFrontend} to the backend, ${sim.lines.toFrontend} to the frontend; ${violations} violations`);
  if (!quiet) for (const d of st.devices) console.log(`  dev ${d.devNum} ${d.type.padEnd(8)} status 0x${d.status.toString(16)} ${JSON.stringify(d.counters)}`);
  sim.dispose();
  rmSync(imgDir, { recursive: true, force: true });
  return failed ? 1 : 0;
}
