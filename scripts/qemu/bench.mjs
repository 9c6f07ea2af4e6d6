// `bulkhead bench qemu`: dd throughput in a QEMU guest on a Bulkhead virtio-blk disk (the native
// backend, across the ivshmem window, every buffer bounced) against QEMU's own virtio-blk-pci over
// the same kind of image file, in the same guest and the same run. Same shape as scripts/bench/*.mjs:
// scripts/bench/qemu.mjs is `export * from '../qemu/bench.mjs'` (run it as `npx bulkhead bench qemu --runtime native`).
import { runQemu } from './run.mjs';

export const runtimes = ['native'];

export async function run({ runtime = 'native', emit, opts }) {
  const r = await runQemu({ scenarios: ['bench'], peer: 'native', quiet: opts.json });
  if (!r.pass || !r.console?.bench?.length) {
    throw new Error(`qemu bench failed: ${r.error ?? JSON.stringify(r.scenarios.bench ?? {})} (guest console log: ${r.consoleLog})`);
  }
  const best = {};
  for (const b of r.console.bench) {
    const mbs = b.s > 0 ? b.mb / b.s : 0;
    const k = `${b.disk}/${b.op}`;
    best[k] = Math.max(best[k] ?? 0, mbs);
  }
  for (const op of ['write', 'read']) {
    const scenario = `qemu-dd-${op}-1m-direct`;
    const bh = best[`bulkhead/${op}`];
    const ref = best[`qemu/${op}`];
    if (bh !== undefined) emit(scenario, 'bulkhead-virtio-blk', round(bh), 'MB/s');
    if (ref !== undefined) emit(scenario, 'qemu-virtio-blk-pci', round(ref), 'MB/s');
    if (bh !== undefined && ref) emit(scenario, 'ratio-bulkhead/qemu', round(bh / ref, 3), 'x');
  }
  void runtime;
}

function round(v, d = 1) {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}
