// virtio-i2c and virtio-gpio scenarios on the node runtime, with the bus PING round trip measured in the
// same run as the baseline (one doorbell each way, nothing else):
//   bus-ping-baseline   PING round trips (µs each)
//   i2c-regread         a register-pointer write and a 2-byte read in one transaction (what i2cget does):
//                       transactions/s, µs each, doorbells per transaction, backend CPU per transaction
//   i2c-eeprom-page     an 8-byte 24C02 page write (pwrite + fdatasync of its file in /dev/shm at the STOP)
//   gpio-edge-irq       the host drives an input, the enabled EDGE_BOTH interrupt reaches the driver, the
//                       driver re-arms: µs per edge, backend CPU per edge
// `--lowspeed-seconds S` sets the time per scenario (default 1).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { backendCpu } from './_backend-cpu.mjs';
import { positive } from '../cli/_options.mjs';

export const runtimes = ['node'];
export const options = [['--lowspeed-seconds <s>', 'measured seconds per lowspeed scenario', positive, 1]];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function run({ emit, opts }) {
  const { createSim, I2cDriver, GpioDriver, virtio } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  const seconds = opts.lowspeedSeconds;
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-bench-lowspeed-'));
  const sim = await createSim({
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'i2c', service: 'i2c0' },
      { type: 'gpio', service: 'gpio0' },
    ],
    services: {
      i2c0: { kind: 'i2c', targets: [{ name: 'eeprom0', type: '24c02', address: 0x50, path: join(dir, 'eeprom.bin') }, { name: 'temp0', type: 'temperature-sensor', address: 0x48 }] },
      gpio0: { kind: 'gpio', lines: ['LED0', 'BUTTON0'] },
    },
    log: (level, msg) => level <= 1 && console.error(`[fw] ${msg}`),
  });
  try {
    const backendUs = backendCpu(sim);
    const fe = await sim.frontend();
    /** Runs `op` for `seconds` after a warm-up; returns operations, seconds, doorbells and backend µs per op. */
    const timed = async (op) => {
      for (let k = 0; k < 50; k++) await op(k);
      const lines0 = { ...sim.lines };
      const cpu0 = backendUs();
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) await op(n++);
      const s = (performance.now() - t0) / 1000;
      return { n, s, doorbells: (sim.lines.fromFrontend - lines0.fromFrontend + sim.lines.toFrontend - lines0.toFrontend) / n, cpu: (backendUs() - cpu0) / n };
    };

    const ping = await timed((k) => fe.ping(k));
    emit('bus-ping-baseline', 'rtt', (ping.s / ping.n) * 1e6, 'us');

    const i2c = await I2cDriver.open(fe.find(virtio.VIRTIO_ID_I2C_ADAPTER));
    const rr = await timed(() => i2c.readRegisters(0x48, 0, 2));
    emit('i2c-regread', 'transactions', rr.n / rr.s, '1/s');
    emit('i2c-regread', 'latency', (rr.s / rr.n) * 1e6, 'us');
    emit('i2c-regread', 'doorbells-per-transaction', rr.doorbells, '1');
    emit('i2c-regread', 'backend-cpu-per-transaction', rr.cpu, 'us');
    const page = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const pw = await timed((k) => i2c.writeRegisters(0x50, (k * 8) & 0xff, page));
    emit('i2c-eeprom-page', 'transactions', pw.n / pw.s, '1/s');
    emit('i2c-eeprom-page', 'backend-cpu-per-transaction', pw.cpu, 'us');

    const g = await GpioDriver.open(fe.find(virtio.VIRTIO_ID_GPIO));
    await g.setIrqType(1, virtio.VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    const gpio = sim.gpio('gpio0');
    let level = 0;
    const edge = await timed(async () => {
      await g.arm(1);
      level ^= 1;
      gpio.set('BUTTON0', level);
      if (g.events().length !== 1) throw new Error('gpio-edge-irq: the edge did not reach the driver');
    });
    emit('gpio-edge-irq', 'latency', (edge.s / edge.n) * 1e6, 'us');
    emit('gpio-edge-irq', 'backend-cpu-per-edge', edge.cpu, 'us');
  } finally {
    sim.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
