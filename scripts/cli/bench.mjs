// `bulkhead bench [scenario…]`. Scenarios are modules scripts/bench/<name>.mjs exporting
//   runtimes   the runtimes they support (e.g. ['node', 'native'])
//   options    their own options, as [flags, description, parse?, default?] (e.g. --blk-seconds);
//              every scenario's options are options of this command, listed in its --help
//   run({ runtime, emit, opts, progress })  calling emit(scenario, metric, value, unit) per figure;
//              opts holds every option as commander parsed it (camelCase), progress the stage helper
// With --json: one JSON object per line {"scenario","runtime","metric","value","unit"}; else a table.
// With --report DIR: the figures as JSON and as SVG plots in DIR (scripts/bench/_report.mjs).
import { Option } from 'commander';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');
const names = readdirSync(dir).filter((f) => f.endsWith('.mjs') && !f.startsWith('_')).map((f) => f.slice(0, -4)).sort();
const scenario = async (n) => import(pathToFileURL(join(dir, `${n}.mjs`)).href);

export const summary = 'benchmarks, with the baselines measured in the same run (docs/performance.md)';
export const description = `${summary}. Scenarios: ${names.join(', ')} (default: every one the runtime supports).`;
export const needsBundle = true;

export async function define(cmd) {
  cmd
    .argument('[scenario...]', `which to run: ${names.join(', ')}`)
    .addOption(new Option('--runtime <runtime>', 'node (quickjs-emscripten) or native (build/bulkhead-fw)').choices(['node', 'native']).default('node'))
    .option('--json', 'one JSON object per figure and line instead of the table')
    .option('--report <dir>', 'also write the figures (report.json) and SVG plots of them into DIR');
  const byFlags = new Map(); // an option several scenarios share (the loadgen ones) is listed once
  for (const n of names) {
    for (const spec of (await scenario(n)).options ?? []) {
      if (!byFlags.has(spec[0])) byFlags.set(spec[0], { spec, users: [] });
      byFlags.get(spec[0]).users.push(n);
    }
  }
  for (const { spec: [flags, what, parse, dflt], users } of byFlags.values()) {
    cmd.option(flags, `(${users.join(', ')}) ${what}`, ...(parse ? [parse] : []), ...(dflt !== undefined ? [dflt] : []));
  }
}

export async function run(opts, [chosen]) {
  const { runtime, json } = opts;
  for (const n of chosen) if (!names.includes(n)) throw new Error(`no benchmark scenario '${n}' (have: ${names.join(', ')})`);
  const { stages } = await import('../progress.mjs');
  const rows = [];
  const emit = (scenario, metric, value, unit) => {
    const row = { scenario, runtime, metric, value, unit };
    rows.push(row);
    if (json) console.log(JSON.stringify(row));
  };
  const list = [];
  for (const n of chosen.length ? chosen : names) {
    const mod = await scenario(n);
    if (mod.runtimes && !mod.runtimes.includes(runtime)) {
      if (chosen.length || !json) console.error(`(${n}: not available on the ${runtime} runtime)`);
      continue;
    }
    list.push([n, mod]);
  }
  const progress = stages({ title: `bench (${runtime})`, total: list.length, quiet: false });
  for (const [n, mod] of list) await progress.stage(n, () => mod.run({ runtime, emit, opts, progress }));
  progress.done();
  if (!json) {
    const w = Math.max(8, ...rows.map((r) => r.scenario.length));
    const m = Math.max(6, ...rows.map((r) => r.metric.length));
    console.log(`${'scenario'.padEnd(w)}  runtime  ${'metric'.padEnd(m)}  ${'value'.padStart(12)}  unit`);
    for (const r of rows) {
      const v = Number.isInteger(r.value) ? String(r.value) : r.value.toPrecision(4);
      console.log(`${r.scenario.padEnd(w)}  ${r.runtime.padEnd(7)}  ${r.metric.padEnd(m)}  ${v.padStart(12)}  ${r.unit}`);
    }
  }
  if (opts.report) {
    const { writeReport } = await import('../bench/_report.mjs');
    const files = await writeReport(opts.report, rows);
    console.error(`bench: wrote ${files.join(', ')}`);
  }
  return 0;
}
