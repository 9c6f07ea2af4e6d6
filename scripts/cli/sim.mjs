// `bulkhead sim`: options in define() below (docs/cli.md).
// Boots the firmware in the node runtime on a board (default host-sim; --transport replaces the
// board's transport, docs/transport.md), adds a virtio-blk device per
// --blk image, attaches the TypeScript frontend driver model and either runs your script
// (`export default async ({ sim, frontend, drivers }) => {…}`) or checks every device once and prints
// the backend's counters. --record writes a trace of everything that entered the firmware
// (`bulkhead replay` re-runs it; docs/trace-format.md).
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { importSim } from './_bundle.mjs';
import { collect, TRANSPORTS } from './_options.mjs';
import { Option } from 'commander';

export const summary = 'serve a board from the node runtime to the frontend model; run your script or check each device';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .option('--board <board>', 'board name (boards/NAME.json) or path', 'host-sim')
    .addOption(new Option('--transport <transport>', "replace the board's transport (docs/transport.md)").choices(TRANSPORTS))
    .option('--blk <image[,ro]>', 'add a virtio-blk device backed by a raw image file (repeatable; ,ro: read-only)', collect, [])
    .option('--script <file.mjs>', 'run `export default async ({ sim, frontend, drivers }) => {…}` instead of the device check')
    .option('--verbose', "print the firmware's info and debug log lines too")
    .option('--record <file.bhtrace>', 'write a trace of everything that enters the firmware (`bulkhead replay` re-runs it; docs/trace-format.md)');
}

export async function run(opts) {
  const o = { ...opts, script: opts.script ? resolve(opts.script) : null, record: opts.record ? resolve(opts.record) : null };
  const sim$ = await importSim();
  const board = sim$.loadBoard(o.board);
  if (o.transport) board.transport = o.transport;
  o.blk.forEach((spec, n) => {
    const [path, ...flags] = spec.split(',');
    if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`--blk ${path}: no such image file (create one with: truncate -s 64M ${path})`);
    const bad = flags.filter((f) => f !== 'ro');
    if (bad.length) throw new Error(`--blk ${spec}: unknown flag ${bad.join(',')} (only ,ro)`);
    const name = `disk${n}`;
    board.services[name] = { kind: 'storage', path: resolve(path), readOnly: flags.includes('ro') };
    board.devices.push({ type: 'blk', service: name });
  });
  const sim = await sim$.createSim({ board, record: o.record ?? undefined, log: (level, msg) => (level <= 1 || o.verbose) && console.error(`[fw] ${msg}`) });
  const frontend = await sim.frontend();
  const name = (id) => ({ 1: 'net', 2: 'blk', 3: 'console', 4: 'rng', 34: 'i2c', 41: 'gpio' })[id] ?? `id${id}`;
  console.log(`board ${board.name} (transport ${sim.layout.transport}): ${frontend.devices.map((d) => `${d.devNum}:${name(d.info.deviceId)}`).join(' ')}`);
  try {
    if (o.script) {
      const mod = await import(pathToFileURL(o.script).href);
      await mod.default({ sim, frontend, drivers: sim$ });
    } else {
      for (const dev of frontend.devices) {
        const kind = name(dev.info.deviceId);
        if (kind === 'rng') console.log(`  rng: ${Buffer.from(await (await sim$.RngDriver.open(dev)).read(16)).toString('hex')}`);
        else if (kind === 'console') {
          const con = await sim$.ConsoleDriver.open(dev);
          await con.write('bulkhead sim: hello\n');
          console.log(`  console: host side received ${JSON.stringify(sim.console().output())}`);
        } else if (kind === 'i2c') {
          const i2c = await sim$.I2cDriver.open(dev);
          const found = [];
          for (let a = 0x03; a <= 0x77; a++) if (await i2c.probe(a)) found.push(`0x${a.toString(16)}`);
          console.log(`  i2c${dev.devNum}: targets acknowledging: ${found.join(' ') || 'none'}`);
        } else if (kind === 'gpio') {
          const g = await sim$.GpioDriver.open(dev);
          console.log(`  gpio${dev.devNum}: ${g.ngpio} lines: ${(await g.names()).map((n, i) => n || `(${i})`).join(' ')}`);
        } else if (kind === 'blk' && sim$.BlkDriver) {
          const blk = await sim$.BlkDriver.open(dev);
          const head = await blk.read(0, Math.min(4, blk.capacity));
          // An ext2/3/4 superblock sits at byte 1024 with its magic 0xEF53 at +0x38.
          const ext = head.length >= 1024 + 0x3a && head[1024 + 0x38] === 0x53 && head[1024 + 0x39] === 0xef;
          const what = ext ? 'an ext2/3/4 filesystem' : `sector 0 starts ${Buffer.from(head.subarray(0, 16)).toString('hex')}`;
          console.log(`  blk${dev.devNum}: ${blk.capacity} sectors (${(blk.capacity / 2048).toFixed(1)} MiB)${blk.readOnly ? ', read-only' : ''}; ${what}`);
        }
      }
    }
  } finally {
    const st = sim.stats();
    for (const d of st.devices) console.log(`  dev ${d.devNum} ${d.type}: status 0x${d.status.toString(16)} ${JSON.stringify(d.counters)}`);
    sim.dispose();
    if (o.record) console.log(`trace: ${o.record} (${sim.recorder.steps} steps; replay with: npx bulkhead replay ${o.record})`);
  }
  return 0;
}
