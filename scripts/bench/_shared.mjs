// Shared by the bench scenarios (files starting with `_` are helpers, not scenarios).
import { InvalidArgumentError } from 'commander';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { count, nonNegative, positive } from '../cli/_options.mjs';

/** The board the net scenarios use: host-sim's rng and console plus two net devices on switch sw0. */
export const TWO_NICS = {
  devices: [
    { type: 'rng', service: 'entropy0' },
    { type: 'console', service: 'console0' },
    { type: 'net', service: 'net0', mac: '52:54:00:00:00:01' },
    { type: 'net', service: 'net1', mac: '52:54:00:00:00:02' },
  ],
  services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
};

/** The options every loadgen scenario takes (bench's --help lists them once). */
export const LOADGEN_OPTIONS = [
  ['--loadgen-seconds <s>', 'measured seconds per loadgen scenario, after a warm-up of S/5', positive, 1],
  ['--spin', 'the loadgen spins instead of sleeping on its eventfd'],
  ['--pin', 'backend on CPU 0, loadgen on CPU 1 (helps only on an otherwise idle machine)'],
  ['--busy-poll <us>', 'the firmware polls that long after each event before sleeping (bulkhead-fw --busy-poll)', nonNegative, 0],
];

/** The loadgen options as the seconds, the extra loadgen arguments and the extra firmware arguments. */
export function loadgenOptions(opts) {
  const extra = [...(opts.spin ? ['--spin'] : []), ...(opts.pin ? ['--cpu', '1', '--pin-backend', '0'] : [])];
  const fwArgs = opts.busyPoll > 0 ? ['--busy-poll', String(opts.busyPoll)] : [];
  return { seconds: opts.loadgenSeconds, extra, fwArgs };
}

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(xs) {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** `--ring` as commander parses it: a comma-separated list of split and packed, checked here. */
function ringFormats(v) {
  for (const r of v.split(',')) if (r !== 'split' && r !== 'packed') throw new InvalidArgumentError('expected split, packed or split,packed');
  return v;
}

/**
 * `--ring split|packed|split,packed` (default split): the virtqueue formats a scenario measures, side by
 * side in one run (rings(opts) is the list). Split rows keep the plain scenario name, so existing figures
 * keep theirs; packed rows are `<scenario>-packed` (ringScenario).
 */
export const RING_OPTION = ['--ring <formats>', 'virtqueue format(s) measured side by side in one run: split, packed or split,packed (packed rows are named <scenario>-packed)', ringFormats, 'split'];

/** `--rounds N`: runs per ring format and load point, the formats alternated round by round (medians). */
export const ROUNDS_OPTION = ['--rounds <n>', 'runs per ring format and load point, the formats alternated round by round; the figures are the medians', count, 3];

/**
 * Runs `once(ring)` `rounds` times per ring format, alternating the order round by round (so a drift of the
 * machine's load hits every format alike); returns each format's results.
 */
export async function alternated(rings, rounds, once) {
  const runs = Object.fromEntries(rings.map((r) => [r, []]));
  for (let k = 0; k < rounds; k++) for (const ring of k % 2 ? [...rings].reverse() : rings) runs[ring].push(await once(ring));
  return runs;
}


/** The ring formats `--ring` asked for, in its order. */
export const ringList = (opts) => opts.ring.split(',');

/** The scenario name for `ring` (`name` for split, `name-packed` for packed). */
export function ringScenario(name, ring) {
  return ring === 'split' ? name : `${name}-${ring}`;
}

/** Writes an image whose every 4 KiB block holds its number (what the loadgen's --verify checks), in chunks. */
export function numberedImage(path, bytes) {
  const chunk = 64 << 20;
  const fd = openSync(path, 'w');
  try {
    for (let off = 0; off < bytes; off += chunk) {
      const b = Buffer.alloc(Math.min(chunk, bytes - off));
      for (let k = 0; k < b.length; k += 4096) b.writeBigUInt64LE(BigInt((off + k) / 4096), k);
      writeSync(fd, b, 0, b.length, off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * One bulkhead-loadgen run against the native firmware `n` (runtime/native/harness.mjs startNative): the
 * loadgen's JSON plus, from the firmware's `[fw] calls` counters before and after, jsUsPerOp (time inside
 * the calls into the bundle, i.e. the JS pass, per request) and passesPerOp (calls into the bundle per
 * request: how many requests one pass serves). The warm-up is in both the counters and the loadgen's
 * opsTotal, so the ratios hold.
 */
export async function loadgenRun(n, runToEnd, loadgen, mode, args) {
  const before = await n.callTimes();
  const r = await runToEnd(loadgen, [n.socket, mode, ...args, '--backend-pid', String(n.fw.pid)]);
  if (r.code !== 0) throw new Error(`bulkhead-loadgen ${mode} ${args.join(' ')}: ${r.stderr.trim()}`);
  const after = await n.callTimes();
  const j = JSON.parse(r.stdout);
  let us = 0;
  let calls = 0;
  for (const k of Object.keys(after)) {
    us += after[k].us - (before[k]?.us ?? 0);
    calls += after[k].calls - (before[k]?.calls ?? 0);
  }
  j.jsUsPerOp = us / j.opsTotal;
  j.passesPerOp = calls / j.opsTotal;
  return j;
}
