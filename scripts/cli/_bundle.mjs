// The bundles every command runs on (dist/firmware.js, dist/sim.mjs): built by rollup when missing or
// older than their sources, with a one-line notice, so any `npx bulkhead …` works right after `npm ci`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUTPUTS = ['dist/firmware.js', 'dist/sim.mjs'];
const SOURCE_DIRS = ['firmware', 'frontend', 'runtime/node'];
const SOURCE_FILES = ['rollup.config.mjs', 'tsconfig.json', 'firmware/tsconfig.json', 'package-lock.json'];

/** The newest source the bundles are built from: [path, mtime] (frontend/linux is the guest module, not bundled). */
function newestSource() {
  let best = ['', 0];
  const consider = (p) => {
    const t = statSync(p).mtimeMs;
    if (t > best[1]) best = [p, t];
  };
  for (const d of SOURCE_DIRS) {
    for (const f of readdirSync(join(ROOT, d), { recursive: true })) {
      if (f.endsWith('.ts') && !f.startsWith('linux')) consider(join(ROOT, d, f));
    }
  }
  for (const f of SOURCE_FILES) if (existsSync(join(ROOT, f))) consider(join(ROOT, f));
  return best;
}

/** Why the bundles must be (re)built, or null when they are current. */
export function bundleStale() {
  const missing = OUTPUTS.filter((o) => !existsSync(join(ROOT, o)));
  if (missing.length) return `${missing.join(' and ')} missing`;
  const built = Math.min(...OUTPUTS.map((o) => statSync(join(ROOT, o)).mtimeMs));
  const [src, t] = newestSource();
  return t > built ? `${relative(ROOT, src)} is newer than dist/` : null;
}

/** Runs rollup with the project's config; throws with rollup's own message if it fails. */
export function build({ quiet = false } = {}) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'rollup', 'dist', 'bin', 'rollup'), '-c', '--silent'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`rollup failed (exit ${r.status ?? r.signal}): the bundle was not built`);
  if (!quiet) process.stderr.write(`bulkhead: bundle built in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

/** Builds the bundles first if they are missing or stale (one notice line on stderr). */
export function ensureBundle() {
  const why = bundleStale();
  if (!why) return;
  process.stderr.write(`bulkhead: building the bundle (${why}) …\n`);
  build();
}

/** dist/sim.mjs (the package entry `bulkhead/sim`), built first when needed. */
export async function importSim() {
  ensureBundle();
  return import(pathToFileURL(join(ROOT, 'dist', 'sim.mjs')).href);
}
