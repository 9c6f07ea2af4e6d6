// Replays every minimised finding under test/fuzz/corpus/<target>/ (written by `bulkhead fuzz`):
// each must now hold every invariant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { fuzzContext, loadCorpus, runCase } from '../../frontend/fuzz/index';

const corpus = loadCorpus(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'corpus'));

test('the fuzz corpus is not empty', () => {
  assert.ok(corpus.length > 0, 'no corpus files found under test/fuzz/corpus');
});

test('every corpus case holds every invariant', async () => {
  const ctx = await fuzzContext();
  try {
    for (const { path, input } of corpus) {
      const findings = runCase(ctx, input);
      assert.equal(findings, [], `${path}: ${findings.map((f) => `${f.invariant}: ${f.detail}`).join('; ')}`);
    }
  } finally {
    ctx.dispose();
  }
});

test.run();
