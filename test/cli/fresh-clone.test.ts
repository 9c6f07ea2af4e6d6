// A newcomer's first commands: in a fresh checkout with its packages installed but no build yet, in a
// folder as deep as a cache path (…/<40 hex>/…), every `npx bulkhead` command builds the bundle itself,
// says so in one line, and works; a source newer than the bundle makes it build again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..', '..');

/** The checkout's files as git sees them (committed, changed and new; not dist/, build/, node_modules/). */
function copyCheckout(to: string) {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(to, f)), { recursive: true });
    try {
      copyFileSync(join(root, f), join(to, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // deleted in the working tree
    }
  }
  symlinkSync(join(root, 'node_modules'), join(to, 'node_modules')); // what `npm ci --ignore-scripts` leaves
}

test('a fresh checkout in a deep folder: bulkhead sim and fuzz build the bundle themselves and run', async () => {
  const base = mkdtempSync(join(tmpdir(), 'bulkhead-fresh-'));
  const clone = join(base, '.cache', 'f'.repeat(40), 'checkouts', 'bulkhead');
  try {
    copyCheckout(clone);
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(clone, 'bin', 'bulkhead.mjs'), ...args], { cwd: clone, encoding: 'utf8' });
    const sim = cli('sim');
    assert.is(sim.status, 0, `bulkhead sim in a fresh checkout failed:\n${sim.stderr}`);
    assert.match(sim.stderr, /^bulkhead: building the bundle \(dist\/firmware\.js and dist\/sim\.mjs missing\)/m, `no build notice:\n${sim.stderr}`);
    assert.match(sim.stdout, /board host-sim \(transport msg\): 0:rng 1:console/);
    assert.match(sim.stdout, /rng: [0-9a-f]{32}/);

    const fuzz = cli('fuzz', '--target', 'rng', '--cases', '20', '--out', join(base, 'findings'));
    assert.is(fuzz.status, 0, `bulkhead fuzz failed:\n${fuzz.stdout}\n${fuzz.stderr}`);
    assert.not.match(fuzz.stderr, /building the bundle/, 'built again although nothing changed');
    assert.match(fuzz.stdout, /rng\s+20 cases/);

    const { bundleStale } = await import(pathToFileURL(join(clone, 'scripts', 'cli', '_bundle.mjs')).href);
    assert.is(bundleStale(), null, 'the bundle just built counts as stale');
    const later = new Date(Date.now() + 5000);
    utimesSync(join(clone, 'firmware', 'devices', 'rng.ts'), later, later);
    assert.is(bundleStale(), 'firmware/devices/rng.ts is newer than dist/');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test.run();
