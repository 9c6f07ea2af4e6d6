// A trace whose recorded firmware output was altered (one byte of a response in the device→driver
// FIFO) makes the replay stop exactly at the step that checks that write, with the slot decoded.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { computeLayout } from '../../firmware/window/layout';
import { replayOnNode } from '../../runtime/node/trace';
import { WindowModel } from '../../runtime/trace/decode';
import { readHeader, readTrace } from '../../runtime/trace/format';
import { describeResult } from '../../runtime/trace/print';
import { BUNDLE, recordWorkload } from './_trace';

test('flipping a byte of a recorded EVENT_USED stops the replay at the step that checks it', async () => {
  const rec = await recordWorkload();
  try {
    const h = readHeader(rec.bytes);
    const board = JSON.parse(h.boardJson) as { window: { size: number; fifoSlots: number } };
    const l = computeLayout(board.window.size, board.window.fifoSlots);
    const slots = l.fifoV2D.offset + 128;
    let step = 0;
    let target: { fileOff: number; step: number } | null = null;
    for (const r of readTrace(rec.bytes)) {
      if (r.type === 'call' || r.type === 'hal' || r.type === 'return') step++;
      if (target || r.type !== 'writes') continue;
      for (const x of r.ranges) {
        // A message written into a v→d slot whose id byte (offset 1) is EVENT_USED (0x42).
        const slotStart = x.off >= slots ? slots + Math.floor((x.off - slots) / l.slotSize) * l.slotSize : -1;
        if (slotStart >= 0 && x.off === slotStart && x.data.length > 2 && x.data[1] === 0x42) {
          target = { fileOff: x.data.byteOffset - rec.bytes.byteOffset + 8, step: step + 1 };
          break;
        }
      }
    }
    assert.ok(target, 'the recorded run sent an EVENT_USED');
    const tampered = rec.bytes.slice();
    tampered[target!.fileOff] ^= 0x01; // the queue index in EVENT_USED's payload
    const model = new WindowModel(h.boardJson);
    const r = await replayOnNode(tampered, BUNDLE, 'tampered', (x) => model.follow(x));
    assert.ok(r.divergence, 'the replay diverged');
    assert.is(r.divergence!.kind, 'window');
    assert.is(r.divergence!.step, target!.step, 'it stops at the step right after the tampered write');
    const text = describeResult(r, model).join('\n');
    assert.match(text, /v→d FIFO slot \d+: expected EVENT_USED dev \d+ queue \d+/);
  } finally {
    rec.done();
  }
});

test.run();
