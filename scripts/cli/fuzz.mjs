// `bulkhead fuzz --target T --cases N --seed S [--out DIR] [--no-minimise]`
// Structure-aware fuzzing of the firmware in the node runtime (frontend/fuzz/, docs/security.md).
// Deterministic by seed; prints cases/s and findings; minimised findings are written under --out
// (default test/fuzz/corpus), where `npm test` replays them. Exit status 1 when something was found.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function opt(args, name, def) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
}

export async function run(args) {
  const { fuzz } = await import(pathToFileURL(join(root, 'dist', 'sim.mjs')).href);
  if (!fuzz) throw new Error('dist/sim.mjs has no fuzz export: run `npx bulkhead build`');
  const ctx = await fuzz.fuzzContext();
  try {
    const all = fuzz.targetsFor(ctx.devices);
    const target = opt(args, '--target', 'all');
    const cases = Number(opt(args, '--cases', '1000'));
    const seed = Number(opt(args, '--seed', '1'));
    const out = opt(args, '--out', join(root, 'test', 'fuzz', 'corpus'));
    if (!Number.isInteger(cases) || cases < 1 || !Number.isInteger(seed)) throw new Error('--cases and --seed take integers');
    const targets = target === 'all' ? all : [target];
    let found = 0;
    for (const t of targets) {
      const r = await fuzz.fuzz({ target: t, cases, seed, minimise: !args.includes('--no-minimise'), log: (l) => console.log(`  ${t}: ${l}`) }, ctx);
      console.log(`${t.padEnd(10)} ${r.cases} cases in ${r.seconds.toFixed(1)} s = ${r.casesPerSecond.toFixed(0)} cases/s, ${r.findings.length} findings`);
      for (const f of r.findings) console.log(`  saved ${fuzz.saveFinding(out, seed, f)}`);
      found += r.findings.length;
    }
    return found ? 1 : 0;
  } finally {
    ctx.dispose();
  }
}
