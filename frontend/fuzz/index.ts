/**
 * `bulkhead fuzz`: the structure-aware fuzzer as a library (scripts/cli/fuzz.mjs is its command line,
 * test/fuzz/ replays its corpus). Users can point it at their own boards and device models.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceManifestEntry } from '../../firmware/hal';
import { createSim, loadBoard } from '../sim';
import type { FuzzCase, FuzzContext, Finding } from './engine';
import { MemoryVsockHost } from '../../runtime/node/vsock';
import { ARENA, AUX_RX, FUZZ_GPIO_LINES, FUZZ_VSOCK_CID, FUZZ_VSOCK_LISTEN, MAX_PASSES_PER_DOORBELL, generate, minimise, runCaseSafe, targetsFor, transportFor } from './engine';
import type { TransportKind } from '../layout';
import { RawDriver } from './raw';

export type { FuzzCase, Finding, FuzzContext, RegOp } from './engine';
export { ARENA, AUX_RX, generate, minimise, runCase, runCaseSafe, targetsFor, transportFor } from './engine';
export { PackedRawRing, RawDriver, Ring, message } from './raw';
export { le32, PackedRing, SplitRing } from './ring';
export { Rand } from './rand';

/**
 * A fuzz sim: host-sim plus blk (a scratch image), net, vsock (a host that echoes on FUZZ_VSOCK_LISTEN),
 * i2c (a scratch EEPROM) and gpio, so every device type is a target; on `transport` (default msg);
 * `record` writes a trace of it (docs/trace-format.md).
 */
export async function fuzzContext(opts: { board?: string; devices?: DeviceManifestEntry[]; transport?: TransportKind; record?: string } = {}): Promise<FuzzContext & { dispose(): void }> {
  const board = loadBoard(opts.board);
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bulkhead-fuzz-'));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, new Uint8Array(1 << 20));
  board.devices = opts.devices ?? [
    ...board.devices,
    { type: 'blk', service: 'fuzzdisk' },
    { type: 'net', service: 'fuzznet' },
    { type: 'vsock', service: 'fuzzvsock', guestCid: FUZZ_VSOCK_CID },
    { type: 'i2c', service: 'fuzzi2c' },
    { type: 'gpio', service: 'fuzzgpio' },
  ];
  board.services = {
    ...board.services,
    fuzzdisk: { kind: 'storage', path: disk, readOnly: false },
    fuzznet: { kind: 'packet', switch: 'fuzz' },
    fuzzvsock: { kind: 'vsock', uds: 'fuzz.sock' },
    fuzzi2c: { kind: 'i2c', targets: [{ name: 'fuzzeeprom', type: '24c02', address: 0x50, path: join(dir, 'eeprom.bin') }, { name: 'fuzztemp', type: 'temperature-sensor', address: 0x48 }] },
    fuzzgpio: { kind: 'gpio', lines: FUZZ_GPIO_LINES },
  };
  if (opts.transport) board.transport = opts.transport;
  const vsockHost = new MemoryVsockHost({ socketBuffer: 8192 });
  for (const port of FUZZ_VSOCK_LISTEN) vsockHost.listen(port, (c) => (c.onData = (cc) => cc.write(cc.read())));
  const sim = await createSim({ board, maxPasses: MAX_PASSES_PER_DOORBELL, log: () => {}, record: opts.record, vsock: { fuzzvsock: vsockHost } });
  const ctx = { sim, drv: new RawDriver(sim), devices: board.devices.map((d) => d.type), arena: sim.layout.poolOffset, transport: sim.layout.transport };
  if (AUX_RX.end > sim.layout.poolSize || ARENA.size > sim.layout.poolSize) throw new Error('pool too small for the fuzz arena');
  return {
    ...ctx,
    dispose: () => {
      sim.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One minimised finding. */
export interface SavedFinding {
  target: string;
  case: number;
  finding: Finding;
  input: FuzzCase;
}

export interface FuzzRunOptions {
  target: string;
  cases: number;
  seed: number;
  /** Minimise findings (default true). */
  minimise?: boolean;
  /** Called for progress lines. */
  log?: (line: string) => void;
  /** Stop generating after this many seconds, even if fewer than `cases` ran. */
  seconds?: number;
  /** Findings already reported (keys from `findingKey`): a campaign shares one set across rounds. */
  seen?: Set<string>;
  /** Called after each case with the number run so far (progress output). */
  onCase?: (done: number) => void;
}

/** What makes two findings "the same": invariant plus detail with numbers blurred. */
export function findingKey(f: Finding): string {
  return `${f.invariant}:${f.detail.replace(/[0-9a-fx]{2,}/g, '#')}`;
}

/**
 * Runs `cases` generated cases of one target; returns throughput and minimised findings. A given
 * context is used when it speaks the target's transport; otherwise the run makes its own.
 */
export async function fuzz(opts: FuzzRunOptions, ctx?: FuzzContext): Promise<{ cases: number; seconds: number; casesPerSecond: number; findings: SavedFinding[] }> {
  const mine = !ctx || ctx.transport !== transportFor(opts.target);
  const own = mine ? await fuzzContext({ transport: transportFor(opts.target) }) : null;
  const c = own ?? ctx!;
  try {
    const targets = targetsFor(c.devices);
    if (!targets.includes(opts.target)) throw new Error(`no fuzz target '${opts.target}' (have: ${targets.join(', ')})`);
    const findings: SavedFinding[] = [];
    const seen = opts.seen ?? new Set<string>();
    const t0 = performance.now();
    const until = opts.seconds === undefined ? Infinity : t0 + opts.seconds * 1000;
    let n = 0;
    for (; n < opts.cases && performance.now() < until; n++) {
      const input = generate(c, opts.target, opts.seed, n);
      opts.onCase?.(n + 1);
      for (const f of runCaseSafe(c, input)) {
        const key = findingKey(f);
        if (seen.has(key)) continue;
        seen.add(key);
        const small = opts.minimise === false ? input : minimise(c, input, f.invariant);
        findings.push({ target: opts.target, case: n, finding: f, input: small });
        opts.log?.(`finding in case ${n}: ${f.invariant}: ${f.detail}`);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    return { cases: n, seconds, casesPerSecond: n / seconds, findings };
  } finally {
    own?.dispose();
  }
}

export interface CampaignOptions {
  /** Targets to run in turn (default: every target of the context). */
  targets?: string[];
  /** Wall-clock budget for the whole campaign. */
  minutes: number;
  /** Seed of round 0; round r uses `seed + r`, so every round brings new cases. */
  seed: number;
  /** Seconds each target gets per round (default: the budget split into ≥ 4 rounds, 5..60 s). */
  sliceSeconds?: number;
  minimise?: boolean;
  /** After every case and every finding: totals so far. */
  onProgress?: (p: CampaignProgress) => void;
  /** Each new finding as it is minimised. */
  onFinding?: (f: SavedFinding, seed: number) => void | Promise<void>;
}

export interface CampaignProgress {
  target: string;
  round: number;
  cases: number;
  findings: number;
  elapsedSeconds: number;
  totalSeconds: number;
}

export interface CampaignResult {
  rounds: number;
  seconds: number;
  cases: number;
  /** Per target: cases run, findings, seeds used. */
  perTarget: Record<string, { cases: number; findings: number; seconds: number }>;
  findings: { seed: number; finding: SavedFinding }[];
}

/**
 * A long hostile campaign: every target in turn (round-robin), each round with a new seed, until the
 * budget is spent. Findings are deduplicated across rounds (the same invariant and blurred detail is
 * reported once per target).
 */
export async function campaign(opts: CampaignOptions, ctx: FuzzContext): Promise<CampaignResult> {
  const targets = opts.targets ?? targetsFor(ctx.devices);
  const total = opts.minutes * 60;
  if (!(total > 0)) throw new Error('a campaign needs a positive number of minutes');
  const slice = opts.sliceSeconds ?? Math.min(60, Math.max(1, total / (4 * targets.length)));
  const seen = new Map(targets.map((t) => [t, new Set<string>()]));
  const perTarget: CampaignResult['perTarget'] = Object.fromEntries(targets.map((t) => [t, { cases: 0, findings: 0, seconds: 0 }]));
  const found: CampaignResult['findings'] = [];
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  let cases = 0;
  let round = 0;
  for (; elapsed() < total; round++) {
    for (const target of targets) {
      const left = total - elapsed();
      if (left <= 0) break;
      const seed = opts.seed + round;
      const before = cases;
      const r = await fuzz(
        {
          target,
          cases: Number.MAX_SAFE_INTEGER,
          seed,
          seconds: Math.min(slice, left),
          minimise: opts.minimise,
          seen: seen.get(target),
          onCase: (n) => {
            cases = before + n;
            if ((n & 15) === 0) opts.onProgress?.({ target, round, cases, findings: found.length, elapsedSeconds: elapsed(), totalSeconds: total });
          },
        },
        ctx,
      );
      cases = before + r.cases;
      const t = perTarget[target]!;
      t.cases += r.cases;
      t.seconds += r.seconds;
      t.findings += r.findings.length;
      for (const f of r.findings) {
        found.push({ seed, finding: f });
        await opts.onFinding?.(f, seed);
      }
      opts.onProgress?.({ target, round, cases, findings: found.length, elapsedSeconds: elapsed(), totalSeconds: total });
    }
  }
  return { rounds: round, seconds: elapsed(), cases, perTarget, findings: found };
}

/** Writes a finding as `<dir>/<target>/<invariant>-s<seed>-c<case>.json`; returns the path (`recordFinding` adds its trace). */
export function saveFinding(dir: string, seed: number, f: SavedFinding): string {
  const d = join(dir, f.target);
  mkdirSync(d, { recursive: true });
  const path = join(d, `${f.finding.invariant}-s${seed}-c${f.case}.json`);
  writeFileSync(path, `${JSON.stringify({ finding: f.finding, input: f.input }, null, 1)}\n`);
  return path;
}

/**
 * Re-runs a case in a fresh fuzz sim with recording on and writes the trace next to `jsonPath`
 * (`x.json` → `x.bhtrace`): the finding as a replayable file (`bulkhead replay x.bhtrace [--print]`).
 * Returns the trace's path and what the case broke in the fresh sim (a finding that needed the state
 * earlier cases left may not break again there).
 */
export async function recordFinding(jsonPath: string, input: FuzzCase): Promise<{ path: string; findings: Finding[] }> {
  const path = jsonPath.replace(/\.json$/, '') + '.bhtrace';
  const ctx = await fuzzContext({ record: path, transport: transportFor(input.target) });
  try {
    return { path, findings: runCaseSafe(ctx, input) };
  } finally {
    ctx.dispose();
  }
}

/** Every corpus file under `dir` (`<target>/*.json`) with its case. */
export function loadCorpus(dir: string): { path: string; input: FuzzCase; trace: string | null }[] {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const t of readdirSync(dir)) {
    const td = join(dir, t);
    if (!existsSync(td) || t.startsWith('.')) continue;
    for (const f of readdirSync(td)) {
      if (!f.endsWith('.json')) continue;
      const path = join(td, f);
      const trace = path.replace(/\.json$/, '.bhtrace');
      out.push({ path, input: (JSON.parse(readFileSync(path, 'utf8')) as { input: FuzzCase }).input, trace: existsSync(trace) ? trace : null });
    }
  }
  return out;
}
