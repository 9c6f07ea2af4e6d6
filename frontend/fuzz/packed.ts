/**
 * The `packed` fuzz target: packed virtqueues (virtio 1.3 §2.8) on rng and on the console (whose receive
 * queue keeps a buffer in flight while the host has no input). A case is a series of rounds, each a set
 * of descriptor-ring, table and buffer writes and EVENT_AVAIL messages followed by a doorbell. The
 * generator plays a driver going round the ring lap after lap — its own position, wrap counter and
 * buffer ids, assuming the device used every buffer of the round — and mutates what it writes: flags of
 * the wrong wrap or with AVAIL = USED, lists whose head comes first or that run past the ring or into
 * descriptors the device holds, out-of-range and duplicate buffer ids, INDIRECT where it may not be,
 * buffers outside the pool, readable after writable, bogus driver event suppression values.
 *
 * The checks (run after each doorbell, from snapshots taken before it; engine.ts runs the rest): every
 * changed byte lies in the descriptor ring, the device event suppression structure or a buffer some
 * descriptor made writable; every used descriptor the device wrote has AVAIL = USED, an id below the
 * queue size that ended some list the driver wrote, and a length within that list's writable bytes.
 */
import {
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_RING_RESET,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from '../../firmware/virtio';
import * as P from '../../firmware/transport/protocol';
import type { Rand } from './rand';
import { toHex } from './rand';
import { BASE_FEATURES, message } from './raw';
import { le32 } from './ring';

/** Where the packed target puts a queue's areas in the arena (offsets from its start). */
export const PACKED_ARENA = { desc: 0, driver: 0x1000, device: 0x2000, data: 0x4000, tables: 0x30000, size: 0x40000 };

/** A window write relative to the arena. */
export interface ArenaWrite {
  off: number;
  data: string;
}

/** One round of a ring case: writes, then messages, then one doorbell. */
export interface FuzzRound {
  window: ArenaWrite[];
  messages: string[];
}

/** What the generator needs of the fuzz context. */
export interface PackedGenContext {
  arena: number;
  windowSize: number;
  poolOffset: number;
  devNum(type: string): number;
}

const AVAIL = VIRTQ_DESC_F_AVAIL;
const USED = VIRTQ_DESC_F_USED;
const MAX_FUZZ_PACKED = 256;

/** The driver model the generator keeps while it writes rounds. */
interface DriverState {
  pos: number;
  wrap: number;
}

function desc(addr: number, len: number, id: number, flags: number, hi = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, addr >>> 0, true);
  v.setUint32(4, hi >>> 0, true);
  v.setUint32(8, len >>> 0, true);
  v.setUint16(12, id & 0xffff, true);
  v.setUint16(14, flags & 0xffff, true);
  return b;
}

/** A buffer segment: mostly inside the arena's data area, sometimes anywhere at all. */
function segment(r: Rand, ctx: PackedGenContext): { addr: number; len: number; hi: number } {
  if (r.chance(0.9)) {
    const len = r.pick([0, 1, 2, 8, 16, 64, 512, 4096, r.int(8192)]);
    return { addr: ctx.arena + PACKED_ARENA.data + r.int(PACKED_ARENA.tables - PACKED_ARENA.data - len), len, hi: 0 };
  }
  return {
    addr: r.pick([0, 0x40, ctx.poolOffset - 8, ctx.windowSize - 1, ctx.windowSize, 0xfffffff0, ctx.arena + PACKED_ARENA.desc, ctx.arena + PACKED_ARENA.device, r.u32()]),
    len: r.pick([0, 1, 16, 0x1000, 0xffffffff, r.u32()]),
    hi: r.chance(0.2) ? r.pick([1, 0xffffffff]) : 0,
  };
}

/** The flags of a descriptor the driver makes available under wrap `w`, or a mutation of them. */
function availBits(r: Rand, w: number): number {
  if (r.chance(0.94)) return w ? AVAIL : USED;
  return r.pick([w ? USED : AVAIL, AVAIL | USED, 0, r.u32() & (AVAIL | USED)]); // other wrap, AVAIL = USED
}

/** Generates a packed case for device `type` (rng or console). */
export function genPackedCase(r: Rand, ctx: PackedGenContext): { device: string; index: number; size: number; features: bigint; avail: string; rounds: FuzzRound[] } {
  const device = r.chance(0.8) ? 'rng' : 'console';
  const index = device === 'console' ? r.int(2) : r.chance(0.97) ? 0 : r.pick([1, 0xffffffff]);
  const size = r.pick([1, 2, 3, 4, 5, 7, 8, 16, 33, 64, 100, 256]);
  let features = BASE_FEATURES | VIRTIO_F_RING_PACKED;
  if (r.chance(0.6)) features |= VIRTIO_F_RING_INDIRECT_DESC;
  if (r.chance(0.5)) features |= VIRTIO_F_RING_EVENT_IDX;
  if (r.chance(0.2)) features |= VIRTIO_F_RING_RESET;
  const dev = ctx.devNum(device);
  const ev = new Uint8Array(4);
  const evv = new DataView(ev.buffer);
  evv.setUint16(0, r.chance(0.7) ? r.int(size) | (r.chance(0.5) ? 0x8000 : 0) : r.pick([size, 0x7fff, r.u32() & 0xffff]), true);
  evv.setUint16(2, r.chance(0.85) ? r.pick([0, 0, 1, 2]) : r.pick([3, r.u32() & 0xffff]), true);
  const st: DriverState = { pos: 0, wrap: 1 };
  const rounds: FuzzRound[] = [];
  let tableAt = PACKED_ARENA.tables;
  for (let k = 0, n = 1 + r.int(8); k < n; k++) {
    const window: ArenaWrite[] = [];
    let free = size; // the generator assumes the device used everything of the rounds before
    const ids = [...Array(size).keys()];
    for (let b = 0, nb = 1 + r.int(Math.min(4, size)); b < nb && free > 0; b++) {
      const want = r.chance(0.95) ? 1 + r.int(Math.min(3, free)) : r.pick([free + 1, size, size + 1]);
      const count = Math.max(1, want);
      const idIdx = r.int(ids.length);
      const id = r.chance(0.95) && ids.length ? ids.splice(idIdx, 1)[0]! : r.pick([size, 0xffff, r.u32() & 0xffff, 0]);
      const indirect = count === 1 && r.chance(0.15);
      const list: { at: number; bytes: Uint8Array }[] = [];
      let sawWrite = false;
      for (let j = 0; j < count; j++) {
        const s = segment(r, ctx);
        let write: boolean = r.chance(0.5) || sawWrite;
        if (r.chance(0.03)) write = !write; // readable after writable
        sawWrite ||= write;
        let flags = (write ? VIRTQ_DESC_F_WRITE : 0) | (j < count - 1 ? VIRTQ_DESC_F_NEXT : 0);
        if (r.chance(0.02)) flags |= VIRTQ_DESC_F_NEXT; // a list that runs on
        if (r.chance(0.02)) flags |= VIRTQ_DESC_F_INDIRECT; // INDIRECT inside a list
        let addr = s.addr;
        let len = s.len;
        if (indirect) {
          // An indirect table in the arena: entries of their own, WRITE the only valid flag (§2.8.7).
          const entries = r.pick([1, 2, 3, 8, 32, 1025]);
          const t = new Uint8Array(16 * Math.min(entries, 64));
          for (let e = 0; e < t.length / 16; e++) {
            const es = segment(r, ctx);
            const ef = (r.chance(0.6) ? VIRTQ_DESC_F_WRITE : 0) | (r.chance(0.05) ? VIRTQ_DESC_F_INDIRECT : 0) | (r.chance(0.05) ? VIRTQ_DESC_F_NEXT : 0);
            t.set(desc(es.addr, es.len, r.u32(), ef, es.hi), 16 * e);
          }
          if (tableAt + t.length > PACKED_ARENA.size) tableAt = PACKED_ARENA.tables;
          window.push({ off: tableAt, data: toHex(t) });
          addr = ctx.arena + tableAt;
          len = r.chance(0.9) ? 16 * entries : r.pick([0, 8, 24]);
          tableAt += t.length;
          flags = VIRTQ_DESC_F_INDIRECT | (r.chance(0.05) ? VIRTQ_DESC_F_NEXT : 0) | (r.chance(0.2) ? VIRTQ_DESC_F_WRITE : 0);
        }
        flags |= availBits(r, st.wrap);
        if (r.chance(0.01)) flags = r.u32() & 0xffff;
        list.push({ at: PACKED_ARENA.desc + 16 * st.pos, bytes: desc(addr, len, j === count - 1 || r.chance(0.8) ? id : r.u32(), flags, s.hi) });
        if (++st.pos === size) {
          st.pos = 0;
          st.wrap ^= 1;
        }
      }
      // The head last (§2.8.21.1), except when a mutation makes it first.
      const order = r.chance(0.97) ? [...list.slice(1), list[0]!] : list;
      for (const d of order) window.push({ off: d.at, data: toHex(d.bytes) });
      // Readable payloads where the buffers point.
      for (const d of list.slice(0, 2)) {
        const a = new DataView(d.bytes.buffer).getUint32(0, true) - ctx.arena;
        if (a >= PACKED_ARENA.data && a < PACKED_ARENA.tables - 64) window.push({ off: a, data: toHex(r.bytes(r.pick([1, 16, 64]))) });
      }
      free -= Math.min(count, free);
    }
    if (r.chance(0.1)) window.push({ off: PACKED_ARENA.driver, data: toHex(r.bytes(4)) }); // the driver's event suppression changes
    if (r.chance(0.03)) {
      // A stale or rewritten descriptor anywhere in the ring.
      window.push({ off: PACKED_ARENA.desc + 16 * r.int(size), data: toHex(r.bytes(16)) });
    }
    const messages = [];
    for (let m = 0; m < 1 + r.int(2); m++) messages.push(toHex(message(0, P.VIRTIO_MSG_EVENT_AVAIL, dev, 0, le32(r.chance(0.95) ? index : r.u32(), 0))));
    rounds.push({ window, messages });
  }
  return { device, index, size: Math.min(size, MAX_FUZZ_PACKED), features, avail: toHex(ev), rounds };
}

// ---- checks ----------------------------------------------------------------------------------------

/** A broken invariant (engine.ts's Finding). */
export interface PackedFinding {
  invariant: string;
  detail: string;
}

/** Window ranges a snapshot of the arena lets the device write: ring, device event structure, WRITE buffers. */
function writableRanges(snap: DataView, arena: number, size: number): [number, number][] {
  const out: [number, number][] = [
    [arena + PACKED_ARENA.desc, arena + PACKED_ARENA.desc + 16 * size],
    [arena + PACKED_ARENA.device, arena + PACKED_ARENA.device + 4],
  ];
  const table = (t: number, n: number, depth: number) => {
    for (let j = 0; j < n; j++) {
      const at = t + 16 * j;
      if (at < 0 || at + 16 > PACKED_ARENA.size) return;
      const addr = snap.getUint32(at, true);
      const hi = snap.getUint32(at + 4, true);
      const len = snap.getUint32(at + 8, true);
      const flags = snap.getUint16(at + 14, true);
      // In a table only WRITE counts (§2.8.7); on the ring, an INDIRECT descriptor's WRITE is ignored.
      if (hi === 0 && flags & VIRTQ_DESC_F_WRITE && (depth === 1 || !(flags & VIRTQ_DESC_F_INDIRECT))) out.push([addr, addr + len]);
      if (hi === 0 && flags & VIRTQ_DESC_F_INDIRECT && depth === 0 && len % 16 === 0) table(addr - arena, Math.min(len / 16, 1024), 1);
    }
  };
  table(PACKED_ARENA.desc, size, 0);
  return out;
}

/**
 * The most writable bytes of any list in `snap` whose last descriptor carries `id` (the harness's own
 * reading of §2.8.6: walk back from a descriptor without NEXT while the one before has NEXT), or -1
 * when no descriptor ends a list with that id.
 */
function writableOf(snap: DataView, arena: number, size: number, id: number): number {
  let best = -1;
  const flagsAt = (p: number) => snap.getUint16(PACKED_ARENA.desc + 16 * p + 14, true);
  for (let e = 0; e < size; e++) {
    const at = PACKED_ARENA.desc + 16 * e;
    if (snap.getUint16(at + 12, true) !== id || flagsAt(e) & VIRTQ_DESC_F_NEXT) continue;
    let w = 0;
    let p = e;
    for (let n = 0; n < size; n++) {
      const a = PACKED_ARENA.desc + 16 * p;
      const f = flagsAt(p);
      const len = snap.getUint32(a + 8, true);
      if (f & VIRTQ_DESC_F_INDIRECT) {
        const t = snap.getUint32(a, true) - arena;
        for (let j = 0; j < Math.min(len / 16, 1024); j++) {
          if (t < 0 || t + 16 * j + 16 > PACKED_ARENA.size) break;
          if (snap.getUint16(t + 16 * j + 14, true) & VIRTQ_DESC_F_WRITE) w += snap.getUint32(t + 16 * j + 8, true);
        }
      } else if (f & VIRTQ_DESC_F_WRITE) w += len;
      const prev = (p + size - 1) % size;
      if (!(flagsAt(prev) & VIRTQ_DESC_F_NEXT) || prev === e) break;
      p = prev;
    }
    best = Math.max(best, w);
  }
  return best;
}

/**
 * Checks one doorbell of a packed case: `pre` and `post` are the arena before and after it, `history`
 * every arena snapshot taken before a doorbell so far (the lists the device can have read).
 */
export function checkPackedRound(pre: Uint8Array, post: Uint8Array, history: Uint8Array[], arena: number, size: number): PackedFinding[] {
  const findings: PackedFinding[] = [];
  const preV = new DataView(pre.buffer, pre.byteOffset, pre.byteLength);
  const preRanges = writableRanges(preV, arena, size);
  const ranges = [...preRanges, ...writableRanges(new DataView(post.buffer, post.byteOffset, post.byteLength), arena, size)];
  // A writable buffer over the ring or a table makes them self-modifying (the device's data may become
  // descriptors): then only "inside the arena" holds, as in the split target.
  const ring: [number, number] = [arena + PACKED_ARENA.desc, arena + PACKED_ARENA.desc + 16 * size];
  const tables: [number, number][] = [ring, [arena + PACKED_ARENA.tables, arena + PACKED_ARENA.size], [arena + PACKED_ARENA.driver, arena + PACKED_ARENA.driver + 4]];
  const selfModifying = preRanges.slice(2).some(([s, e]) => tables.some(([ts, te]) => s < te && e > ts));
  if (selfModifying) return findings;
  for (let i = 0; i < PACKED_ARENA.size; i++) {
    if (pre[i] === post[i]) continue;
    const a = arena + i;
    if (!ranges.some(([s, e]) => a >= s && a < e)) {
      findings.push({ invariant: 'no-write-outside-writable', detail: `byte at window 0x${a.toString(16)} (arena +0x${i.toString(16)}) changed but no writable buffer covers it` });
      break;
    }
  }
  // A writable buffer over the ring lets the device's data land there: used descriptors then say nothing.
  if (preRanges.slice(2).some(([s, e]) => s < ring[1] && e > ring[0])) return findings;
  const postV = new DataView(post.buffer, post.byteOffset, post.byteLength);
  for (let p = 0; p < size; p++) {
    const at = PACKED_ARENA.desc + 16 * p;
    // A used descriptor is published by its id/flags word; a length written without it is one the device
    // never published (it went NEEDS_RESET first) and the driver cannot see.
    let changed = false;
    for (let b = 12; b < 16; b++) changed ||= pre[at + b] !== post[at + b];
    if (!changed) continue;
    const flags = postV.getUint16(at + 14, true);
    const id = postV.getUint16(at + 12, true);
    const len = postV.getUint32(at + 8, true);
    if (!!(flags & AVAIL) !== !!(flags & USED)) {
      findings.push({ invariant: 'used-flags', detail: `descriptor ${p} written by the device with AVAIL ≠ USED (flags 0x${flags.toString(16)})` });
      break;
    }
    if (id >= size) {
      findings.push({ invariant: 'used-id-valid', detail: `used buffer id ${id} ≥ queue size ${size} (descriptor ${p})` });
      break;
    }
    const writable = Math.max(...history.map((h) => writableOf(new DataView(h.buffer, h.byteOffset, h.byteLength), arena, size, id)));
    if (writable < 0) {
      findings.push({ invariant: 'used-id-valid', detail: `used buffer id ${id} (descriptor ${p}) ends no list the driver wrote` });
      break;
    }
    if (len > writable) {
      findings.push({ invariant: 'used-len-le-writable', detail: `used len ${len} > writable ${writable} for buffer id ${id} (descriptor ${p})` });
      break;
    }
  }
  return findings;
}
