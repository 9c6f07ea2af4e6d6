// docs/cli.md is generated from the command definitions; this fails when someone changed a command's
// options without regenerating it, so the one place every flag is documented stays true.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error: an ES module script without types
import { cliDocs } from '../../scripts/cli-docs.mjs';

const root = join(import.meta.dirname, '..', '..');

test('docs/cli.md is what `npm run docs:cli` writes from the command definitions', async () => {
  const want = (await cliDocs()) as string;
  const have = readFileSync(join(root, 'docs', 'cli.md'), 'utf8');
  assert.ok(have === want, 'docs/cli.md is out of date: run `npm run docs:cli` and commit it');
});

test('docs/cli.md does not depend on where the checkout is (no absolute paths)', () => {
  const have = readFileSync(join(root, 'docs', 'cli.md'), 'utf8');
  assert.not.match(have, new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'docs/cli.md names this checkout\'s path: give the option a display default');
});

test.run();
