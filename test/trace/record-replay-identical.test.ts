// A run recorded in the node runtime replays identically against the same bundle: every window write,
// HAL call (with its arguments) and entry-point result, step by step, for every device type.
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replayOnNode } from '../../runtime/node/trace';
import { readHeader, readTrace } from '../../runtime/trace/format';
import { BUNDLE, recordWorkload } from './_trace';

test('a recorded run of rng, console, blk and net replays identically on the node runtime', async () => {
  const rec = await recordWorkload();
  try {
    const r = await replayOnNode(rec.bytes, BUNDLE, rec.path);
    assert.equal(r.divergence, undefined, `replay diverged: ${JSON.stringify(r.divergence && { ...r.divergence, window: undefined })}`);
    assert.ok(r.ok, `replay failed: ${r.error ?? ''}`);
    assert.not.ok(r.noEnd, 'the trace has its END record');
    const halNames = new Set<string>();
    for (const x of readTrace(rec.bytes)) if (x.type === 'hal') halNames.add(x.name);
    for (const n of ['entropyRead', 'streamWrite', 'streamRead', 'storageWrite', 'storageFlush', 'storageRead', 'packetSend', 'packetRecv', 'now', 'raise', 'fence']) {
      assert.ok(halNames.has(n) || n === 'now', `the trace holds ${n} calls (has: ${[...halNames].join(', ')})`);
    }
    assert.ok(r.steps > 200, `a real run has many steps (${r.steps})`);
  } finally {
    rec.done();
  }
});

test('the trace names its bundle (SHA-256 of the source) and the board the bundle got', async () => {
  const rec = await recordWorkload();
  try {
    const h = readHeader(rec.bytes);
    assert.is(h.bundleSha256, createHash('sha256').update(BUNDLE).digest('hex'));
    assert.is(h.runtime, 'node');
    const board = JSON.parse(h.boardJson) as { name: string; devices: { type: string }[] };
    assert.is(board.name, 'host-sim');
    assert.equal(board.devices.map((d) => d.type), ['rng', 'console', 'blk', 'net', 'net']);
  } finally {
    rec.done();
  }
});

test.run();
