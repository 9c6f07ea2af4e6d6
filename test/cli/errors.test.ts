// What a user sees when they get a command wrong: a one-line reason naming the option, exit status 2,
// and --help for every command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'bulkhead.mjs'), ...args], { cwd: root, encoding: 'utf8' });
const commands = readdirSync(join(root, 'scripts', 'cli')).filter((f) => f.endsWith('.mjs') && !f.startsWith('_')).map((f) => f.slice(0, -4));

test('every command answers --help with its usage, exit 0', () => {
  for (const c of commands) {
    const r = cli(c, '--help');
    assert.is(r.status, 0, `bulkhead ${c} --help exited ${r.status}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: bulkhead ${c} `, 'm'), `bulkhead ${c} --help printed no usage line:\n${r.stdout}`);
  }
});

/** What a command must be given before its options are looked at (commander checks required ones first). */
const REQUIRED: Record<string, string[]> = { image: ['-o', '/dev/null'], run: ['part.img', '--board', 'host-sim'] };

test('an unknown option is an error that names it (exit 2), for every command', () => {
  for (const c of commands) {
    const r = cli(c, ...(REQUIRED[c] ?? []), '--no-such-option');
    assert.is(r.status, 2, `bulkhead ${c} --no-such-option exited ${r.status}`);
    assert.match(r.stderr, /unknown option '--no-such-option'/, `bulkhead ${c}: ${r.stderr}`);
  }
});

test('a bad value names the option and what it expects', () => {
  const r = cli('fuzz', '--cases', 'many');
  assert.is(r.status, 2);
  assert.match(r.stderr, /--cases <n>.*'many' is invalid.*integer/);
  const b = cli('bench', '--runtime', 'wasm');
  assert.is(b.status, 2);
  assert.match(b.stderr, /Allowed choices are node, native/);
});

test('an unknown command is an error; no command prints the command list', () => {
  const r = cli('frobnicate');
  assert.is(r.status, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  const h = cli();
  assert.is(h.status, 0);
  for (const c of commands) assert.match(h.stdout, new RegExp(`^  ${c}\\b`, 'm'), `the command list lacks ${c}`);
});

test.run();
