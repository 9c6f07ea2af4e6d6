// A bounded slice of the fuzz campaign for CI: a few hundred deterministic cases per target
// (seconds). Long campaigns: `npx bulkhead fuzz --cases 1000000 --seed <n>` (docs/security.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fuzz, fuzzContext, targetsFor } from '../../frontend/fuzz/index';

const CASES = 200;
const SEED = 20250601;

test(`${CASES} fuzz cases per target hold every invariant (seed ${SEED})`, async () => {
  const ctx = await fuzzContext();
  try {
    for (const target of targetsFor(ctx.devices)) {
      const r = await fuzz({ target, cases: CASES, seed: SEED, minimise: false }, ctx);
      assert.equal(r.findings.map((f) => `case ${f.case}: ${f.finding.invariant}: ${f.finding.detail}`), [], `fuzz target ${target} broke invariants (replay: npx bulkhead fuzz --target ${target} --cases ${CASES} --seed ${SEED})`);
    }
  } finally {
    ctx.dispose();
  }
});

test.run();
