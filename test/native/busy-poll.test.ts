/**
 * Busy polling (bulkhead-fw --busy-poll US, board runtime.busyPollUs): the firmware keeps polling for
 * that long after each event and then sleeps again, so an idle partition does not burn its core; the
 * doorbells keep working both ways; a bad value is refused with one line and a non-zero exit.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { runToEnd } from '../../runtime/native/harness.mjs';
import { board, BUNDLE, FW, requireNative, scratch, withNative } from './_native';

requireNative();
const tmp = scratch();

/** CPU time of a process so far, in ms (utime + stime from /proc/PID/stat). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100; // fields 14 and 15, clock ticks of 10 ms
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('with --busy-poll the firmware answers every PING, then sleeps once the frontend goes quiet', async () => {
  await withNative({ args: ['--busy-poll', '2000'] }, async (n) => {
    assert.match(n.stderr(), /busy polling 2000 us after each event/);
    const fe = await Frontend.attach(n.port!);
    for (let i = 0; i < 300; i++) assert.is(await fe.ping(i), i, `PING ${i} echoed`);
    await sleep(100); // far past the 2 ms window: the firmware must be asleep in epoll_wait again
    const c0 = cpuMs(n.fw.pid!);
    await sleep(600);
    const used = cpuMs(n.fw.pid!) - c0;
    assert.ok(used <= 60, `an idle firmware used ${used} ms of CPU in 600 ms: it kept polling instead of sleeping`);
    assert.is(await fe.ping(7), 7, 'a doorbell after the quiet time wakes it');
  });
});

test('the board can ask for busy polling (runtime.busyPollUs); --busy-poll 0 overrides it', async () => {
  const b = board();
  b.runtime = { busyPollUs: 300 };
  await withNative({ board: b }, async (n) => {
    assert.match(n.stderr(), /busy polling 300 us after each event/);
    const fe = await Frontend.attach(n.port!);
    assert.is(await fe.ping(1), 1);
  });
  await withNative({ board: b, args: ['--busy-poll', '0'] }, async (n) => {
    assert.not.match(n.stderr(), /busy polling/);
  });
});

test('a bad busy-poll value is refused with one line and a non-zero exit', async () => {
  for (const v of ['-5', 'abc', '', '2e6']) {
    const r = await runToEnd(FW, ['--bundle', BUNDLE, '--board', 'host-sim', '--shm', `${tmp.dir}/win`, '--busy-poll', v]);
    assert.is.not(r.code, 0, `--busy-poll '${v}' accepted`);
    assert.match(r.stderr.trim(), /^bulkhead-fw: --busy-poll .*expected microseconds/, `--busy-poll '${v}': ${r.stderr}`);
  }
  const b = board();
  b.runtime = { busyPollUs: -1 };
  const p = tmp.file('board-bad.json', new TextEncoder().encode(JSON.stringify(b)));
  const r = await runToEnd(FW, ['--bundle', BUNDLE, '--board', p, '--shm', `${tmp.dir}/win2`]);
  assert.is.not(r.code, 0);
  assert.match(r.stderr.trim(), /runtime\.busyPollUs must be between 0 and 1000000/);
});

test.after(() => tmp.done());
test.run();
