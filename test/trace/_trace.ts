/**
 * Shared setup of the trace suites: a recorded run of every device type (rng, console, blk on a
 * scratch image, two net devices on one switch) driven by the frontend model, and the bundle it ran.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlkDriver } from '../../frontend/drivers/blk';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { NetDriver } from '../../frontend/drivers/net';
import { RngDriver } from '../../frontend/drivers/rng';
import { PROJECT_ROOT, createSim } from '../../frontend/sim';

export const BUNDLE = readFileSync(join(PROJECT_ROOT, 'dist', 'firmware.js'), 'utf8');

/** The board the recorded run uses: host-sim plus blk and two net devices. */
export function traceBoard(disk: string) {
  return {
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'console', service: 'console0' },
      { type: 'blk', service: 'disk0' },
      { type: 'net', service: 'net0', mac: '52:54:00:aa:00:01' },
      { type: 'net', service: 'net1', mac: '52:54:00:aa:00:02' },
    ],
    services: { disk0: { kind: 'storage', path: disk, readOnly: false }, net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
  };
}

/** Records a run of every device into a fresh trace; returns its bytes (and the file, removed by `done`). */
export async function recordWorkload(bundle = BUNDLE): Promise<{ bytes: Uint8Array; path: string; done(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-trace-'));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, new Uint8Array(1 << 20));
  const path = join(dir, 'run.bhtrace');
  const sim = await createSim({ ...traceBoard(disk), bundle, record: path, log: () => {} });
  try {
    const fe = await sim.frontend();
    const rng = await RngDriver.open(fe.find(4)!);
    await rng.read(32);
    const con = await ConsoleDriver.open(fe.devices[1]!);
    await con.write('hello trace\n');
    sim.console().input('typed\n');
    const blk = await BlkDriver.open(fe.devices[2]!);
    await blk.write(8, new Uint8Array(1024).fill(0x5a));
    await blk.flush();
    await blk.read(8, 2);
    const n0 = await NetDriver.open(fe.devices[3]!);
    const n1 = await NetDriver.open(fe.devices[4]!);
    const frame = new Uint8Array(60);
    frame.set([0x52, 0x54, 0, 0xaa, 0, 2, 0x52, 0x54, 0, 0xaa, 0, 1, 0x08, 0x00]);
    await n0.send([frame]);
    await n1.receive();
    sim.stats();
  } finally {
    sim.dispose();
  }
  return { bytes: readFileSync(path), path, done: () => rmSync(dir, { recursive: true, force: true }) };
}
