/**
 * Fuzz targets of the register transports: `regblock` (write transactions, scribbled register blocks,
 * doorbells) and `mmio` (access records of any device, offset, width and direction; ring heads that
 * lie). A case may first bring the rng live with a ring in the arena, so that notifications and the
 * shared queue path run too. The firmware runs it in the simulator on a board of that transport;
 * after each doorbell and at the end the transport's invariants are checked:
 *
 *   no-escape, no-internal-error   nothing thrown into the runtime, no device model "threw" (a host bug)
 *   header-intact                  the window header is the backend's (0x00..0x50)
 *   transaction-cleared            regblock: every write_transaction is 0 after the backend ran
 *   records-completed              mmio: the tail reached the head (or the head was refused as impossible),
 *                                  and every record carries REC_DONE or REC_IGNORED
 *   no-write-outside-writable      arena bytes change only in the used ring and writable buffers
 *   others-answer                  every device still answers (a status transaction, a MagicValue read)
 *   bounded-passes                 one doorbell never takes more than MAX_PASSES_PER_DOORBELL passes
 */
import { MMIO, REC_DONE, REC_IGNORED, REC_READ, REC_WRITE, RING_HEAD, RING_TAIL, VIRTIO_MMIO_MAGIC } from '../../firmware/transport/mmio-layout';
import { DIR_BLOCK_OFFSET, DIR_ENTRIES, DIR_ENTRY_SIZE, RB } from '../../firmware/transport/regblock-layout';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { RECORD_SIZE, RECORD_SLOTS_OFFSET } from '../../firmware/window/layout';
import type { Sim } from '../sim';
import type { FuzzCase, FuzzContext, Finding, RegOp } from './common';
import { ARENA, guarded } from './common';
import { Rand, fromHex, toHex } from './rand';
import { BASE_FEATURES } from './raw';

export const REGISTER_TARGETS = ['regblock', 'mmio'] as const;
const LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
const RING_SIZE = 16;
const HEADER_BYTES = 0x50;

// ---- synchronous raw access over a Sim (the fuzzer's own, untrusting and unchecked) ------------

function view(sim: Sim): DataView {
  const b = sim.bytes;
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function blockOf(sim: Sim, dev: number): number {
  return view(sim).getUint32(sim.layout.areaOffset + DIR_ENTRIES + dev * DIR_ENTRY_SIZE + DIR_BLOCK_OFFSET, true);
}

/** A regblock transaction: the value (if any), the word, a doorbell (runs the backend until idle). */
function txn(sim: Sim, dev: number, word: number, off = -1, width = 0, value = 0n): void {
  const v = view(sim);
  const b = blockOf(sim, dev);
  if (off >= 0 && b + off + width <= sim.layout.poolOffset) {
    if (width === 1) v.setUint8(b + off, Number(value & 0xffn));
    else if (width === 2) v.setUint16(b + off, Number(value & 0xffffn), true);
    else if (width === 4) v.setUint32(b + off, Number(value & 0xffffffffn), true);
    else if (width === 8) v.setBigUint64(b + off, BigInt.asUintN(64, value), true);
  }
  v.setUint32(b + RB.writeTransaction, word >>> 0, true);
  sim.kick();
}

/** The mmio ring as the hypervisor side sees it. */
function ringOf(sim: Sim): { at: number; slots: number } {
  return { at: sim.layout.areaOffset, slots: (sim.layout.areaSize - RECORD_SLOTS_OFFSET) / RECORD_SIZE };
}

/** Posts one record at the ring's current head (no doorbell). */
function post(sim: Sim, dev: number, off: number, width: number, op: number, value: number): number {
  const v = view(sim);
  const { at, slots } = ringOf(sim);
  const head = v.getUint32(at + RING_HEAD, true);
  const r = at + RECORD_SLOTS_OFFSET + (head & (slots - 1)) * RECORD_SIZE;
  v.setUint16(r, dev & 0xffff, true);
  v.setUint16(r + 2, off & 0xffff, true);
  v.setUint8(r + 4, width & 0xff);
  v.setUint8(r + 5, op & 0xff);
  v.setUint16(r + 6, 0, true);
  v.setUint32(r + 8, value >>> 0, true);
  v.setUint32(r + 12, 0, true);
  v.setUint32(at + RING_HEAD, (head + 1) >>> 0, true);
  return r;
}

/** One access answered (records are completed at once in the simulator); the read value. */
function access(sim: Sim, dev: number, off: number, width: number, op: number, value = 0): number {
  const r = post(sim, dev, off, width, op, value);
  sim.kick();
  return view(sim).getUint32(r + 8, true);
}

// ---- generation ---------------------------------------------------------------------------------

const RB_OFFSETS = [RB.revision, RB.size, RB.writeTransaction, RB.deviceFeatures, RB.deviceFeaturesSel, RB.driverFeatures, RB.driverFeaturesSel, RB.queueSel, RB.queueSize, RB.queueDeviceVector, RB.queueDriverVector, RB.queueEnable, RB.queueDesc, RB.queueDriver, RB.queueDevice, RB.configEvent, RB.queueEvent, 0x42, RB.deviceStatus, RB.configGeneration, RB.config];
const MMIO_OFFSETS = Object.values(MMIO) as number[];

function interesting(r: Rand, ctx: FuzzContext): number {
  const l = ctx.sim.layout;
  return r.pick([0, 1, 2, 3, 4, 7, 8, 11, 15, 16, 64, 0x4f, 0xff, 256, 0x7fffffff, 0x80000000, 0xffffffff, l.windowSize, l.poolOffset, l.areaOffset, ctx.arena, ctx.arena + ARENA.data, r.u32()]);
}

/** Ring bytes for the rng's queue 0 in the arena: mostly sane chains, some hostile. */
function genRing(r: Rand, ctx: FuzzContext, c: FuzzCase): void {
  const desc = new Uint8Array(16 * RING_SIZE);
  const dv = new DataView(desc.buffer);
  for (let i = 0; i < RING_SIZE; i++) {
    const sane = r.chance(0.85);
    dv.setUint32(16 * i, sane ? ctx.arena + ARENA.data + 64 * r.int(256) : interesting(r, ctx), true);
    dv.setUint32(16 * i + 8, sane ? r.pick([1, 16, 64]) : interesting(r, ctx), true);
    dv.setUint16(16 * i + 12, VIRTQ_DESC_F_WRITE | (r.chance(0.15) ? VIRTQ_DESC_F_NEXT : 0) | (r.chance(0.03) ? r.u32() & 0xffff : 0), true);
    dv.setUint16(16 * i + 14, r.chance(0.9) ? r.int(RING_SIZE) : r.u32() & 0xffff, true);
  }
  const avail = new Uint8Array(6 + 2 * RING_SIZE);
  const av = new DataView(avail.buffer);
  av.setUint16(2, r.chance(0.9) ? 1 + r.int(RING_SIZE) : r.u32() & 0xffff, true);
  for (let i = 0; i < RING_SIZE; i++) av.setUint16(4 + 2 * i, r.chance(0.95) ? r.int(RING_SIZE) : r.u32() & 0xffff, true);
  c.desc = toHex(desc);
  c.avail = toHex(avail);
}

function genRegblockOps(r: Rand, ctx: FuzzContext, n: number): RegOp[] {
  const ops: RegOp[] = [];
  for (let k = 0; k < n; k++) {
    const dev = r.chance(0.9) ? r.int(ctx.devices.length) : 0;
    const roll = r.int(100);
    if (roll < 60) {
      const off = r.chance(0.85) ? r.pick(RB_OFFSETS) + (r.chance(0.1) ? r.int(4) : 0) : r.int(0x1000);
      const wfield = r.chance(0.7) ? 0 : r.pick([1, 2, 3, 4, 8, 9, 0xff]);
      const word = (off | (wfield << 16) | (r.chance(0.03) ? r.u32() & 0xff000000 : 0)) >>> 0;
      const width = r.pick([0, 1, 2, 4, 8]);
      ops.push({ kind: 'txn', dev, word, off, width, value: (BigInt(interesting(r, ctx)) | (r.chance(0.2) ? BigInt(interesting(r, ctx)) << 32n : 0n)).toString(16) });
    } else if (roll < 80) {
      ops.push({ kind: 'scribble', dev, off: r.int(RB.config + 64), data: toHex(r.bytes(1 + r.int(8))) });
    } else ops.push({ kind: 'kick', dev: 0 });
  }
  return ops;
}

function genMmioOps(r: Rand, ctx: FuzzContext, n: number): RegOp[] {
  const ops: RegOp[] = [];
  for (let k = 0; k < n; k++) {
    const dev = r.chance(0.9) ? r.int(ctx.devices.length) : r.pick([ctx.devices.length, 64, 0xffff]);
    const roll = r.int(100);
    if (roll < 85) {
      const off = r.chance(0.85) ? r.pick(MMIO_OFFSETS) + (r.chance(0.1) ? r.int(0x20) : 0) : r.int(0x1000);
      const width = r.chance(0.8) ? 4 : r.pick([0, 1, 2, 3, 8, 0xff]);
      const op = r.chance(0.95) ? r.pick([REC_READ, REC_WRITE]) : r.pick([2, 0xff]);
      ops.push({ kind: 'record', dev, off, width, op, value: interesting(r, ctx).toString(16) });
    } else if (roll < 90) {
      ops.push({ kind: 'head', dev: 0, value: r.pick([1, 2, 63, 64, 65, 1000, 0x7fffffff, 0xffffffff]).toString(16) });
    } else ops.push({ kind: 'kick', dev: 0 });
  }
  return ops;
}

/** Generates a register-transport case (deterministic by the Rand it is given). */
export function generateRegisterCase(r: Rand, ctx: FuzzContext, target: 'regblock' | 'mmio'): FuzzCase {
  const c: FuzzCase = { target, queue: { index: 0, size: RING_SIZE, features: (BASE_FEATURES | (r.chance(0.5) ? VIRTIO_F_RING_EVENT_IDX : 0n) | (r.chance(0.5) ? VIRTIO_F_RING_INDIRECT_DESC : 0n)).toString(16) }, desc: '', avail: '', window: [], messages: [], kicks: 1 };
  c.live = r.chance(0.5);
  if (c.live) genRing(r, ctx, c);
  c.ops = target === 'regblock' ? genRegblockOps(r, ctx, 1 + r.int(24)) : genMmioOps(r, ctx, 1 + r.int(32));
  return c;
}

// ---- execution ----------------------------------------------------------------------------------

/** The rng live over the register wire, queue 0 of RING_SIZE in the arena (a well-behaved driver). */
function bringLive(ctx: FuzzContext, features: bigint): void {
  const { sim, arena } = ctx;
  const lo = Number(features & 0xffffffffn);
  const hi = Number(features >> 32n);
  const desc = arena + ARENA.desc;
  const avail = arena + ARENA.avail;
  const used = arena + ARENA.used;
  if (ctx.transport === 'regblock') {
    for (const s of [0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER]) txn(sim, 0, RB.deviceStatus, RB.deviceStatus, 4, BigInt(s));
    txn(sim, 0, RB.driverFeaturesSel, RB.driverFeaturesSel, 4, 1n);
    txn(sim, 0, RB.driverFeatures, RB.driverFeatures, 4, BigInt(hi));
    txn(sim, 0, RB.driverFeaturesSel, RB.driverFeaturesSel, 4, 0n);
    txn(sim, 0, RB.driverFeatures, RB.driverFeatures, 4, BigInt(lo));
    txn(sim, 0, RB.deviceStatus, RB.deviceStatus, 4, BigInt(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    txn(sim, 0, RB.queueSel, RB.queueSel, 4, 0n);
    txn(sim, 0, RB.queueSize, RB.queueSize, 2, BigInt(RING_SIZE));
    txn(sim, 0, RB.queueDesc, RB.queueDesc, 8, BigInt(desc));
    txn(sim, 0, RB.queueDriver, RB.queueDriver, 8, BigInt(avail));
    txn(sim, 0, RB.queueDevice, RB.queueDevice, 8, BigInt(used));
    txn(sim, 0, RB.queueEnable, RB.queueEnable, 2, 1n);
    txn(sim, 0, RB.deviceStatus, RB.deviceStatus, 4, BigInt(LIVE));
  } else {
    const w = (off: number, v: number) => access(sim, 0, off, 4, REC_WRITE, v);
    for (const s of [0, ACKNOWLEDGE, ACKNOWLEDGE | DRIVER]) w(MMIO.status, s);
    w(MMIO.driverFeaturesSel, 1);
    w(MMIO.driverFeatures, hi);
    w(MMIO.driverFeaturesSel, 0);
    w(MMIO.driverFeatures, lo);
    w(MMIO.status, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    w(MMIO.queueSel, 0);
    w(MMIO.queueNum, RING_SIZE);
    w(MMIO.queueDescLow, desc);
    w(MMIO.queueDriverLow, avail);
    w(MMIO.queueDeviceLow, used);
    w(MMIO.queueReady, 1);
    w(MMIO.status, LIVE);
  }
}

/** Window ranges the ring allowed the device to write (the used ring, writable descriptors), from a snapshot. */
function writable(snap: DataView, arena: number): [number, number][] {
  const out: [number, number][] = [[arena + ARENA.used, arena + ARENA.used + 6 + 8 * RING_SIZE + 2]];
  for (let i = 0; i < RING_SIZE; i++) {
    const at = ARENA.desc + 16 * i;
    if (snap.getUint16(at + 12, true) & VIRTQ_DESC_F_WRITE && snap.getUint32(at + 4, true) === 0) out.push([snap.getUint32(at, true), snap.getUint32(at, true) + snap.getUint32(at + 8, true)]);
  }
  return out;
}

/** Runs one register-transport case; returns the invariants it broke. */
export function runRegisterCase(ctx: FuzzContext, c: FuzzCase): Finding[] {
  const { sim, arena } = ctx;
  const findings: Finding[] = [];
  const faults0 = sim.runtime.faults.length;
  const threw0 = sim.stats().devices.reduce((a, d) => a + (d.counters['violation.DEVICE_MODEL_THREW'] ?? 0), 0);
  const header = sim.bytes.slice(0, HEADER_BYTES);
  const bytes = () => sim.bytes;
  const guard = guarded(findings);
  const check = (when: string) => {
    const v = view(sim);
    if (ctx.transport === 'regblock') {
      for (let d = 0; d < ctx.devices.length; d++) {
        const t = v.getUint32(blockOf(sim, d) + RB.writeTransaction, true);
        if (t !== 0) findings.push({ invariant: 'transaction-cleared', detail: `${when}: device ${d} write_transaction 0x${t.toString(16)} still set` });
      }
    } else {
      const { at, slots } = ringOf(sim);
      const head = v.getUint32(at + RING_HEAD, true);
      const tail = v.getUint32(at + RING_TAIL, true);
      if (head !== tail) findings.push({ invariant: 'records-completed', detail: `${when}: head ${head} tail ${tail}` });
      for (let k = 0; k < slots; k++) {
        const res = v.getUint32(at + RECORD_SLOTS_OFFSET + k * RECORD_SIZE + 12, true);
        if (res !== 0 && res !== REC_DONE && res !== REC_IGNORED) findings.push({ invariant: 'records-completed', detail: `${when}: record slot ${k} result ${res}` });
      }
    }
  };
  bytes().fill(0, arena, arena + ARENA.size);
  if (c.live) {
    guard('bring live', () => bringLive(ctx, BigInt(`0x${c.queue.features}`)));
    bytes().set(fromHex(c.desc).subarray(0, 16 * RING_SIZE), arena + ARENA.desc);
    bytes().set(fromHex(c.avail).subarray(0, 6 + 2 * RING_SIZE), arena + ARENA.avail);
  }
  const pre = bytes().slice(arena, arena + ARENA.size);
  for (const op of (c.ops ?? []).slice(0, 64)) {
    guard(`${op.kind} ${JSON.stringify(op)}`, () => {
      if (op.kind === 'txn') {
        const blk = (op.dev ?? 0) < ctx.devices.length ? op.dev! : 0;
        txn(sim, blk, op.word ?? 0, op.off ?? -1, op.width ?? 0, BigInt(`0x${op.value ?? '0'}`));
      } else if (op.kind === 'scribble') {
        const blk = blockOf(sim, (op.dev ?? 0) < ctx.devices.length ? op.dev! : 0);
        const d = fromHex(op.data ?? '');
        const off = Math.min(op.off ?? 0, 0xff0);
        // write_transaction is set only through `txn` ops (a scribble of it would be a transaction without its doorbell)
        const overlaps = off < RB.writeTransaction + 4 && off + d.length > RB.writeTransaction;
        if (!overlaps && d.length && blk + off + d.length <= sim.layout.poolOffset) bytes().set(d, blk + off);
      } else if (op.kind === 'record') {
        post(sim, op.dev ?? 0, op.off ?? 0, op.width ?? 4, op.op ?? REC_READ, Number(BigInt(`0x${op.value ?? '0'}`) & 0xffffffffn));
        sim.kick();
      } else if (op.kind === 'head') {
        const { at } = ringOf(sim);
        const v = view(sim);
        v.setUint32(at + RING_HEAD, (v.getUint32(at + RING_TAIL, true) + Number(BigInt(`0x${op.value ?? '0'}`) & 0xffffffffn)) >>> 0, true);
        sim.kick();
        // an impossible head is refused (the tail jumps to it); a possible one is served: either way head = tail
      } else sim.kick();
    });
    check(`after ${op.kind}`);
    if (findings.length) break;
  }
  if (sim.runtime.faults.length > faults0) findings.push({ invariant: 'no-escape', detail: `runtime fault: ${JSON.stringify(sim.runtime.faults.slice(faults0))}` });
  const threw = sim.stats().devices.reduce((a, d) => a + (d.counters['violation.DEVICE_MODEL_THREW'] ?? 0), 0);
  if (threw > threw0) findings.push({ invariant: 'no-internal-error', detail: `device model threw: ${sim.stats().devices.find((x) => /threw/.test(x.lastViolation))?.lastViolation ?? '?'}` });
  if (Buffer.compare(sim.bytes.slice(0, HEADER_BYTES), header) !== 0) findings.push({ invariant: 'header-intact', detail: 'window header changed' });
  if (c.live) {
    const post2 = bytes().slice(arena, arena + ARENA.size);
    const ranges = [...writable(new DataView(pre.buffer), arena), ...writable(new DataView(post2.buffer), arena)];
    const descAt = arena + ARENA.desc;
    const selfModifying = ranges.some(([s, e]) => s < descAt + 16 * RING_SIZE && e > descAt);
    for (let i = 0; i < ARENA.size && !selfModifying; i++) {
      if (pre[i] === post2[i]) continue;
      if (!ranges.some(([s, e]) => arena + i >= s && arena + i < e)) {
        findings.push({ invariant: 'no-write-outside-writable', detail: `arena +0x${i.toString(16)} changed outside every writable buffer` });
        break;
      }
    }
  }
  // Every device still answers, and goes back to reset for the next case.
  guard('liveness', () => {
    for (let d = 0; d < ctx.devices.length; d++) {
      if (ctx.transport === 'regblock') {
        txn(sim, d, RB.deviceStatus, RB.deviceStatus, 4, 0n);
        if (view(sim).getUint32(blockOf(sim, d) + RB.writeTransaction, true) !== 0) findings.push({ invariant: 'others-answer', detail: `device ${d} did not take a status write` });
      } else {
        const { at } = ringOf(sim);
        const v = view(sim);
        v.setUint32(at + RING_HEAD, v.getUint32(at + RING_TAIL, true), true); // a sane head again
        if (access(sim, d, MMIO.magicValue, 4, REC_READ) !== VIRTIO_MMIO_MAGIC) findings.push({ invariant: 'others-answer', detail: `device ${d} did not answer MagicValue` });
        access(sim, d, MMIO.status, 4, REC_WRITE, 0);
      }
    }
  });
  return findings;
}
