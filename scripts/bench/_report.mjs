// `bulkhead bench … --report DIR`: the figures of this run merged into DIR/report.json (a row per
// scenario, runtime and metric; this run's rows replace older ones, so the node and native runs of a
// session add up), and SVG plots of everything report.json holds, rendered in Node by vega-lite + vega
// (no browser). Each plot is a function of the rows: a scenario adds to a plot by its name and metric.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const when = () => new Date().toISOString().slice(0, 16).replace('T', ' ');

/** `label` of a series: the scenario without the swept part, and the runtime. */
const series = (r, stem) => `${stem} (${r.runtime})`;

/** The plots: name, the rows they take (mapped to points), and the vega-lite encoding. */
const PLOTS = [
  {
    file: 'blk-iops-vs-queue-depth.svg',
    title: 'virtio-blk 4 KiB random reads: IOPS against queue depth',
    points: (rows) =>
      rows.flatMap((r) => {
        const m = r.metric === 'iops' && /^(.*randread-4k)-qd(\d+)$/.exec(r.scenario);
        return m ? [{ x: Number(m[2]), y: r.value, series: series(r, m[1]) }] : [];
      }),
    x: { title: 'queue depth', scale: { type: 'log', base: 2 } },
    y: { title: 'IOPS' },
    mark: { type: 'line', point: true },
  },
  {
    file: 'net-packets-vs-frame-size.svg',
    title: 'virtio-net: packets/s against frame size',
    points: (rows) =>
      rows.flatMap((r) => {
        const m = r.metric === 'packets' && /^(.*?)-?(\d+)b$/.exec(r.scenario);
        return m ? [{ x: Number(m[2]), y: r.value, series: series(r, m[1] || 'net') }] : [];
      }),
    x: { title: 'frame size (bytes)', scale: { type: 'log', base: 2 } },
    y: { title: 'packets/s' },
    mark: { type: 'line', point: true },
  },
  {
    file: 'doorbell-round-trip.svg',
    title: 'Doorbell round trip against the eventfd ping-pong floor',
    points: (rows) =>
      rows.flatMap((r) =>
        ['latency', 'latency-best-of-3', 'rtt'].includes(r.metric) && /ping/.test(r.scenario)
          ? [{ x: r.value, y: `${r.scenario} (${r.runtime})`, series: /^eventfd/.test(r.scenario) ? 'floor: raw eventfd ping-pong' : 'Bulkhead PING round trip' }]
          : [],
      ),
    x: { title: 'µs (less is better)' },
    y: { title: null, sort: '-x' },
    mark: { type: 'bar' },
  },
  {
    file: 'backend-cpu-per-request.svg',
    title: 'Backend CPU per request or packet, per runtime',
    points: (rows) =>
      rows.flatMap((r) => (/^backend-cpu(-per-(request|packet))?$/.test(r.metric) ? [{ x: r.value, y: r.scenario.replace(/^backend-/, ''), series: r.runtime }] : [])),
    x: { title: 'µs of backend CPU (user + system) per request or packet' },
    y: { title: null },
    mark: { type: 'bar' },
    grouped: true,
  },
];

function spec(p, values, note) {
  const color = { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 1, labelLimit: 520 } };
  const enc = p.mark.type === 'bar'
    ? { x: { field: 'x', type: 'quantitative', ...p.x }, y: { field: 'y', type: 'nominal', axis: { labelLimit: 400 }, ...p.y }, color, ...(p.grouped ? { yOffset: { field: 'series' } } : {}) }
    : { x: { field: 'x', type: 'quantitative', ...p.x }, y: { field: 'y', type: 'quantitative', ...p.y }, color };
  return {
    $schema: SCHEMA,
    title: { text: p.title, subtitle: note },
    width: 520,
    height: p.mark.type === 'bar' ? { step: p.grouped ? 16 : 20 } : 300,
    data: { values },
    mark: { ...p.mark, tooltip: true },
    encoding: enc,
    config: { font: 'sans-serif' },
  };
}

/** Writes DIR/report.json and the plots it has data for; returns the file names written. */
export async function writeReport(dir, rows) {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'report.json');
  const old = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : { rows: [] };
  const at = when();
  const machine = `${cpus().length} CPUs, load average ${loadavg()[0].toFixed(1)}`;
  const key = (r) => `${r.scenario}\0${r.runtime}\0${r.metric}`;
  const fresh = new Map(rows.map((r) => [key(r), { ...r, at, machine }]));
  const merged = [...old.rows.filter((r) => !fresh.has(key(r))), ...fresh.values()];
  writeFileSync(file, `${JSON.stringify({ about: 'bulkhead bench --report: one row per scenario, runtime and metric (the newest run of each)', rows: merged }, null, 1)}\n`);
  const written = ['report.json'];
  const vega = await import('vega');
  const vl = await import('vega-lite');
  for (const p of PLOTS) {
    const values = p.points(merged);
    if (!values.length) continue;
    const runs = [...new Set(merged.filter((r) => p.points([r]).length).map((r) => `${r.runtime} ${r.at} (${r.machine})`))];
    const view = new vega.View(vega.parse(vl.compile(spec(p, values, ['npx bulkhead bench … --report DIR, runs of:', ...runs])).spec), { renderer: 'none' });
    writeFileSync(join(dir, p.file), await view.toSVG());
    view.finalize();
    written.push(p.file);
  }
  return written;
}
