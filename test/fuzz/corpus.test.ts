// Replays every minimised finding under test/fuzz/corpus/<target>/ (written by `bulkhead fuzz`):
// each must now hold every invariant; each one's trace (<name>.bhtrace, written next to it) must read
// and replay to a verdict — identical when it was recorded with this very bundle — and the case
// recorded afresh must replay identically, step by step.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FuzzContext } from '../../frontend/fuzz/index';
import { fuzzContext, loadCorpus, recordFinding, runCase, transportFor } from '../../frontend/fuzz/index';
import { PROJECT_ROOT } from '../../frontend/sim';
import { replayOnNode } from '../../runtime/node/trace';
import { readHeader } from '../../runtime/trace/format';

const corpus = loadCorpus(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'corpus'));
const BUNDLE = readFileSync(join(PROJECT_ROOT, 'dist', 'firmware.js'), 'utf8');
const SHA = createHash('sha256').update(BUNDLE).digest('hex');

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

test('every corpus case has its trace, and the trace replays (identically, if recorded with this bundle)', async () => {
  for (const { path, trace } of corpus) {
    assert.ok(trace, `${path} has no .bhtrace next to it (npx bulkhead fuzz --retrace test/fuzz/corpus)`);
    const bytes = readFileSync(trace!);
    const r = await replayOnNode(bytes, BUNDLE, trace!);
    assert.is(r.error, undefined, `${trace}: ${r.error}`);
    if (readHeader(bytes).bundleSha256 === SHA) assert.ok(r.ok, `${trace} was recorded with this bundle but diverged at step ${r.divergence?.step}: ${r.divergence?.at}`);
    else assert.ok(r.ok || r.divergence, `${trace}: replayed to a verdict`);
  }
});

test('every corpus case, recorded afresh, replays identically step by step', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-corpus-'));
  try {
    for (const { path, input } of corpus) {
      const json = join(dir, 'case.json');
      writeFileSync(json, '{}');
      const rec = await recordFinding(json, input);
      const r = await replayOnNode(readFileSync(rec.path), BUNDLE, rec.path);
      assert.ok(r.ok, `${path}: a fresh recording diverged at step ${r.divergence?.step} (${r.divergence?.kind}, ${r.divergence?.at}) ${r.error ?? ''}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
