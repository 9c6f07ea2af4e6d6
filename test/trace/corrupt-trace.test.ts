// A corrupt, truncated or oversized trace is one clear TraceFormatError line (byte offset and record),
// never a crash and never an allocation sized by a length the file claims; a small fuzz of the reader
// and of replay over mutated traces holds the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rand } from '../../frontend/fuzz/rand';
import { replayOnNode } from '../../runtime/node/trace';
import { LIMITS, R, TraceFormatError, TraceWriter, readTrace } from '../../runtime/trace/format';
import { BUNDLE, recordWorkload } from './_trace';

const readAll = (b: Uint8Array) => [...readTrace(b, 'x.bhtrace')];

function fails(b: Uint8Array, pattern: RegExp): void {
  try {
    readAll(b);
  } catch (e) {
    assert.instance(e, TraceFormatError, `a TraceFormatError, not ${String(e)}`);
    const m = (e as Error).message;
    assert.not.match(m, /\n/, 'one line');
    assert.match(m, pattern);
    return;
  }
  assert.unreachable(`accepted a bad trace (expected ${pattern})`);
}

/** A minimal valid trace with one CALL/RETURN. */
function small(windowSize = 65536): Uint8Array {
  const w = new TraceWriter({ runtime: 'node', bundleSha256: '00'.repeat(32), bundleKind: 'source', boardJson: JSON.stringify({ window: { size: windowSize } }), windowSize, abi: 2, peerId: -1, startedAt: 0, recorder: 't' });
  w.init([]);
  w.call(0, 'start', []);
  w.ret(1, 0, null);
  w.end();
  return w.take();
}

test('magic, version and flags are checked first', () => {
  fails(new Uint8Array(5), /not a Bulkhead trace \(5 bytes/);
  fails(new TextEncoder().encode('NOTATRACEatall'), /no BHTRACE magic/);
  const b = small();
  b[8] = 9;
  fails(b, /version 9, this reader knows version 1/);
  const c = small();
  c[10] = 1;
  fails(c, /flags 0x1 unknown/);
});

test('every truncation of a valid trace is refused as truncated (or short), never crashes', () => {
  const b = small();
  for (let n = 12; n < b.length; n++) {
    try {
      readAll(b.subarray(0, n));
      // Cutting exactly between records leaves a valid prefix without END: that is readable.
    } catch (e) {
      assert.instance(e, TraceFormatError);
      assert.match((e as Error).message, /truncated|no HEADER/);
    }
  }
});

test('a length claiming more than the file holds, or a count above the limits, is refused before allocating', () => {
  const b = small();
  const huge = Uint8Array.from([...b.subarray(0, 12), R.HEADER, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  fails(huge, /truncated \(the record needs 34359738367 bytes/);
  // A CALL whose argument list claims 2^40 elements.
  const w = small();
  const tail = Uint8Array.from([R.CALL, 9, 0, 0, 5, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  const noEnd = w.subarray(0, w.length - 3); // drop END (type, len, steps)
  fails(Uint8Array.from([...noEnd, ...tail]), /list of \d+ elements \(limit 4096/);
});

test('a window larger than a replay maps is refused', () => {
  fails(small(LIMITS.windowBytes * 2), /window of 536870912 bytes \(a replay maps at most 268435456\)/);
});

test('fuzz: 3000 mutations of a real trace are read or refused with a TraceFormatError, nothing else', async () => {
  const rec = await recordWorkload();
  try {
    const r = new Rand(20261203);
    for (let i = 0; i < 3000; i++) {
      const m = rec.bytes.slice(0, r.chance(0.3) ? r.int(rec.bytes.length) : rec.bytes.length);
      for (let k = 0; k < 1 + r.int(4); k++) if (m.length) m[r.int(m.length)] = r.chance(0.5) ? r.u32() & 0xff : m[r.int(m.length)]!;
      try {
        readAll(m);
      } catch (e) {
        if (!(e instanceof TraceFormatError)) throw new Error(`mutation ${i}: ${String(e)}`);
      }
    }
  } finally {
    rec.done();
  }
});

test('fuzz: replaying mutated traces ends in a result (identical, diverged or unreadable), never a crash', async () => {
  const rec = await recordWorkload();
  try {
    const r = new Rand(7);
    for (let i = 0; i < 25; i++) {
      const m = rec.bytes.slice();
      for (let k = 0; k < 1 + r.int(3); k++) m[200 + r.int(m.length - 200)] ^= 1 << r.int(8);
      try {
        const res = await replayOnNode(m, BUNDLE, 'mutated');
        assert.type(res.ok, 'boolean');
      } catch (e) {
        if (!(e instanceof TraceFormatError)) throw new Error(`mutation ${i}: ${e instanceof Error ? e.stack : String(e)}`);
      }
    }
  } finally {
    rec.done();
  }
});

test.run();
