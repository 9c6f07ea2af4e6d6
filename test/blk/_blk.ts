/**
 * Shared setup for the blk suites: a raw image file, a simulator serving it as device 2 (after the
 * default rng 0 and console 1), and a hand-built request chain on a RawRing for bad-input tests.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BLK_HEADER_BYTES } from '../../firmware/devices/blk';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import type { Sim } from '../../frontend/sim';
import { createSim } from '../../frontend/sim';
import type { Seg } from '../helpers';
import type { RawRing } from '../helpers';
import { liveRaw, submitChain } from '../helpers';

export const BLK = 2;

export interface BlkSimOptions {
  sizeBytes?: number;
  readOnly?: boolean;
  queues?: number;
  /** Initial image bytes (default: a pattern, so "untouched" is checkable). */
  content?: Uint8Array;
  /** Serve this existing image instead (not rewritten, not removed by `done()`). */
  path?: string;
  /** The storage service's `io` (docs/hal.md): the runtime's default when absent. */
  io?: 'sync' | 'async';
  /** The folder the image goes in (default /dev/shm when there is one, else the OS temp folder). */
  dir?: string;
}

/**
 * A folder for images on a disk file system, not a memory one: under the project's git-ignored .cache/
 * (the native runtime serves a memory-backed image inline, a disk file on io_uring; docs/native.md).
 */
export function diskImageDir(): string {
  const dir = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), '.cache', 'test-images');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A pattern image: byte i is (i * 31 + 7) & 0xff. */
export function pattern(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** A fresh image file (in `o.dir`, else /dev/shm when there is one); `image()` reads it back, `remove()` deletes it. */
export function blkImage(o: BlkSimOptions = {}) {
  const dir = o.path ? null : mkdtempSync(join(o.dir ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()), 'bulkhead-blk-'));
  const path = o.path ?? join(dir!, 'disk.img');
  const initial = o.path ? new Uint8Array(readFileSync(o.path)) : (o.content ?? pattern(o.sizeBytes ?? 1 << 20));
  if (dir) writeFileSync(path, initial);
  return {
    path,
    initial,
    image: () => new Uint8Array(readFileSync(path)),
    remove: () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Board overrides serving `path` as blk device 2 (after the default rng 0 and console 1). */
export function blkBoard(path: string, o: BlkSimOptions = {}) {
  return {
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'console', service: 'console0' },
      { type: 'blk', service: 'disk0', queues: o.queues ?? 1 },
    ],
    services: { disk0: { kind: 'storage', path, readOnly: o.readOnly === true, ...(o.io ? { io: o.io } : {}) } },
  };
}

/** A simulator serving a fresh image as blk device 2; `image()` reads the file back, `done()` cleans up. */
export async function blkSim(o: BlkSimOptions = {}) {
  const img = blkImage(o);
  const s = await createSim(blkBoard(img.path, o));
  return {
    s,
    path: img.path,
    initial: img.initial,
    image: img.image,
    done: () => {
      s.dispose();
      img.remove();
    },
  };
}

/** Negotiates `features` on the blk device, installs one raw ring as queue 0 and goes live. */
export function liveRawBlk(s: Sim, features = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX, size = 16): RawRing {
  return liveRaw(s, BLK, features, [0], size)[0]!;
}

export type { Seg };

/** A request header (type, sector as lo/hi u32). */
export function header(type: number, sector = 0, sectorHi = 0): Uint8Array {
  const b = new Uint8Array(BLK_HEADER_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, type, true);
  v.setUint32(8, sector >>> 0, true);
  v.setUint32(12, sectorHi >>> 0, true);
  return b;
}

/** Offers one hand-built chain on the blk request queue, notifies, runs the backend (test/helpers.ts submitChain). */
export function submitRaw(ring: RawRing, segs: Seg[]) {
  return submitChain(ring, BLK, 0, segs);
}
