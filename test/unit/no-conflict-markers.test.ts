// A merge that left both sides of a conflict in a file is caught here, not by a reader.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

test('no tracked file holds merge conflict markers', () => {
  // git grep exits 1 when nothing matches; the pattern is split so this file does not match itself
  const marker = ['^<{7} ', '^>{7} ', '^={7}$'].join('|');
  let out = '';
  try {
    out = execFileSync('git', ['grep', '-n', '-E', marker, '--', '.', ':!package-lock.json'], { cwd: root, encoding: 'utf8' });
  } catch (e) {
    if ((e as { status?: number }).status !== 1) throw e;
  }
  assert.is(out, '', `conflict markers left by a merge:\n${out}`);
});

test.run();
