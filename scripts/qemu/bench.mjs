// `bulkhead bench qemu`: a QEMU (TCG) guest's view of a Bulkhead virtio-blk disk (the native backend,
// across the ivshmem window, every buffer bounced by frontend/linux) against QEMU's own virtio-blk-pci,
// in the same guest and the same run. Same shape as scripts/bench/*.mjs (scripts/bench/qemu.mjs
// re-exports it). Two guest runs:
//   dd    dd O_DIRECT, 1 MiB blocks (scenario `bench`): throughput, where the guest's bounce copy dominates
//   iops  4 KiB random read and write at QD1 and QD32, O_DIRECT, io_uring (scenario `bench-iops`,
//         test/qemu/tools/bhq-blkio): IOPS and p50/p99 latency, the Bulkhead disk under each storage
//         configuration in turn (default async-direct, sync-direct) and QEMU's disk
//         (cache=none,aio=io_uring), alternating run by run (--qemu-rounds of each); both images written
//         through, in one host folder. Figures are the median over the rounds, ratios the median of each
//         round's ratio. Also the backend's CPU and bounced requests per request of each configuration
//         (its [fw] lines).
import { median } from '../bench/_shared.mjs';
import { runQemu, STORAGE_CONFIGS } from './run.mjs';

export const runtimes = ['native'];

export const options = [
  ['--qemu-only <which>', 'dd or iops (default: both guest runs)'],
  ['--qemu-seconds <s>', 'seconds of each 4 KiB run, after 1 s of ramp (default 5)'],
  ['--qemu-rounds <n>', 'runs of each 4 KiB workload on each disk, alternating (default 3)'],
  ['--qemu-storage <list>', `the Bulkhead disk's storage configurations for the 4 KiB runs, comma-separated: ${Object.keys(STORAGE_CONFIGS).join(', ')} (default async-direct,sync-direct)`],
  ['--qemu-modparams <p=v,…>', 'more bulkhead_ivshmem.ko parameters for the guest runs (e.g. data_align=64: the pool alignment before issue 16)'],
  ['--qemu-image-dir <dir>', 'the host folder of both disk images (default: the run directory, on the disk under .cache/qemu)'],
];

export async function run({ runtime = 'native', emit, opts }) {
  const only = opts.qemuOnly;
  if (only && only !== 'dd' && only !== 'iops') throw new Error(`--qemu-only must be dd or iops, not ${only}`);
  const quiet = !!opts.json;
  const modparams = opts.qemuModparams;
  if (modparams && !/^\w+=\w+(,\w+=\w+)*$/.test(modparams)) throw new Error(`--qemu-modparams: P=V[,P=V…], not ${modparams}`);
  const extra = modparams ? { modparams } : {};
  if (only !== 'iops') await dd(emit, quiet, extra);
  if (only !== 'dd') {
    const seconds = Number(opts.qemuSeconds ?? 5);
    if (!(seconds > 0 && seconds <= 600)) throw new Error('--qemu-seconds must be in (0, 600]');
    const rounds = Number(opts.qemuRounds ?? 3);
    if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) throw new Error('--qemu-rounds must be an integer in 1..20');
    const configs = (opts.qemuStorage ?? 'async-direct,sync-direct').split(',').filter(Boolean);
    await iops(emit, quiet, { seconds, rounds, configs, imageDir: opts.qemuImageDir, extra });
  }
  void runtime;
}

async function guest(scenario, quiet, extra = {}) {
  const r = await runQemu({ scenarios: [scenario], peer: 'native', quiet, ...extra });
  if (!r.pass) throw new Error(`qemu ${scenario} failed: ${r.error ?? JSON.stringify(r.scenarios[scenario] ?? {})} (guest console log: ${r.consoleLog})`);
  return r;
}

async function dd(emit, quiet, extra) {
  const r = await guest('bench', quiet, extra);
  if (!r.console?.bench?.length) throw new Error(`qemu bench reported no figures (guest console log: ${r.consoleLog})`);
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
}

async function iops(emit, quiet, { seconds, rounds, configs, imageDir, extra }) {
  const r = await guest('bench-iops', quiet, { ...extra, benchSeconds: seconds, benchRounds: rounds, benchConfigs: configs, imageDir });
  const rows = r.console?.iops ?? [];
  const runs = (label, rw, qd) => rows.filter((x) => x.label === label && x.rw === rw && x.qd === qd);
  for (const cfg of configs) {
    for (const rw of ['randread', 'randwrite']) {
      for (const qd of [1, 32]) {
        const bh = runs(`bulkhead-${cfg}`, rw, qd);
        const ref = runs(`qemu-beside-${cfg}`, rw, qd);
        if (bh.length !== rounds || ref.length !== rounds) throw new Error(`bench-iops: ${bh.length} + ${ref.length} runs of ${cfg} ${rw} qd${qd}, expected ${rounds} each (guest console log: ${r.consoleLog})`);
        const s = (who) => `qemu-${who}-${rw}-4k-qd${qd}`;
        for (const [who, xs] of [[`bulkhead-${cfg}`, bh], [`virtio-blk-pci-beside-${cfg}`, ref]]) {
          emit(s(who), 'iops', round(median(xs.map((x) => x.iops)), 0), 'IOPS');
          emit(s(who), 'lat-p50', round(median(xs.map((x) => x.p50))), 'µs');
          emit(s(who), 'lat-p99', round(median(xs.map((x) => x.p99))), 'µs');
        }
        // round i of the Bulkhead disk ran just before round i of QEMU's
        const ratio = (k) => round(median(bh.map((x, i) => x[k] / ref[i][k])), 3);
        emit(s(`bulkhead-${cfg}`), 'iops-vs-qemu', ratio('iops'), 'x');
        emit(s(`bulkhead-${cfg}`), 'p50-vs-qemu', ratio('p50'), 'x');
        emit(s(`bulkhead-${cfg}`), 'p99-vs-qemu', ratio('p99'), 'x');
      }
    }
    // what the backend spent and bounced serving this configuration (from its [fw] lines)
    const fw = r.fwStats?.find((f) => f.config === cfg);
    const blk = fw?.stats?.devices?.find((d) => d.type === 'blk')?.counters;
    const st = fw?.storage?.disk0;
    const reqs = blk ? (blk.reads ?? 0) + (blk.writes ?? 0) : 0;
    if (reqs > 0) {
      emit(`qemu-bulkhead-${cfg}`, 'backend-cpu-per-request', round((fw.cpuS * 1e6) / reqs, 2), 'µs');
      if (st) {
        emit(`qemu-bulkhead-${cfg}`, 'bounced', st.bounced, 'requests');
        emit(`qemu-bulkhead-${cfg}`, 'bounced-per-request', round(st.bounced / reqs, 4), 'x');
      }
    }
  }
}

function round(v, d = 1) {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}
