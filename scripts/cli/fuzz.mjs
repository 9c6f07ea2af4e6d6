// `bulkhead fuzz`: options in define() below (docs/cli.md).
// Structure-aware fuzzing of the firmware in the node runtime (frontend/fuzz/, docs/security.md).
// Deterministic by seed; prints cases/s and findings; minimised findings are written under --out
// (default test/fuzz/corpus) with a trace of each (`x.bhtrace`, `bulkhead replay` re-runs it), where
// `npm test` replays them. `--retrace DIR` re-records the trace of every case under DIR with the current
// bundle (after a fix). `--all --minutes M` runs every target in turn (a new seed each round) for M
// minutes with a progress line and a summary: the long hostile campaign of docs/security.md.
// Exit status 1 when something was found.
import { Option } from 'commander';
import { join } from 'node:path';
import { ROOT, importSim } from './_bundle.mjs';
import { count, integer, positive } from './_options.mjs';

export const summary = 'structure-aware fuzzer of the firmware, deterministic by seed; --all --minutes M for a campaign (docs/security.md)';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .option('--target <target>', 'what to fuzz: a target name (transport, virtqueue, rng, console, blk, net, …) or all', 'all')
    .option('--cases <n>', 'cases per target', count, 1000)
    .option('--seed <n>', 'seed of the first case (a run is reproducible from target, cases and seed); a campaign: round r uses seed+r (default: from the clock)', integer)
    .option('--all', 'a campaign: every target (or --targets) round-robin, a new seed each round, for --minutes')
    .option('--minutes <m>', 'how long the campaign runs (implies --all)', positive)
    .option('--targets <t1,t2>', 'the campaign\'s targets (default: every one)')
    .addOption(new Option('--out <dir>', 'where minimised findings and their traces go (npm test replays test/fuzz/corpus)').default(join(ROOT, 'test', 'fuzz', 'corpus'), 'test/fuzz/corpus'))
    .option('--retrace [dir]', 're-record the trace of every case under DIR (default: --out) with the current bundle')
    .option('--no-minimise', 'keep findings as found, without minimising them');
}

/** One line for a recorded finding: where its trace is and whether the case broke the invariant again. */
function traced(r, invariant) {
  const again = r.findings.map((f) => f.invariant);
  const how = invariant === null ? (again.length ? `breaks ${again.join(', ')}` : 'holds every invariant') : again.includes(invariant) ? 'reproduces in a fresh sim' : 'does not reproduce in a fresh sim (it needed the state earlier cases left)';
  return `trace ${r.path} (${how})`;
}

async function campaign(fuzz, ctx, o) {
  const { counter } = await import('../progress.mjs');
  if (!o.minutes) throw new Error('--all needs --minutes M (a positive number)');
  const seed = o.seed ?? Date.now() % 1e9;
  const all = fuzz.targetsFor(ctx.devices);
  const targets = o.targets?.split(',') ?? all;
  const unknown = targets.filter((t) => !all.includes(t));
  if (unknown.length) throw new Error(`--targets: no fuzz target ${unknown.join(', ')} (have: ${all.join(', ')})`);
  console.log(`campaign: ${targets.join(', ')} round-robin for ${o.minutes} min from seed ${seed} (round r uses seed ${seed}+r)`);
  const bar = counter({ title: 'fuzz campaign', total: Math.round(o.minutes * 60), unit: 's', rate: false });
  const t0 = Date.now();
  const r = await fuzz.campaign(
    {
      targets,
      minutes: o.minutes,
      seed,
      minimise: o.minimise,
      onProgress: (p) => {
        const rate = p.cases / Math.max(p.elapsedSeconds, 1e-3);
        bar.tick(Math.min(Math.round(p.elapsedSeconds), Math.round(o.minutes * 60)), `round ${p.round} ${p.target.padEnd(9)} ${p.cases} cases, ${rate.toFixed(0)}/s, ${p.findings} findings`);
      },
      onFinding: async (f, s) => {
        const json = fuzz.saveFinding(o.out, s, f);
        bar.log(`  ${f.target}: finding in seed ${s} case ${f.case}: ${f.finding.invariant}: ${f.finding.detail}\n  saved ${json}\n  ${traced(await fuzz.recordFinding(json, f.input), f.finding.invariant)}`);
      },
    },
    ctx,
  );
  bar.stop();
  console.log(`\ncampaign summary: ${r.cases} cases in ${(r.seconds / 60).toFixed(1)} min (${(r.cases / r.seconds).toFixed(0)} cases/s), ${r.rounds} rounds, ${r.findings.length} findings (wall ${((Date.now() - t0) / 60000).toFixed(1)} min)`);
  for (const [t, s] of Object.entries(r.perTarget)) console.log(`  ${t.padEnd(10)} ${String(s.cases).padStart(9)} cases ${(s.cases / Math.max(s.seconds, 1e-3)).toFixed(0).padStart(6)}/s  ${s.findings} findings`);
  return r.findings.length ? 1 : 0;
}

export async function run(o) {
  const { fuzz } = await importSim();
  const ctx = await fuzz.fuzzContext();
  try {
    if (o.retrace) {
      for (const c of fuzz.loadCorpus(o.retrace === true ? o.out : o.retrace)) console.log(traced(await fuzz.recordFinding(c.path, c.input), null));
      return 0;
    }
    if (o.all || o.minutes) return await campaign(fuzz, ctx, o);
    const { counter } = await import('../progress.mjs');
    const all = fuzz.targetsFor(ctx.devices);
    if (o.target !== 'all' && !all.includes(o.target)) throw new Error(`--target ${o.target}: no such target (have: ${all.join(', ')}, all)`);
    const seed = o.seed ?? 1;
    let found = 0;
    for (const t of o.target === 'all' ? all : [o.target]) {
      const bar = counter({ title: `fuzz ${t}`, total: o.cases });
      const r = await fuzz.fuzz({ target: t, cases: o.cases, seed, minimise: o.minimise, log: (l) => bar.log(`  ${t}: ${l}`), onCase: (n) => bar.tick(n) }, ctx);
      bar.stop();
      console.log(`${t.padEnd(10)} ${r.cases} cases in ${r.seconds.toFixed(1)} s = ${r.casesPerSecond.toFixed(0)} cases/s, ${r.findings.length} findings`);
      for (const f of r.findings) {
        const json = fuzz.saveFinding(o.out, seed, f);
        console.log(`  saved ${json}\n  ${traced(await fuzz.recordFinding(json, f.input), f.finding.invariant)}`);
      }
      found += r.findings.length;
    }
    return found ? 1 : 0;
  } finally {
    ctx.dispose();
  }
}
