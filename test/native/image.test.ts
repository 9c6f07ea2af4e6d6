/**
 * Partition images: a bytecode image boots and serves; every way an image can be wrong is refused
 * with one line on stderr and a non-zero exit, before anything in it is used.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { runToEnd } from '../../runtime/native/harness.mjs';
import { buildImage, H, parseImage, sealImage } from '../../scripts/image.mjs';
import { board, BUNDLE, FW, requireNative, scratch, withNative } from './_native';

requireNative();
const tmp = scratch();
const good = buildImage({ board: 'host-sim', bundle: BUNDLE });
const goodPath = tmp.file('good.img', good);

/** Runs the firmware on an image (no ivshmem needed: refusals come first) and returns its exit. */
async function boot(img: Uint8Array, boardArg = 'host-sim') {
  const p = tmp.file(`t-${Math.random().toString(36).slice(2)}.img`, img);
  return runToEnd(FW, [p, '--board', boardArg, '--shm', `${tmp.dir}/win`, '--log-level', '0']);
}

function assertRefused(r: { code: number | null; stderr: string }, reason: RegExp) {
  assert.is(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^bulkhead-fw: /);
  assert.match(lines[0]!, reason);
}

/** A copy of the good image with `edit` applied, optionally re-sealed with a valid hash. */
function forge(edit: (img: Uint8Array, v: DataView) => void, reseal = true): Uint8Array {
  const img = good.slice();
  edit(img, new DataView(img.buffer));
  return reseal ? sealImage(img) : img;
}

test('image layout: header, manifest with the board and devices, QuickJS bytecode, valid hash', () => {
  const p = parseImage(good);
  assert.is(p.header.magic, 'BHLKIMG\0');
  assert.is(p.header.version, 1);
  assert.is(p.header.abi, 5);
  assert.is(p.header.boardId, 1);
  assert.is(p.header.totalLength, good.length);
  assert.ok(p.hashOk);
  assert.is(p.manifest.board.name, 'host-sim');
  assert.equal(p.manifest.board.devices.map((d: { type: string }) => d.type), ['rng', 'console']);
  assert.is(p.manifest.firmware.kind, 'quickjs-bytecode');
  assert.match(p.manifest.engine, /^quickjs-/);
});

test('--devices narrows the capability manifest', () => {
  const p = parseImage(buildImage({ board: 'host-sim', devices: 'rng', bundle: BUNDLE }));
  assert.equal(p.manifest.board.devices.map((d: { type: string }) => d.type), ['rng']);
  assert.throws(() => buildImage({ board: 'host-sim', devices: 'nosuch', bundle: BUNDLE }), /no nosuch device/);
});

test('a good image passes --check and boots over ivshmem; the driver model talks to it', async () => {
  const r = await runToEnd(FW, ['--check', goodPath, '--board', 'host-sim']);
  assert.is(r.code, 0, r.stderr);
  await withNative({ image: goodPath }, async (n) => {
    const fe = await Frontend.attach(n.port!);
    assert.is(await fe.ping(7), 7);
  });
});

test('refused: corrupted (one bit flipped in the firmware)', async () => {
  const off = parseImage(good).header.totalLength - 100;
  assertRefused(await boot(forge((img) => (img[off]! ^= 1), false)), /corrupted: SHA-256 mismatch/);
});

test('refused: corrupted hash itself', async () => {
  assertRefused(await boot(forge((img) => (img[img.length - 1]! ^= 0x80), false)), /SHA-256 mismatch/);
});

test('refused: truncated', async () => {
  assertRefused(await boot(good.subarray(0, good.length - 33)), /truncated/);
  assertRefused(await boot(good.subarray(0, 40)), /truncated/);
});

test('refused: trailing bytes after the hash', async () => {
  const longer = new Uint8Array(good.length + 5);
  longer.set(good);
  assertRefused(await boot(longer), /trailing data/);
});

test('refused: wrong format version (even with a valid hash)', async () => {
  assertRefused(await boot(forge((_, v) => v.setUint16(H.version, 2, true))), /format version 2, this runtime reads version 1/);
});

test('refused: a runtime ABI newer than this runtime (or 0); an image built for the older ABI 1 still runs', async () => {
  assertRefused(await boot(forge((_, v) => v.setUint32(H.abi, 6, true))), /ABI 6, this runtime provides ABI 5/);
  assertRefused(await boot(forge((_, v) => v.setUint32(H.abi, 0, true))), /ABI 0, this runtime provides ABI 5/);
  const older = tmp.file('abi1.img', forge((_, v) => v.setUint32(H.abi, 1, true)));
  const r = await runToEnd(FW, ['--check', older, '--board', 'host-sim']);
  assert.is(r.code, 0, `an ABI 1 image is accepted: ${r.stderr}`);
});

test('refused: not an image (bad magic)', async () => {
  assertRefused(await boot(forge((img) => (img[0] = 0x58))), /not a Bulkhead partition image/);
  assertRefused(await boot(readFileSync(BUNDLE)), /not a Bulkhead partition image/);
});

test('refused: wrong board (image for another board id)', async () => {
  const other = tmp.file('other-board.json', new TextEncoder().encode(JSON.stringify(board({ id: 99, name: 'other' }))));
  assertRefused(await boot(good, other), /image is for board host-sim \(id 1\), this partition is board other \(id 99\)/);
});

test('refused: header board id that disagrees with the manifest', async () => {
  assertRefused(await boot(forge((_, v) => v.setUint32(H.boardId, 5, true))), /header says board id 5, its manifest says 1/);
});

test('refused: sections leaving the file', async () => {
  assertRefused(await boot(forge((_, v) => v.setUint32(H.firmwareLength, 0x7fffffff, true))), /sections overlap or leave the file/);
});

test('refused: bytecode from another QuickJS version', async () => {
  const p = parseImage(good);
  const text = new TextDecoder().decode(good.subarray(64, 64 + new DataView(good.buffer).getUint32(H.manifestLength, true)));
  const swapped = text.replace(p.manifest.engine, 'quickjs-1999-01-01'.padEnd(p.manifest.engine.length, 'x').slice(0, p.manifest.engine.length));
  assert.is(swapped.length, text.length);
  assertRefused(await boot(forge((img) => img.set(new TextEncoder().encode(swapped), 64))), /bytecode is for quickjs-1999/);
});

test('a source image (--source) also boots: the runtime compiles it at load', async () => {
  const p = tmp.file('source.img', buildImage({ board: 'host-sim', bundle: BUNDLE, source: true }));
  await withNative({ image: p }, async (n) => {
    const fe = await Frontend.attach(n.port!);
    assert.is(await fe.ping(9), 9);
  });
});

test.after(() => tmp.done());
test.run();
