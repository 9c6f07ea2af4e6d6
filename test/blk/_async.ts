/**
 * A blk device on the TS sources over an asynchronous storage fake that the test completes by hand, in
 * any order: for the out-of-order, FLUSH-ordering, bounded and reset behaviours of the asynchronous
 * path (docs/blk.md, "Asynchronous storage"). One split queue per request queue, requests built in the
 * window by `post()`.
 */
import { BlkDevice, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import type { StorageService } from '../../firmware/services';
import { STORAGE_OP_FLUSH, STORAGE_OP_READ, STORAGE_OP_WRITE } from '../../firmware/services';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { SplitQueue } from '../../firmware/virtqueue/split';
import { GuestWindow } from '../../firmware/window/window';

const POOL = 0x1000;
const QSIZE = 64;
/** Requests `post()` can make per queue (three descriptors each, never reused). */
const MAX_POSTS = 21;
/** Per queue: descriptor table, avail ring, used ring, then per request slot a header, 4 KiB of data and a status byte. */
const QUEUE_BYTES = 0x20000;

export interface Submission {
  tag: number;
  op: number;
  fileOffset: number;
  ranges: number[];
}

export const OP_NAME: Record<number, string> = { [STORAGE_OP_READ]: 'read', [STORAGE_OP_WRITE]: 'write', [STORAGE_OP_FLUSH]: 'flush' };

/** The fake: submissions wait in `inFlight` until `finish(tag)`; `cancels` lists storage.cancel calls. */
export class FakeAsyncStorage implements StorageService {
  readonly sizeBytes = 1 << 20;
  readonly readOnly = false;
  readonly blockSize = 512;
  readonly handle = 7;
  readonly inFlight = new Map<number, Submission>();
  readonly submitted: Submission[] = [];
  readonly cancels: number[] = [];
  private readonly done: number[] = [];
  syncFlushes = 0;
  constructor(readonly queueDepth = 32) {}
  read(): number {
    throw new Error('the asynchronous path must not read synchronously');
  }
  write(): number {
    throw new Error('the asynchronous path must not write synchronously');
  }
  flush(): number {
    this.syncFlushes++;
    return 0;
  }
  discard(): number {
    return 0;
  }
  writeZeroes(): number {
    return 0;
  }
  submit(tag: number, op: number, fileOffset: number, ranges: Uint32Array, n: number): number {
    if (this.inFlight.has(tag)) throw new Error(`tag ${tag} submitted twice while in flight`);
    if (this.inFlight.size >= this.queueDepth) throw new Error(`more than queueDepth ${this.queueDepth} requests submitted`);
    const s = { tag, op, fileOffset, ranges: Array.from(ranges.subarray(0, 2 * n)) };
    this.inFlight.set(tag, s);
    this.submitted.push(s);
    return 0;
  }
  complete(out: Int32Array): number {
    const k = Math.min(out.length / 2, this.done.length / 2);
    for (let i = 0; i < 2 * k; i++) out[i] = this.done[i]!;
    this.done.splice(0, 2 * k);
    return k;
  }
  cancel(tag: number): number {
    this.cancels.push(tag);
    return this.inFlight.has(tag) ? 0 : -2;
  }
  /** The storage finishes request `tag` (result 0 or −errno); the device hears of it at its next onService. */
  finish(tag: number, result = 0): void {
    if (!this.inFlight.delete(tag)) throw new Error(`tag ${tag} is not in flight`);
    this.done.push(tag, result);
  }
  /** Submissions in flight of operation `op`, oldest first. */
  pending(op: number): Submission[] {
    return [...this.inFlight.values()].filter((s) => s.op === op);
  }
}

/** A device with `queues` live queues over `storage`; `post()` makes a request available, `run()` processes what was kicked. */
export function asyncBlk(storage: FakeAsyncStorage, queues = 1) {
  const buf = new ArrayBuffer(POOL + queues * QUEUE_BYTES);
  const v = new DataView(buf);
  const bytes = new Uint8Array(buf);
  const win = new GuestWindow(buf, POOL);
  const dev = new BlkDevice({ storage, log: () => {}, queues });
  const base = (qi: number) => POOL + qi * QUEUE_BYTES;
  const desc = (qi: number) => base(qi);
  const avail = (qi: number) => base(qi) + 0x400;
  const used = (qi: number) => base(qi) + 0x800;
  const slot = (qi: number, n: number) => base(qi) + 0x1000 + n * 0x1100;
  const make = (qi: number) => new SplitQueue(win, qi, QSIZE, desc(qi), avail(qi), used(qi), false, false, () => {});
  let qs = Array.from({ length: queues }, (_, i) => make(i));
  const kicked = new Set<number>();
  const activate = () =>
    dev.activate({ features: 0n, queue: (i) => qs[i] ?? null, configChanged: () => {}, kick: (i) => void kicked.add(i) });
  dev.acceptFeatures(1n << 9n | (queues > 1 ? 1n << 12n : 0n)); // FLUSH (writeback), MQ
  activate();
  const availIdx = new Array<number>(queues).fill(0);
  const nextHead = new Array<number>(queues).fill(0);
  const d = (qi: number, i: number, addr: number, len: number, flags: number, next = 0) => {
    const at = desc(qi) + 16 * i;
    v.setUint32(at, addr, true);
    v.setUint32(at + 4, 0, true);
    v.setUint32(at + 8, len, true);
    v.setUint16(at + 12, flags, true);
    v.setUint16(at + 14, next, true);
  };
  return {
    dev,
    bytes,
    view: v,
    kicked,
    /** Makes a request available on queue `qi` (IN/OUT: 4 KiB at `sector`); returns its head and the status byte's offset. */
    post(type: number, sector = 0, qi = 0): { head: number; status: number; data: number } {
      const n = nextHead[qi]!;
      if (n >= MAX_POSTS) throw new Error(`post(): at most ${MAX_POSTS} requests per queue`);
      const head = n * 3;
      nextHead[qi] = n + 1;
      const s = slot(qi, n);
      const data = s + 0x10;
      const status = s + 0x10 + 0x1000;
      v.setUint32(s, type, true);
      v.setUint32(s + 4, 0, true);
      v.setUint32(s + 8, sector, true);
      v.setUint32(s + 12, 0, true);
      bytes[status] = 0xee; // "not written"
      if (type === VIRTIO_BLK_T_FLUSH) {
        d(qi, head, s, 16, VIRTQ_DESC_F_NEXT, head + 1);
        d(qi, head + 1, status, 1, VIRTQ_DESC_F_WRITE);
      } else {
        d(qi, head, s, 16, VIRTQ_DESC_F_NEXT, head + 1);
        d(qi, head + 1, data, 4096, (type === VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0) | VIRTQ_DESC_F_NEXT, head + 2);
        d(qi, head + 2, status, 1, VIRTQ_DESC_F_WRITE);
      }
      v.setUint16(avail(qi) + 4 + 2 * (availIdx[qi]! % QSIZE), head, true);
      availIdx[qi] = (availIdx[qi]! + 1) & 0xffff;
      v.setUint16(avail(qi) + 2, availIdx[qi]!, true);
      return { head, status, data };
    },
    /** Processes queue `qi` as the transport would after a notify. */
    process(qi = 0, budget = 64): boolean {
      return dev.processQueue(qi, budget);
    },
    /** The storage said it has completions (onService), then the kicked queues run, as the transport does. */
    service(): void {
      dev.onService(64);
      for (const i of [...kicked]) {
        kicked.delete(i);
        dev.processQueue(i, 64);
      }
    },
    /** Used entries written so far on queue `qi` (they are published by the transport; here read straight from the ring). */
    usedEntries(qi = 0): { id: number; len: number }[] {
      const q = qs[qi]!;
      const out: { id: number; len: number }[] = [];
      for (let k = 0; k < q.nextUsed; k++) out.push({ id: v.getUint32(used(qi) + 4 + 8 * k, true), len: v.getUint32(used(qi) + 8 + 8 * k, true) });
      return out;
    },
    counters: () => dev.counters(),
    /** Device reset, then (like a driver re-initialising) fresh queues over the same memory and DRIVER_OK again. */
    resetAndReinit(): void {
      dev.reset();
      dev.acceptFeatures(1n << 9n | (queues > 1 ? 1n << 12n : 0n));
      qs = Array.from({ length: queues }, (_, i) => make(i));
      availIdx.fill(0);
      nextHead.fill(0);
      activate();
    },
    /** RESET_VQUEUE of `qi` and a fresh queue there. */
    resetQueue(qi: number): void {
      dev.queueReset(qi);
      qs[qi] = make(qi);
      availIdx[qi] = 0;
      nextHead[qi] = 0;
    },
  };
}

export { VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT };
