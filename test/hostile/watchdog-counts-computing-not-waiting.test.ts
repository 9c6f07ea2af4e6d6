// The node runtime's watchdog stops a call that computes for longer than limits.watchdogMs, not one
// that merely waits (for a slow host call, or for a core on a loaded machine: the 60-minute fuzz
// campaign's false "no-escape" finding, docs/security.md). A tiny stand-in firmware makes the timing
// exact: one host call that sleeps 800 ms of wall time, then a little computing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadBoard } from '../../frontend/sim';
import { NodeRuntime } from '../../runtime/node/runtime';

const FIRMWARE = `
  var h = __hal.entropyOpen('entropy0');
  globalThis.bulkhead = {
    start: function () {},
    onInterrupt: function () { __hal.entropyRead(h, 0, 0); var x = 0; for (var i = 0; i < 200000; i++) x = (x + i) | 0; return x & 0; },
    poll: function () { for (;;) {} },
    onFault: function () { return 0; },
    stats: function () { return '{}'; },
  };`;

async function runtime() {
  const board = loadBoard();
  board.limits.watchdogMs = 500;
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  return NodeRuntime.create({ bundle: FIRMWARE, board, onRaise: () => {}, log: () => {}, entropy: () => void Atomics.wait(sleep, 0, 0, 800) });
}

test('a call that waits 800 ms in a host call, then computes a little, is not stopped by a 500 ms watchdog', async () => {
  const rt = await runtime();
  try {
    rt.call('onInterrupt', 1);
    assert.equal(rt.faults, [], 'waiting is not computing');
  } finally {
    rt.dispose();
  }
});

test('a call that computes without end is still stopped by the watchdog', async () => {
  const rt = await runtime();
  try {
    const t0 = Date.now();
    rt.call('poll');
    assert.is(rt.faults.length, 1);
    assert.is(rt.faults[0]!.kind, 'watchdog');
    assert.ok(Date.now() - t0 < 30_000, 'stopped in bounded time');
  } finally {
    rt.dispose();
  }
});

test.run();
