// Replays every minimised finding under test/fuzz/corpus/<target>/ (written by `bulkhead fuzz`):
// each must now hold every invariant.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import type { FuzzContext } from '../../frontend/fuzz/index';
import { fuzzContext, loadCorpus, runCase, transportFor } from '../../frontend/fuzz/index';

const corpus = loadCorpus(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'corpus'));

test('the fuzz corpus is not empty', () => {
  assert.ok(corpus.length > 0, 'no corpus files found under test/fuzz/corpus');
});

test('every corpus case holds every invariant (each on a board of its target\'s transport)', async () => {
  const contexts = new Map<string, FuzzContext & { dispose(): void }>();
  try {
    for (const { path, input } of corpus) {
      const t = transportFor(input.target);
      if (!contexts.has(t)) contexts.set(t, await fuzzContext({ transport: t }));
      const findings = runCase(contexts.get(t)!, input);
      assert.equal(findings, [], `${path}: ${findings.map((f) => `${f.invariant}: ${f.detail}`).join('; ')}`);
    }
  } finally {
    for (const c of contexts.values()) c.dispose();
  }
});

test.run();
