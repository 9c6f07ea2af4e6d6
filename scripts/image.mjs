#!/usr/bin/env node
/**
 * Partition images ("flash"): one file the native runtime boots, holding the board and device
 * manifest, the firmware as QuickJS bytecode compiled by the native runtime itself, and a SHA-256
 * over everything. Layout: docs/image-format.md. The runtime refuses an image whose magic, format
 * version, length, hash, ABI, board or engine does not match (runtime/native/image.c).
 *
 * The command line is `bulkhead image` (scripts/cli/image.mjs). Exported: buildImage(options) and parseImage(bytes) for tools and tests.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

export const IMAGE_MAGIC = 'BHLKIMG\0';
export const IMAGE_FORMAT_VERSION = 1;
export const IMAGE_HEADER_SIZE = 64;
export const IMAGE_HASH_SIZE = 32;
export const IMAGE_FLAG_BYTECODE = 1;
/** Runtime ABI the firmware is built against (__hal.abi). */
export const RUNTIME_ABI = 5;

/** Header field offsets (little-endian). */
export const H = {
  magic: 0x00, version: 0x08, headerSize: 0x0a, abi: 0x0c, boardId: 0x10, flags: 0x14,
  manifestOffset: 0x18, manifestLength: 0x1c, firmwareOffset: 0x20, firmwareLength: 0x24, totalLength: 0x28,
};

function loadBoard(board) {
  if (typeof board === 'object' && board) return structuredClone(board);
  const path = board.includes('/') || board.endsWith('.json') ? resolve(board) : join(ROOT, 'boards', `${board}.json`);
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The engine tag of a native runtime binary, e.g. "quickjs-2025-04-26". */
export function engineOf(fw = join(ROOT, 'build/bulkhead-fw')) {
  const out = execFileSync(fw, ['--version'], { encoding: 'utf8' });
  const m = /engine (\S+)/.exec(out);
  if (!m) throw new Error(`${fw} --version: unexpected output ${out.trim()}`);
  return m[1];
}

/** Compiles a bundle to QuickJS bytecode with the native runtime (the only engine that can read it). */
export function compileBytecode(bundlePath, fw = join(ROOT, 'build/bulkhead-fw')) {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-image-'));
  try {
    const out = join(dir, 'firmware.bc');
    execFileSync(fw, ['--compile', bundlePath, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Keeps the board's devices whose type is listed (in the board's order); every listed type must exist. */
function selectDevices(board, devices) {
  if (!devices) return board.devices;
  const want = Array.isArray(devices) ? devices : String(devices).split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of want) if (!board.devices.some((d) => d.type === t)) throw new Error(`board ${board.name} has no ${t} device`);
  return board.devices.filter((d) => want.includes(d.type));
}

/**
 * Builds a partition image. Options: board (name, path or object), devices (types, comma list or
 * array), bundle (path, default dist/firmware.js), source (true: store the bundle source instead of
 * bytecode), fw (native runtime used to compile), output (path; optional). Returns the bytes.
 */
export function buildImage(opts = {}) {
  const board = loadBoard(opts.board ?? 'host-sim');
  if (!Number.isInteger(board.id) || board.id < 0 || board.id > 0xffffffff) throw new Error(`board ${board.name}: id must be a u32`);
  board.devices = selectDevices(board, opts.devices);
  const bundlePath = resolve(opts.bundle ?? join(ROOT, 'dist/firmware.js'));
  const fw = opts.fw ?? join(ROOT, 'build/bulkhead-fw');
  const bytecode = !opts.source;
  const firmware = bytecode ? compileBytecode(bundlePath, fw) : new Uint8Array(readFileSync(bundlePath));
  const manifest = {
    format: IMAGE_FORMAT_VERSION,
    abi: RUNTIME_ABI,
    board, // window, lines, limits, services and devices: the capability manifest
    engine: bytecode ? engineOf(fw) : 'source',
    firmware: { kind: bytecode ? 'quickjs-bytecode' : 'source', bytes: firmware.length, sha256: createHash('sha256').update(firmware).digest('hex') },
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const manifestOffset = IMAGE_HEADER_SIZE;
  const firmwareOffset = manifestOffset + manifestBytes.length;
  const total = firmwareOffset + firmware.length + IMAGE_HASH_SIZE;
  const img = new Uint8Array(total);
  const v = new DataView(img.buffer);
  img.set(new TextEncoder().encode(IMAGE_MAGIC), H.magic);
  v.setUint16(H.version, IMAGE_FORMAT_VERSION, true);
  v.setUint16(H.headerSize, IMAGE_HEADER_SIZE, true);
  v.setUint32(H.abi, RUNTIME_ABI, true);
  v.setUint32(H.boardId, board.id, true);
  v.setUint32(H.flags, bytecode ? IMAGE_FLAG_BYTECODE : 0, true);
  v.setUint32(H.manifestOffset, manifestOffset, true);
  v.setUint32(H.manifestLength, manifestBytes.length, true);
  v.setUint32(H.firmwareOffset, firmwareOffset, true);
  v.setUint32(H.firmwareLength, firmware.length, true);
  v.setBigUint64(H.totalLength, BigInt(total), true);
  img.set(manifestBytes, manifestOffset);
  img.set(firmware, firmwareOffset);
  sealImage(img);
  if (opts.output) writeFileSync(opts.output, img);
  return img;
}

/** Recomputes the trailing SHA-256 in place (tests use it to forge otherwise-valid images). */
export function sealImage(img) {
  const body = img.subarray(0, img.length - IMAGE_HASH_SIZE);
  img.set(createHash('sha256').update(body).digest(), img.length - IMAGE_HASH_SIZE);
  return img;
}

/** Parses an image without verifying it against a runtime: header fields, manifest, firmware, hashOk. */
export function parseImage(img) {
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const u32 = (o) => v.getUint32(o, true);
  const header = {
    magic: new TextDecoder().decode(img.subarray(0, 8)),
    version: v.getUint16(H.version, true),
    headerSize: v.getUint16(H.headerSize, true),
    abi: u32(H.abi),
    boardId: u32(H.boardId),
    flags: u32(H.flags),
    totalLength: Number(v.getBigUint64(H.totalLength, true)),
  };
  const mo = u32(H.manifestOffset);
  const fo = u32(H.firmwareOffset);
  const manifest = JSON.parse(new TextDecoder().decode(img.subarray(mo, mo + u32(H.manifestLength))));
  const firmware = img.subarray(fo, fo + u32(H.firmwareLength));
  const hash = createHash('sha256').update(img.subarray(0, img.length - IMAGE_HASH_SIZE)).digest();
  const hashOk = Buffer.from(img.subarray(img.length - IMAGE_HASH_SIZE)).equals(hash);
  return { header, manifest, firmware, hashOk };
}
