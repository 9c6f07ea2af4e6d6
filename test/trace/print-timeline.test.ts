// `bulkhead replay --print`: one line per record, entry points and HAL calls with their arguments,
// window changes decoded into the messages and used entries they carry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { printTimeline } from '../../runtime/trace/print';
import { recordWorkload } from './_trace';

test('the timeline shows calls, HAL calls and decoded FIFO and used-ring changes, one line each', async () => {
  const rec = await recordWorkload();
  try {
    const lines: string[] = [];
    const steps = printTimeline(rec.bytes, rec.path, (l) => lines.push(l));
    const text = lines.join('\n');
    assert.ok(steps > 200, `${steps} steps`);
    assert.match(text, /^trace recorded by bulkhead node runtime/m);
    assert.match(text, /board host-sim \(id 1\), devices 0:rng 1:console 2:blk 3:net 4:net/);
    assert.match(text, /call onInterrupt\(1\)/);
    assert.match(text, /HAL storageWrite\(\d, 4096, \d+ \(0x[0-9a-f]+\), 1024\) = 0/);
    assert.match(text, /in {3}d→v \+1: SET_VQUEUE dev 0 queue 0 size 64/);
    assert.match(text, /out {2}.*v→d \+\d+: .*EVENT_USED dev 2 queue 0/);
    assert.match(text, /dev 2 q0 used \d+→\d+ \{id \d+ len 1\}/, 'a blk write completes with one status byte');
    assert.match(text, /end {2}\d+ steps$/);
    assert.not.ok(lines.some((l) => l.includes('\n')), 'one line per record');
  } finally {
    rec.done();
  }
});

test.run();
