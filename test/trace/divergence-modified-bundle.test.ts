// A replay against a changed bundle stops at the first step where the firmware behaves differently,
// with a readable diff: a changed log line is a HAL divergence at that call; a changed header value
// is a window divergence named by its field.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replayOnNode } from '../../runtime/node/trace';
import { WindowModel } from '../../runtime/trace/decode';
import { readHeader, readTrace } from '../../runtime/trace/format';
import { describeResult } from '../../runtime/trace/print';
import { BUNDLE, recordWorkload } from './_trace';

/** The step number of the first HAL record matching `pred` (steps count CALL, HAL, RETURN from 1). */
function stepOf(bytes: Uint8Array, pred: (name: string, args: unknown[]) => boolean): number {
  let step = 0;
  for (const r of readTrace(bytes)) {
    if (r.type === 'call' || r.type === 'hal' || r.type === 'return') step++;
    if (r.type === 'hal' && pred(r.name, r.args)) return step;
  }
  return -1;
}

test('a bundle whose boot log line changed diverges at that log call, expected vs got', async () => {
  const rec = await recordWorkload();
  try {
    const changed = BUNDLE.replace('`bulkhead: board ${', '`bulkhead: BOARD ${');
    assert.is.not(changed, BUNDLE, 'the test patches the boot log line');
    const r = await replayOnNode(rec.bytes, changed, rec.path);
    const d = r.divergence;
    assert.ok(d, 'the replay diverged');
    assert.is(d!.kind, 'hal');
    assert.is(d!.step, stepOf(rec.bytes, (n, a) => n === 'log' && String(a[1]).startsWith('bulkhead: board')));
    assert.match(d!.expected, 'log(2, "bulkhead: board host-sim');
    assert.match(d!.got, 'log(2, "bulkhead: BOARD host-sim');
    assert.match(d!.inCall, 'start()');
    assert.is(r.steps, d!.step - 1, 'every step before it matched');
  } finally {
    rec.done();
  }
});

test('a bundle that writes another window magic diverges at start, the diff naming header.magic', async () => {
  const rec = await recordWorkload();
  try {
    const changed = BUNDLE.replace(/0x4b4c4842/g, '0x4b4c4843');
    assert.is.not(changed, BUNDLE);
    const model = new WindowModel(readHeader(rec.bytes).boardJson);
    const r = await replayOnNode(rec.bytes, changed, rec.path, (x) => model.follow(x));
    const d = r.divergence;
    assert.ok(d, 'the replay diverged');
    assert.is(d!.kind, 'window');
    assert.match(d!.at, 'before HAL fence()');
    assert.match(d!.inCall, 'start()');
    const text = describeResult(r, model).join('\n');
    assert.match(text, /header\.magic: expected 1263290434 \[42 48 4c 4b\], got 1263290435 \[43 48 4c 4b\]/);
  } finally {
    rec.done();
  }
});

test.run();
