// `bulkhead fuzz`: options in define() below (docs/cli.md).
// Structure-aware fuzzing of the firmware in the node runtime (frontend/fuzz/, docs/security.md).
// Deterministic by seed; prints cases/s and findings; minimised findings are written under --out
// (default test/fuzz/corpus), where `npm test` replays them. Exit status 1 when something was found.
import { Option } from 'commander';
import { join } from 'node:path';
import { ROOT, importSim } from './_bundle.mjs';
import { count, integer } from './_options.mjs';

export const summary = 'structure-aware fuzzer of the firmware, deterministic by seed (docs/security.md)';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .option('--target <target>', 'what to fuzz: a target name (transport, virtqueue, rng, console, blk, net, …) or all', 'all')
    .option('--cases <n>', 'cases per target', count, 1000)
    .option('--seed <n>', 'seed of the first case (a run is reproducible from target, cases and seed)', integer, 1)
    .addOption(new Option('--out <dir>', 'where minimised findings go (npm test replays test/fuzz/corpus)').default(join(ROOT, 'test', 'fuzz', 'corpus'), 'test/fuzz/corpus'))
    .option('--no-minimise', 'keep findings as found, without minimising them');
}

export async function run({ target, cases, seed, out, minimise }) {
  const { fuzz } = await importSim();
  const { counter } = await import('../progress.mjs');
  const ctx = await fuzz.fuzzContext();
  try {
    const all = fuzz.targetsFor(ctx.devices);
    if (target !== 'all' && !all.includes(target)) throw new Error(`--target ${target}: no such target (have: ${all.join(', ')}, all)`);
    const targets = target === 'all' ? all : [target];
    let found = 0;
    for (const t of targets) {
      const bar = counter({ title: `fuzz ${t}`, total: cases });
      const r = await fuzz.fuzz({ target: t, cases, seed, minimise, log: (l) => bar.log(`  ${t}: ${l}`), progress: (n) => bar.tick(n) }, ctx);
      bar.stop();
      console.log(`${t.padEnd(10)} ${r.cases} cases in ${r.seconds.toFixed(1)} s = ${r.casesPerSecond.toFixed(0)} cases/s, ${r.findings.length} findings`);
      for (const f of r.findings) console.log(`  saved ${fuzz.saveFinding(out, seed, f)}`);
      found += r.findings.length;
    }
    return found ? 1 : 0;
  } finally {
    ctx.dispose();
  }
}
