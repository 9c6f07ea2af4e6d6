/**
 * Trace record and replay on the native runtime (docs/trace-format.md): a run recorded by
 * `bulkhead-fw --record` while the frontend model drives it from another process replays identically
 * on both runtimes; a node-recorded trace replays identically natively; a changed bundle or a
 * damaged trace gives the same verdicts as on node, as one JSON line, never a crash.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_ID_BLOCK, VIRTIO_ID_CONSOLE, VIRTIO_ID_RNG } from '../../firmware/virtio';
import { Frontend } from '../../frontend/device';
import { BlkDriver } from '../../frontend/drivers/blk';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { RngDriver } from '../../frontend/drivers/rng';
import { Rand } from '../../frontend/fuzz/rand';
import { replayOnNode } from '../../runtime/node/trace';
import { readHeader } from '../../runtime/trace/format';
import { recordWorkload } from '../trace/_trace';
import { BUNDLE, FW, ROOT, board, scratch, withNative } from './_native';

const SOURCE = readFileSync(BUNDLE, 'utf8');

/** Runs the native replayer; returns its verdict (one JSON line) and how the process ended. */
function nativeReplay(trace: string, bundle = BUNDLE) {
  const r = spawnSync(FW, ['--replay', trace, '--bundle', bundle], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  return { status: r.status, signal: r.signal, lines, verdict: JSON.parse(lines[lines.length - 1] || '{}') as { ok: boolean; steps: number; error?: string; divergence?: { kind: string; step: number } } };
}

async function recordNative(tmp: ReturnType<typeof scratch>): Promise<string> {
  const disk = tmp.file('disk.img', new Uint8Array(1 << 20));
  const trace = join(tmp.dir, 'native.bhtrace');
  const b = board({ devices: [{ type: 'blk', service: 'disk0' }], services: { disk0: { kind: 'storage', path: disk, readOnly: false } } });
  await withNative({ board: b, args: ['--record', trace] }, async (n) => {
    const fe = await Frontend.attach(n.port!);
    const rng = await RngDriver.open(fe.find(VIRTIO_ID_RNG)!);
    await rng.read(64);
    const con = await ConsoleDriver.open(fe.find(VIRTIO_ID_CONSOLE)!);
    await con.write('native trace\n');
    const blk = await BlkDriver.open(fe.find(VIRTIO_ID_BLOCK)!);
    for (let i = 0; i < 8; i++) await blk.write(8 * i, new Uint8Array(4096).fill(i + 1));
    await blk.flush();
    await blk.read(0, 64);
  });
  return trace;
}

test('a native run recorded while the frontend drives it from another process replays identically on native and on node', async () => {
  const tmp = scratch();
  try {
    const trace = recordNative(tmp);
    const path = await trace;
    const bytes = readFileSync(path);
    const h = readHeader(bytes);
    assert.is(h.runtime, 'native');
    assert.is(h.bundleKind, 'source');
    const nat = nativeReplay(path);
    assert.is(nat.status, 0, `native replay: ${nat.lines.join(' ')}`);
    assert.ok(nat.verdict.ok && nat.verdict.steps > 100, JSON.stringify(nat.verdict));
    const node = await replayOnNode(bytes, SOURCE, path);
    assert.ok(node.ok, `node replay of a native trace: ${JSON.stringify(node.divergence && { ...node.divergence, window: undefined })} ${node.error ?? ''}`);
    assert.is(node.steps, nat.verdict.steps, 'both runtimes check the same steps');
    assert.not.ok(node.noEnd, 'SIGTERM closed the trace with its END record');
  } finally {
    tmp.done();
  }
});

test('a node-recorded run replays identically on the native runtime', async () => {
  const rec = await recordWorkload();
  try {
    const nat = nativeReplay(rec.path);
    assert.is(nat.status, 0, nat.lines.join(' '));
    assert.ok(nat.verdict.ok, JSON.stringify(nat.verdict));
  } finally {
    rec.done();
  }
});

test('bulkhead replay --runtime native stops at the changed log line of a modified bundle, like node', async () => {
  const rec = await recordWorkload();
  const tmp = scratch();
  try {
    const mod = tmp.file('mod.js', new TextEncoder().encode(SOURCE.replace('`bulkhead: board ${', '`bulkhead: BOARD ${')));
    const nat = nativeReplay(rec.path, mod);
    assert.is(nat.status, 1);
    const node = await replayOnNode(rec.bytes, readFileSync(mod, 'utf8'), rec.path);
    assert.is(nat.verdict.divergence?.kind, 'hal');
    assert.is(nat.verdict.divergence?.step, node.divergence?.step, 'the same step on both runtimes');
    const cli = spawnSync(process.execPath, [join(ROOT, 'bin/bulkhead.mjs'), 'replay', rec.path, '--runtime', 'native', '--bundle', mod], { encoding: 'utf8' });
    assert.is(cli.status, 1, cli.stderr);
    assert.match(cli.stdout, `diverged at step ${node.divergence!.step}`);
    assert.match(cli.stdout, 'expected HAL log(2, "bulkhead: board host-sim');
    assert.match(cli.stdout, 'got      HAL log(2, "bulkhead: BOARD host-sim');
  } finally {
    tmp.done();
    rec.done();
  }
});

test('the native reader refuses damaged traces with one JSON error line and survives 60 random mutations', async () => {
  const rec = await recordWorkload();
  const tmp = scratch();
  try {
    const cut = tmp.file('cut.bhtrace', rec.bytes.subarray(0, rec.bytes.length - 100));
    const v = nativeReplay(cut);
    assert.is(v.status, 2);
    assert.match(v.verdict.error ?? '', /truncated/);
    assert.ok(v.verdict.steps > 0, 'the steps before the cut were checked');
    const bad = tmp.file('bad.bhtrace', new TextEncoder().encode('NOTATRACE...'));
    assert.match(nativeReplay(bad).verdict.error ?? '', /no BHTRACE magic/);
    const r = new Rand(99);
    const path = join(tmp.dir, 'm.bhtrace');
    for (let i = 0; i < 60; i++) {
      const m = rec.bytes.slice(0, r.chance(0.3) ? r.int(rec.bytes.length) : rec.bytes.length);
      for (let k = 0; k < 1 + r.int(3); k++) if (m.length > 12) m[12 + r.int(m.length - 12)] ^= 1 << r.int(8);
      writeFileSync(path, m);
      const x = spawnSync(FW, ['--replay', path, '--bundle', BUNDLE], { encoding: 'utf8' });
      assert.is(x.signal, null, `mutation ${i} crashed the replayer (${x.signal}): ${x.stderr}`);
      assert.ok([0, 1, 2].includes(x.status!), `mutation ${i}: exit ${x.status}: ${x.stderr}`);
      if (x.status !== 2 || x.stdout.trim()) JSON.parse(x.stdout.trim().split('\n').pop()!);
    }
  } finally {
    tmp.done();
    rec.done();
  }
});

test.run();
