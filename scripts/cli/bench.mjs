// `bulkhead bench [scenario…] [--runtime node|native] [--json]`
// Scenarios are modules scripts/bench/<name>.mjs exporting
//   `runtimes`: the runtimes they support (e.g. ['node', 'native'])
//   `async run({ runtime, emit, args })` calling emit(scenario, metric, value, unit) per figure.
// Scenario options (e.g. `--net-seconds 4`) pass through in `args`.
// With --json: one JSON object per line {"scenario","runtime","metric","value","unit"}; else a table.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');

export async function run(args) {
  const json = args.includes('--json');
  const rtIdx = args.indexOf('--runtime');
  const runtime = rtIdx >= 0 ? args[rtIdx + 1] : 'node';
  if (!['node', 'native'].includes(runtime)) throw new Error(`--runtime must be node or native, not ${runtime}`);
  const all = readdirSync(dir).filter((f) => f.endsWith('.mjs') && !f.startsWith('_')).map((f) => f.slice(0, -4)).sort();
  // Scenario names, skipping option values (`--runtime native`, a scenario's own `--net-seconds 4`).
  const BOOLEAN = new Set(['--json']);
  const names = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith('--')) {
      if (!BOOLEAN.has(args[i]) && !args[i].includes('=') && i + 1 < args.length && !args[i + 1].startsWith('--')) i++;
    } else names.push(args[i]);
  }
  const chosen = names.length ? names : all;
  for (const n of chosen) if (!all.includes(n)) throw new Error(`no benchmark scenario '${n}' (have: ${all.join(', ')})`);
  const rows = [];
  const emit = (scenario, metric, value, unit) => {
    const row = { scenario, runtime, metric, value, unit };
    rows.push(row);
    if (json) console.log(JSON.stringify(row));
  };
  for (const n of chosen) {
    const mod = await import(pathToFileURL(join(dir, `${n}.mjs`)).href);
    if (mod.runtimes && !mod.runtimes.includes(runtime)) {
      if (!json) console.log(`(${n}: not available on the ${runtime} runtime)`);
      continue;
    }
    await mod.run({ runtime, emit, args });
  }
  if (!json) {
    const w = Math.max(8, ...rows.map((r) => r.scenario.length));
    const m = Math.max(6, ...rows.map((r) => r.metric.length));
    console.log(`${'scenario'.padEnd(w)}  runtime  ${'metric'.padEnd(m)}  ${'value'.padStart(12)}  unit`);
    for (const r of rows) {
      const v = Number.isInteger(r.value) ? String(r.value) : r.value.toPrecision(4);
      console.log(`${r.scenario.padEnd(w)}  ${r.runtime.padEnd(7)}  ${r.metric.padEnd(m)}  ${v.padStart(12)}  ${r.unit}`);
    }
  }
  return 0;
}
