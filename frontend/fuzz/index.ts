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
import { AUX_RX, FUZZ_GPIO_LINES, FUZZ_VSOCK_CID, FUZZ_VSOCK_LISTEN, MAX_PASSES_PER_DOORBELL, generate, minimise, runCase, targetsFor } from './engine';
import { RawDriver } from './raw';

export type { FuzzCase, Finding, FuzzContext } from './engine';
export { ARENA, AUX_RX, generate, minimise, runCase, targetsFor } from './engine';
export { PackedRawRing, RawDriver, Ring, message } from './raw';
export { le32, PackedRing, SplitRing } from './ring';
export { Rand } from './rand';

/** A fuzz sim: host-sim plus blk (a scratch image), net, vsock (a host that echoes on FUZZ_VSOCK_LISTEN), i2c (a scratch EEPROM) and gpio, so every device type is a target. */
export async function fuzzContext(opts: { board?: string; devices?: DeviceManifestEntry[] } = {}): Promise<FuzzContext & { dispose(): void }> {
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
  const vsockHost = new MemoryVsockHost({ socketBuffer: 8192 });
  for (const port of FUZZ_VSOCK_LISTEN) vsockHost.listen(port, (c) => (c.onData = (cc) => cc.write(cc.read())));
  const sim = await createSim({ board, maxPasses: MAX_PASSES_PER_DOORBELL, log: () => {}, vsock: { fuzzvsock: vsockHost } });
  const ctx = { sim, drv: new RawDriver(sim), devices: board.devices.map((d) => d.type), arena: sim.layout.poolOffset };
  if (AUX_RX.end > sim.layout.poolSize) throw new Error('pool too small for the fuzz arena');
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
  /** Called with the number of cases done, every 64 cases and at the end (progress bars). */
  progress?: (done: number) => void;
}

/** Runs `cases` generated cases of one target; returns throughput and minimised findings. */
export async function fuzz(opts: FuzzRunOptions, ctx?: FuzzContext): Promise<{ cases: number; seconds: number; casesPerSecond: number; findings: SavedFinding[] }> {
  const own = ctx ? null : await fuzzContext();
  const c = ctx ?? own!;
  try {
    const targets = targetsFor(c.devices);
    if (!targets.includes(opts.target)) throw new Error(`no fuzz target '${opts.target}' (have: ${targets.join(', ')})`);
    const findings: SavedFinding[] = [];
    const seen = new Set<string>();
    const t0 = performance.now();
    for (let n = 0; n < opts.cases; n++) {
      if (n % 64 === 0) opts.progress?.(n);
      const input = generate(c, opts.target, opts.seed, n);
      for (const f of runCase(c, input)) {
        const key = `${f.invariant}:${f.detail.replace(/[0-9a-fx]{2,}/g, '#')}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const small = opts.minimise === false ? input : minimise(c, input, f.invariant);
        findings.push({ target: opts.target, case: n, finding: f, input: small });
        opts.log?.(`finding in case ${n}: ${f.invariant}: ${f.detail}`);
      }
    }
    opts.progress?.(opts.cases);
    const seconds = (performance.now() - t0) / 1000;
    return { cases: opts.cases, seconds, casesPerSecond: opts.cases / seconds, findings };
  } finally {
    own?.dispose();
  }
}

/** Writes a finding as `<dir>/<target>/<invariant>-s<seed>-c<case>.json`; returns the path. */
export function saveFinding(dir: string, seed: number, f: SavedFinding): string {
  const d = join(dir, f.target);
  mkdirSync(d, { recursive: true });
  const path = join(d, `${f.finding.invariant}-s${seed}-c${f.case}.json`);
  writeFileSync(path, `${JSON.stringify({ finding: f.finding, input: f.input }, null, 1)}\n`);
  return path;
}

/** Every corpus file under `dir` (`<target>/*.json`) with its case. */
export function loadCorpus(dir: string): { path: string; input: FuzzCase }[] {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const t of readdirSync(dir)) {
    const td = join(dir, t);
    if (!existsSync(td) || t.startsWith('.')) continue;
    for (const f of readdirSync(td)) {
      if (!f.endsWith('.json')) continue;
      const path = join(td, f);
      out.push({ path, input: (JSON.parse(readFileSync(path, 'utf8')) as { input: FuzzCase }).input });
    }
  }
  return out;
}
