// `bulkhead fuzz --target T --cases N --seed S [--out DIR] [--no-minimise]`
// `bulkhead fuzz --all --minutes M [--seed S] [--targets t1,t2] [--out DIR]`
// Structure-aware fuzzing of the firmware in the node runtime (frontend/fuzz/, docs/security.md).
// Deterministic by seed; prints cases/s and findings; minimised findings are written under --out
// (default test/fuzz/corpus) with a trace of each (`x.bhtrace`, `bulkhead replay` re-runs it), where
// `npm test` replays them. `--retrace DIR` re-records the trace of every case under DIR with the current
// bundle (after a fix). Exit status 1 when something was found.
// --all --minutes runs every target in turn (a new seed each round) for M minutes with a progress
// line and a summary: the long hostile campaign of docs/security.md.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { progress } from './progress.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function opt(args, name, def) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
}

/** One line for a recorded finding: where its trace is and whether the case broke the invariant again. */
function traced(r, invariant) {
  const again = r.findings.map((f) => f.invariant);
  const how = invariant === null ? (again.length ? `breaks ${again.join(', ')}` : 'holds every invariant') : again.includes(invariant) ? 'reproduces in a fresh sim' : 'does not reproduce in a fresh sim (it needed the state earlier cases left)';
  return `trace ${r.path} (${how})`;
}

async function campaign(fuzz, ctx, args, out) {
  const minutes = Number(opt(args, '--minutes', 'NaN'));
  const seed = Number(opt(args, '--seed', String(Date.now() % 1e9)));
  if (!(minutes > 0) || !Number.isInteger(seed)) throw new Error('--all needs --minutes M (a positive number); --seed takes an integer');
  const all = fuzz.targetsFor(ctx.devices);
  const targets = opt(args, '--targets', null)?.split(',') ?? all;
  const unknown = targets.filter((t) => !all.includes(t));
  if (unknown.length) throw new Error(`no fuzz target ${unknown.join(', ')} (have: ${all.join(', ')})`);
  console.log(`campaign: ${targets.join(', ')} round-robin for ${minutes} min from seed ${seed} (round r uses seed ${seed}+r)`);
  const bar = progress({ total: Math.round(minutes * 60), label: 'fuzz' });
  const t0 = Date.now();
  const r = await fuzz.campaign(
    {
      targets,
      minutes,
      seed,
      minimise: !args.includes('--no-minimise'),
      onProgress: (p) => {
        const rate = p.cases / Math.max(p.elapsedSeconds, 1e-3);
        bar.update(Math.round(p.elapsedSeconds), `round ${p.round} ${p.target.padEnd(9)} ${p.cases} cases, ${rate.toFixed(0)}/s, ${p.findings} findings`);
      },
      onFinding: async (f, s) => {
        const json = fuzz.saveFinding(out, s, f);
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

export async function run(args) {
  const { fuzz } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  if (!fuzz) throw new Error('dist/sim.mjs has no fuzz export: run `npx bulkhead build`');
  const ctx = await fuzz.fuzzContext();
  const out = opt(args, '--out', join(root, 'test', 'fuzz', 'corpus'));
  try {
    if (args.includes('--retrace')) {
      for (const c of fuzz.loadCorpus(opt(args, '--retrace', out))) console.log(traced(await fuzz.recordFinding(c.path, c.input), null));
      return 0;
    }
    if (args.includes('--all') || args.includes('--minutes')) return await campaign(fuzz, ctx, args, out);
    const all = fuzz.targetsFor(ctx.devices);
    const target = opt(args, '--target', 'all');
    const cases = Number(opt(args, '--cases', '1000'));
    const seed = Number(opt(args, '--seed', '1'));
    if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed)) throw new Error('--cases and --seed take integers');
    const targets = target === 'all' ? all : [target];
    let found = 0;
    for (const t of targets) {
      const r = await fuzz.fuzz({ target: t, cases, seed, minimise: !args.includes('--no-minimise'), log: (l) => console.log(`  ${t}: ${l}`) }, ctx);
      console.log(`${t.padEnd(10)} ${r.cases} cases in ${r.seconds.toFixed(1)} s = ${r.casesPerSecond.toFixed(0)} cases/s, ${r.findings.length} findings`);
      for (const f of r.findings) {
        const json = fuzz.saveFinding(out, seed, f);
        console.log(`  saved ${json}\n  ${traced(await fuzz.recordFinding(json, f.input), f.finding.invariant)}`);
      }
      found += r.findings.length;
    }
    return found ? 1 : 0;
  } finally {
    ctx.dispose();
  }
}
