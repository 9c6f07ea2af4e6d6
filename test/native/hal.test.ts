/**
 * The native runtime's Board HAL, probed by a hand-written firmware (fixtures/probe.js) that uses
 * nothing but __hal: the hardening, the window aliasing, every service's bounds checks, the budgets
 * (watchdog, memory, exception → onFault, then the loop goes on), the timer and SIGTERM → stop().
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NativeInstance } from './_native';
import { board, FIXTURES, scratch, withNative } from './_native';

const PROBE = `${FIXTURES}/probe.js`;
const CMD = 0x100, FAULTS = 0x104, KIND = 0x108, IRQS = 0x10c, STOPPED = 0x110, TIMERS = 0x114;
const DISK_BYTES = 1 << 20;

function probeBoard(limits: object = {}) {
  return board({
    services: {
      disk0: { kind: 'storage', path: 'set-by---service', readOnly: false },
      ro0: { kind: 'storage', path: 'set-by---service', readOnly: true },
    },
    limits,
  });
}

async function withProbe(limits: object, fn: (n: NativeInstance, v: DataView) => Promise<void>) {
  const tmp = scratch();
  const disk = tmp.file('disk.img', new Uint8Array(DISK_BYTES));
  const ro = tmp.file('ro.img', new Uint8Array(4096).fill(7));
  try {
    await withNative({ bundle: PROBE, board: probeBoard(limits), services: { disk0: disk, ro0: ro } }, async (n) => {
      await fn(n, new DataView(n.port!.bytes.buffer));
    });
  } finally {
    tmp.done();
  }
}

/** Writes a command, rings, and waits for the answering doorbell. */
async function command(n: NativeInstance, v: DataView, cmd: number) {
  while (await n.port!.wait(0)); // forget older rings
  v.setUint32(CMD, cmd, true);
  n.port!.kick();
  assert.ok(await n.port!.wait(10_000), `no doorbell after command ${cmd}; firmware said: ${n.stderr()}`);
}

test('HAL probe: hardening, window aliasing, services and their bounds checks', async () => {
  await withProbe({}, async (n, v) => {
    await command(n, v, 4);
    const len = v.getUint32(0x1000, true);
    const r = JSON.parse(new TextDecoder().decode(n.port!.bytes.subarray(0x1004, 0x1004 + len)));
    assert.is(r.abi, 5);
    assert.is(r.windowBytes, 4 << 20);
    assert.ok(r.frozen, '__hal is frozen');
    assert.is(r.transfer, 'undefined');
    assert.is(r.resize, 'undefined');
    assert.is(r.transferToFixedLength, 'undefined');
    assert.is(r.std, 'undefined', 'no std module');
    assert.is(r.os, 'undefined', 'no os module');
    assert.is(r.peerId, new DataView(n.port!.bytes.buffer).getUint16(0x40, true) === 0xffff ? undefined : r.peerId);
    assert.ok(r.clockMonotonic);
    assert.is(r.entropyRead, 64);
    assert.ok(r.entropyNonZero);
    assert.is(r.entropyOutside, -14, 'EFAULT past the window');
    assert.is(r.entropyFraction, -14, 'EFAULT for a fractional offset');
    assert.is(r.entropyWrongKind, -2, 'a service of another kind is not reachable');
    assert.is(r.unknownService, -2);
    assert.ok(r.storageHandle >= 0);
    assert.equal(r.storageInfo, [DISK_BYTES, 0, 128, 512], "size, read-only, queue depth (asynchronous by default), block size");
    assert.is(r.write, 0);
    assert.is(r.read, 0);
    assert.ok(r.readBack, 'read returns what was written');
    assert.is(r.flush, 0);
    assert.is(r.discard, 0);
    assert.ok(r.discardReadsZero, 'a discarded range reads as zeroes');
    assert.is(r.writeZeroes, 0);
    assert.ok(r.zeroesReadZero);
    assert.is(r.readPastEnd, -5, 'EIO past the end of the backing');
    assert.is(r.readOutsideWindow, -14);
    assert.is(r.writeOutsideWindow, -14);
    assert.is(r.badHandle, -9, 'EBADF');
    assert.is(r.bigOffset, -5);
    assert.equal(r.roInfo, [4096, 1, 128, 512]);
    assert.is(r.roWrite, -30, 'EROFS');
    assert.is(r.streamWrite, 100);
    assert.is(r.streamRead, 0);
    assert.is(r.streamOutside, -14);
    assert.ok(r.packetOpen < 0, 'no packet backing yet');
  });
});

test('the window is shared both ways (zero-copy): the probe saw bytes the frontend sees', async () => {
  await withProbe({}, async (n, v) => {
    await command(n, v, 4);
    assert.ok(n.port!.bytes.subarray(0x3000, 0x3010).every((b) => b === 0xab), 'bytes the firmware wrote are visible here');
  });
});

for (const [cmd, kind, name, limits] of [
  [1, 1, 'watchdog', { watchdogMs: 100 }],
  [2, 2, 'memory', { memoryBytes: 8 << 20 }],
  [3, 3, 'exception', {}],
] as const) {
  test(`a call stopped by ${name} is reported through onFault, and the loop goes on serving`, async () => {
    await withProbe(limits, async (n, v) => {
      await command(n, v, cmd);
      assert.is(v.getUint32(FAULTS, true), 1, 'onFault called once');
      assert.is(v.getUint32(KIND, true), kind, `fault kind ${name}`);
      const said = new RegExp(`onInterrupt stopped \\(${name}\\)`);
      for (let i = 0; i < 500 && !said.test(n.stderr()); i++) await new Promise((r) => setTimeout(r, 10)); // stderr is a pipe: it may trail the doorbell
      assert.match(n.stderr(), said);
      const before = v.getUint32(IRQS, true);
      await command(n, v, 0);
      assert.is(v.getUint32(IRQS, true), before + 1, 'the next doorbell is served');
      assert.is(n.fw.exitCode, null);
    });
  });
}

test('the one-shot timer fires onTimer', async () => {
  await withProbe({}, async (n, v) => {
    const end = Date.now() + 5000;
    while (v.getUint32(TIMERS, true) === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.is(v.getUint32(TIMERS, true), 1);
  });
});

test('SIGTERM calls stop() and the firmware exits 0', async () => {
  await withProbe({}, async (n, v) => {
    n.fw.kill('SIGTERM');
    const r = await n.exited;
    assert.is(r.code, 0);
    assert.is(v.getUint32(STOPPED, true), 1);
  });
});

test('a doorbell storm costs calls, not memory: 100k rings coalesce', async () => {
  await withProbe({}, async (n, v) => {
    const rssBefore = n.peakRss();
    for (let i = 0; i < 100_000; i++) n.port!.kick();
    await command(n, v, 0);
    assert.ok(v.getUint32(IRQS, true) < 100_000, 'rings were coalesced by the eventfd counter');
    assert.ok(n.peakRss() < rssBefore + (8 << 20), `RSS grew from ${rssBefore} to ${n.peakRss()}`);
  });
});

test.run();
