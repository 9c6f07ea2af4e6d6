/**
 * Structure-aware fuzzer core. A case is split the way cloud-hypervisor's fuzz targets split their
 * input: queue parameters, ring bytes (descriptor table, available ring), window bytes and a message
 * stream. The real firmware (dist/firmware.js in QuickJS) runs it; after every case the invariants of
 * DESIGN §6 are checked. One sim serves many cases: the target device is reset between them.
 */
import * as P from '../../firmware/transport/protocol';
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_RING_PACKED, VIRTIO_F_RING_RESET, VIRTIO_GPIO_F_IRQ, VIRTIO_I2C_F_ZERO_LENGTH_REQUEST, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import type { TransportKind } from '../layout';
import type { Sim } from '../sim';
import type { FuzzCase, Finding } from './common';
import { ARENA, guarded } from './common';
import { checkPackedRound, genPackedCase, PACKED_ARENA } from './packed';
import { Rand, fromHex, toHex } from './rand';
import { BASE_FEATURES, FEATURES_OK_STATUS, Ring, STATUS_LIVE, message } from './raw';
import { generateRegisterCase, REGISTER_TARGETS, runRegisterCase } from './registers';
import { le32 } from './ring';

export type { FuzzCase, Finding, RegOp } from './common';
export { ARENA, MAX_PASSES_PER_DOORBELL } from './common';

/** The vsock device of the fuzz board: its guest CID, and the host ports its host side listens on (echoing). */
export const FUZZ_VSOCK_CID = 3;
export const FUZZ_VSOCK_LISTEN = [5000, 5001];

/**
 * Host-side activity for a vsock case: every open host connection writes the input and ends or closes
 * now and then, and a host client asks for a guest port (the device sends the guest a REQUEST).
 */
function vsockHostInput(sim: Sim, input: Uint8Array): void {
  const host = sim.vsock('fuzzvsock');
  for (const c of host.connections()) {
    c.write(input);
    if (input[0]! % 5 === 0) c.end();
    else if (input[0]! % 7 === 0) c.close();
  }
  host.connectToGuest(VSOCK_GUEST_PORTS[input.length % VSOCK_GUEST_PORTS.length]!);
}

/** The gpio lines of the fuzz board. */
export const FUZZ_GPIO_LINES = ['L0', 'L1', 'L2', 'L3', '', 'L5', 'L6', 'L7'];
/** The auxiliary vsock rx ring after the arena (offsets from the arena start): 16 entries, buffers of a header + 4096. */
export const AUX_RX = { base: ARENA.size, size: 16, avail: ARENA.size + 0x100, used: ARENA.size + 0x1000, bufs: ARENA.size + 0x2000, stride: 0x1100, bufLen: 44 + 4096, end: ARENA.size + 0x13000 };
const MAX_FUZZ_QUEUE = 256;

export type { FuzzContext } from './common';
import type { FuzzContext } from './common';

/**
 * Targets: `transport` (message streams), `virtqueue` (split rings on rng), `packed` (packed rings on rng
 * and console), one per device type, and the register transports `regblock`, `mmio`.
 */
export function targetsFor(devices: string[]): string[] {
  return ['transport', 'virtqueue', 'packed', ...new Set(devices), ...REGISTER_TARGETS];
}

/** The transport a target's context must speak. */
export function transportFor(target: string): TransportKind {
  return target === 'regblock' || target === 'mmio' ? target : 'msg';
}

function devFor(ctx: FuzzContext, c: FuzzCase): number {
  if (c.target === 'packed') return ctx.devices.indexOf(c.device ?? 'rng');
  return c.target === 'virtqueue' ? ctx.devices.indexOf('rng') : ctx.devices.indexOf(c.target);
}

// ---- generation ---------------------------------------------------------------------------------

function interestingU32(r: Rand, ctx: FuzzContext): number {
  const l = ctx.sim.layout;
  return r.pick([0, 1, 2, 3, 4, 7, 8, 15, 16, 64, 255, 256, 1024, 0x7fffffff, 0x80000000, 0xffffffff, l.windowSize, l.windowSize - 1, l.poolOffset, l.fifoD2V.offset, ctx.arena, ctx.arena + ARENA.data + r.int(0x1000), r.u32()]);
}

function genDesc(r: Rand, ctx: FuzzContext, size: number, out: DataView, at: number, w: FuzzCase['window'], depth: number): void {
  const l = ctx.sim.layout;
  const roll = r.int(100);
  let addr: number;
  let len: number;
  let hi = 0;
  let flags = (r.chance(0.5) ? VIRTQ_DESC_F_WRITE : 0) | (r.chance(0.4) ? VIRTQ_DESC_F_NEXT : 0);
  if (roll < 75) {
    len = r.pick([0, 1, 2, 3, 8, 16, 17, 64, 512, 4096, r.int(8192)]);
    addr = ctx.arena + ARENA.data + r.int(ARENA.tables - ARENA.data - len);
  } else if (roll < 88) {
    addr = r.pick([0, l.fifoD2V.offset, l.fifoV2D.offset + 128, l.poolOffset - 8, l.windowSize - 1, l.windowSize, 0xfffffff0, ctx.arena + ARENA.desc, ctx.arena + ARENA.used, r.u32()]);
    len = r.pick([0, 1, 16, 0x1000, 0xffffffff, r.u32()]);
    if (r.chance(0.2)) hi = r.pick([1, 0xffffffff]);
  } else if (depth === 0) {
    // An indirect table in the arena, written as window bytes.
    const n = r.pick([1, 2, 3, 8, 32, 1025]);
    len = r.chance(0.9) ? 16 * n : r.pick([0, 8, 24]);
    const tableOff = ARENA.tables + 16 * r.int(0x800);
    addr = ctx.arena + tableOff;
    flags = VIRTQ_DESC_F_INDIRECT | (r.chance(0.05) ? VIRTQ_DESC_F_NEXT : 0) | (r.chance(0.2) ? VIRTQ_DESC_F_WRITE : 0);
    const t = new Uint8Array(16 * Math.min(n, 64));
    const tv = new DataView(t.buffer);
    for (let j = 0; j < t.length / 16; j++) genDesc(r, ctx, Math.min(n, 64), tv, 16 * j, w, 1);
    w.push({ off: tableOff, data: toHex(t) });
  } else {
    addr = ctx.arena + ARENA.data + r.int(0x1000);
    len = 16;
    flags |= r.chance(0.3) ? VIRTQ_DESC_F_INDIRECT : 0;
  }
  out.setUint32(at, addr >>> 0, true);
  out.setUint32(at + 4, hi >>> 0, true);
  out.setUint32(at + 8, len >>> 0, true);
  out.setUint16(at + 12, r.chance(0.02) ? r.u32() & 0xffff : flags, true);
  out.setUint16(at + 14, r.chance(0.9) ? r.int(size) : r.pick([size, size + 1, 0xffff, r.u32() & 0xffff]), true);
}

/** Guest and host ports vsock cases use: host ports the fuzz host listens on (FUZZ_VSOCK_LISTEN) and one it does not. */
const VSOCK_GUEST_PORTS = [1000, 1001, 0xffffffff];
const VSOCK_HOST_PORTS = [...FUZZ_VSOCK_LISTEN, 6000, 2 ** 30];

/** A virtio-vsock packet header (§5.10.6) for the tx queue: plausible most of the time, anything sometimes. */
function genVsockPacket(r: Rand, b: Uint8Array): void {
  const v = new DataView(b.buffer);
  v.setUint32(0, r.chance(0.9) ? FUZZ_VSOCK_CID : r.pick([0, 2, FUZZ_VSOCK_CID + 1, r.u32()]), true); // src_cid
  v.setUint32(4, r.chance(0.97) ? 0 : r.u32(), true);
  v.setUint32(8, r.chance(0.9) ? 2 : r.pick([0, 1, FUZZ_VSOCK_CID, r.u32()]), true); // dst_cid: the host
  v.setUint32(12, r.chance(0.97) ? 0 : r.u32(), true);
  v.setUint32(16, r.pick(VSOCK_GUEST_PORTS), true); // src_port
  v.setUint32(20, r.chance(0.9) ? r.pick(VSOCK_HOST_PORTS) : r.u32(), true); // dst_port
  v.setUint32(24, r.pick([0, 1, b.length - 44, b.length - 43, 4096, 0x20001, 0xffffffff, r.u32()]) >>> 0, true); // len
  v.setUint16(28, r.chance(0.9) ? 1 : r.pick([0, 2, 3, r.u32() & 0xffff]), true); // type
  v.setUint16(30, r.chance(0.92) ? 1 + r.int(7) : r.pick([0, 8, 0xffff, r.u32() & 0xffff]), true); // op
  v.setUint32(32, r.chance(0.8) ? r.int(4) : r.u32(), true); // flags (SHUTDOWN bits)
  v.setUint32(36, r.pick([0, 4096, 0x40000, 0xffffffff, r.u32()]) >>> 0, true); // buf_alloc
  v.setUint32(40, r.pick([0, 0, 1, 44, 4096, 0xffffffff, r.u32()]) >>> 0, true); // fwd_cnt
}

/** Device-specific payload bytes for readable buffers (headers the device parses). */
function genPayload(r: Rand, target: string, minLen = 1): Uint8Array {
  const b = r.bytes(r.pick(target === 'vsock' ? [44, 44, 48, 64, 300, 43] : [1, 8, 16, 24, 64].filter((n) => n >= minLen)));
  if (target === 'vsock' && b.length >= 44) genVsockPacket(r, b);
  const v = new DataView(b.buffer);
  if (target === 'blk' && b.length >= 16) {
    v.setUint32(0, r.pick([0, 1, 4, 8, 11, 13, 16, r.u32()]), true); // request type
    v.setUint32(8, r.chance(0.7) ? r.int(4096) : r.u32(), true); // sector lo
    v.setUint32(12, r.chance(0.8) ? 0 : r.u32(), true); // sector hi
  }
  if (target === 'net' && b.length >= 12) b[0] = r.pick([0, 1, 2, 4, r.u32() & 0xff]); // virtio_net_hdr flags
  if (target === 'i2c' && b.length >= 8) {
    // struct virtio_i2c_out_hdr: the board's targets, absent, 10-bit and malformed addresses; M_RD / FAIL_NEXT
    v.setUint16(0, r.pick([0x50 << 1, 0x48 << 1, 0x51 << 1, 0x00, 0xf0 | (r.u32() & 0xff06), (0x50 << 1) | 1, r.u32() & 0xffff]), true);
    v.setUint32(4, r.chance(0.9) ? r.int(4) : r.u32(), true);
    if (b.length > 8) b[8] = r.pick([0, 2, 5, 7, 8, 0x26, 0xff, r.u32() & 0xff]); // word address / register
  }
  if (target === 'gpio' && b.length >= 8) {
    // struct virtio_gpio_request (its first two bytes double as an eventq buffer's line number)
    v.setUint16(0, r.chance(0.9) ? r.int(8) : r.u32() & 0xffff, true);
    v.setUint16(2, r.chance(0.9) ? r.int(FUZZ_GPIO_LINES.length + 1) : r.u32() & 0xffff, true);
    v.setUint32(4, r.chance(0.9) ? r.pick([0, 1, 2, 3, 4, 8]) : r.u32(), true);
  }
  return b;
}

/** A request chain as segments: readable bytes (`data`) or `len` writable bytes. */
type ReqSeg = { data: Uint8Array } | { len: number };

/**
 * The segments of one plausible request of `target` on queue `index` (i2c, gpio): the frame the spec
 * gives (header, buffer, status), with lengths near the edges. Null for devices without such a model.
 */
function genRequest(r: Rand, target: string, index: number, last: boolean): ReqSeg[] | null {
  if (target === 'i2c') {
    const hdr = genPayload(r, 'i2c', 8).subarray(0, 8);
    if (!last && r.chance(0.7)) hdr[4]! |= 1; // FAIL_NEXT: the transaction goes on
    const read = (hdr[4]! & 2) !== 0;
    const len = r.pick([0, 1, 2, 8, 9, 256, 300, 8193]);
    const buf: ReqSeg[] = len === 0 ? [] : read ? [{ len }] : [{ data: r.bytes(Math.min(len, 300)) }];
    if (r.chance(0.05)) buf.reverse();
    return [{ data: hdr }, ...buf, { len: r.chance(0.95) ? 1 : r.pick([0, 2]) }];
  }
  if (target === 'gpio' && index === 0) {
    const hdr = genPayload(r, 'gpio', 8).subarray(0, 8);
    return [{ data: hdr }, { len: r.pick([2, 2, 2, 1, 2 + FUZZ_GPIO_LINES.join('').length + FUZZ_GPIO_LINES.length, 64, 0]) }];
  }
  if (target === 'gpio') return [{ data: Uint8Array.of(r.chance(0.9) ? r.int(FUZZ_GPIO_LINES.length) : r.u32() & 0xff, r.chance(0.95) ? 0 : r.u32() & 0xff) }, { len: r.chance(0.95) ? 1 : r.pick([0, 2]) }];
  return null;
}

/**
 * Overwrites the start of the descriptor table with request-shaped chains (genRequest), their bytes in
 * the arena; returns their heads in order, or null when the target has no request model.
 */
function genRequestChains(r: Rand, ctx: FuzzContext, target: string, index: number, size: number, dv: DataView, window: FuzzCase['window']): number[] | null {
  const heads: number[] = [];
  let d = 0;
  let at = ARENA.data + 16 * r.int(64);
  const want = 1 + r.int(Math.min(8, size));
  for (let k = 0; k < want; k++) {
    const segs = genRequest(r, target, index, k === want - 1);
    if (!segs) return null;
    if (d + segs.length > size) break;
    heads.push(d);
    segs.forEach((g, i) => {
      const len = 'data' in g ? g.data.length : g.len;
      if ('data' in g) window.push({ off: at, data: toHex(g.data) });
      const lastSeg = i === segs.length - 1;
      let flags = ('data' in g ? 0 : VIRTQ_DESC_F_WRITE) | (lastSeg ? 0 : VIRTQ_DESC_F_NEXT);
      if (r.chance(0.02)) flags ^= VIRTQ_DESC_F_WRITE;
      dv.setUint32(16 * d, ctx.arena + at, true);
      dv.setUint32(16 * d + 4, 0, true);
      dv.setUint32(16 * d + 8, len, true);
      dv.setUint16(16 * d + 12, flags, true);
      dv.setUint16(16 * d + 14, lastSeg ? 0 : d + 1, true);
      at += (len + 15) & ~15;
      d++;
    });
    if (at > ARENA.tables - 0x3000) break;
  }
  return heads;
}

function genQueueCase(r: Rand, ctx: FuzzContext, target: string): FuzzCase {
  const aggressive = target === 'virtqueue';
  const size = r.pick(aggressive ? [1, 2, 4, 8, 16, 64, 256] : [8, 16, 64]);
  let features = BASE_FEATURES | (r.chance(0.6) ? VIRTIO_F_RING_INDIRECT_DESC : 0n) | (r.chance(0.5) ? VIRTIO_F_RING_EVENT_IDX : 0n) | (r.chance(0.3) ? VIRTIO_F_RING_RESET : 0n);
  if (aggressive && r.chance(0.03)) features |= BigInt(r.u32()) << 32n;
  if (target === 'i2c' && r.chance(0.95)) features |= VIRTIO_I2C_F_ZERO_LENGTH_REQUEST; // without it FEATURES_OK is refused
  if (target === 'gpio' && r.chance(0.7)) features |= VIRTIO_GPIO_F_IRQ;
  features &= ~VIRTIO_F_RING_PACKED; // split rings here; packed ones are the `packed` target's
  const dev = target === 'virtqueue' ? ctx.devices.indexOf('rng') : ctx.devices.indexOf(target);
  const numQueues = ctx.sim.stats().devices[dev]!.queues.length;
  const index = target === 'vsock' && r.chance(0.6) ? 1 : r.chance(0.95) ? r.int(numQueues) : r.pick([numQueues, 0xffffffff]);
  const window: FuzzCase['window'] = [];
  const desc = new Uint8Array(16 * size);
  const dv = new DataView(desc.buffer);
  for (let i = 0; i < size; i++) genDesc(r, ctx, size, dv, 16 * i, window, aggressive ? 0 : 1);
  for (let i = 0; i < 1 + r.int(4); i++) window.push({ off: ARENA.data + r.int(ARENA.tables - ARENA.data - 64), data: toHex(genPayload(r, target)) });
  // Readable payloads where the first descriptors point.
  for (let i = 0; i < Math.min(size, 4); i++) {
    const off = dv.getUint32(16 * i, true) - ctx.arena;
    if (off >= ARENA.data && off < ARENA.tables - 64) window.push({ off, data: toHex(genPayload(r, target)) });
  }
  const avail = new Uint8Array(6 + 2 * size);
  const av = new DataView(avail.buffer);
  const count = r.chance(0.9) ? 1 + r.int(size) : r.pick([0, size + 1, 0xffff, r.u32() & 0xffff]);
  av.setUint16(0, r.chance(0.8) ? 0 : 1, true);
  av.setUint16(2, count & 0xffff, true);
  for (let i = 0; i < size; i++) av.setUint16(4 + 2 * i, r.chance(0.93) ? r.int(size) : r.pick([size, 0xffff, r.u32() & 0xffff]), true);
  av.setUint16(4 + 2 * size, r.u32() & 0xffff, true);
  // Devices with a request model: most cases offer well-formed requests (so the device logic runs, not
  // only the chain checks), a few of them broken at an edge.
  const heads = r.chance(0.7) ? genRequestChains(r, ctx, target, index, size, dv, window) : null;
  if (heads && heads.length > 0) {
    heads.forEach((h, i) => av.setUint16(4 + 2 * i, h, true));
    av.setUint16(2, r.chance(0.9) ? heads.length : r.int(size + 1), true);
  }
  if (target === 'vsock' && index === 1 && r.chance(0.7)) vsockTxChains(r, ctx, size, dv, av, window);
  const messages = [];
  for (let k = 0; k < 1 + r.int(3); k++) messages.push(toHex(message(0, P.VIRTIO_MSG_EVENT_AVAIL, dev, 0, le32(r.chance(0.9) ? index : r.u32(), 0))));
  const c: FuzzCase = { target, queue: { index, size, features: features.toString(16) }, desc: toHex(desc), avail: toHex(avail), window, messages, kicks: 1 + r.int(2) };
  if ((target === 'console' || target === 'vsock') && r.chance(0.6)) c.input = toHex(r.bytes(1 + r.int(300)));
  if (target === 'vsock' && index !== 0 && r.chance(0.8)) c.rxBuffers = r.pick([1, 2, 4, 16]);
  if (target === 'gpio') {
    if (r.chance(0.7)) c.input = toHex(r.bytes(1 + r.int(40)));
    if (index === 1 && r.chance(0.8)) c.irq = Array.from({ length: 1 + r.int(8) }, () => [r.int(FUZZ_GPIO_LINES.length), r.pick([1, 2, 3, 4, 8])] as [number, number]);
  }
  return c;
}

/**
 * Well-formed tx chains of vsock packets over the random ring: header descriptors (44 bytes, now and
 * then one off) chained to a payload descriptor, heads 0, 2, 4, … in the available ring, so that
 * packets reach the device's protocol logic rather than stopping at the ring rules.
 */
function vsockTxChains(r: Rand, ctx: FuzzContext, size: number, dv: DataView, av: DataView, w: FuzzCase['window']): void {
  const n = Math.max(1, Math.min(size >> 1, 1 + r.int(8)));
  for (let k = 0; k < n; k++) {
    const hdrOff = ARENA.data + 0x3000 * k;
    const payLen = r.chance(0.3) ? 0 : r.pick([1, 100, 4096, 0x2000]);
    const full = new Uint8Array(48);
    genVsockPacket(r, full);
    const h = full.subarray(0, r.chance(0.95) ? 44 : r.pick([43, 45]));
    if (r.chance(0.7)) new DataView(full.buffer).setUint32(24, payLen, true); // len = the payload, mostly
    w.push({ off: hdrOff, data: toHex(h) });
    const d = 16 * 2 * k;
    dv.setUint32(d, ctx.arena + hdrOff, true);
    dv.setUint32(d + 4, 0, true);
    dv.setUint32(d + 8, h.length, true);
    dv.setUint16(d + 12, payLen ? VIRTQ_DESC_F_NEXT : 0, true);
    dv.setUint16(d + 14, 2 * k + 1, true);
    dv.setUint32(d + 16, ctx.arena + hdrOff + 0x100, true);
    dv.setUint32(d + 20, 0, true);
    dv.setUint32(d + 24, payLen, true);
    dv.setUint16(d + 28, 0, true);
    dv.setUint16(d + 30, 0, true);
    av.setUint16(4 + 2 * k, 2 * k, true);
  }
  av.setUint16(2, n, true);
}

/** Posts `n` rx buffers on the auxiliary ring (queue 0 of the vsock device). */
function postAuxRx(ctx: FuzzContext, n: number): void {
  const b = ctx.sim.bytes;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const a = ctx.arena;
  for (let i = 0; i < Math.min(n, AUX_RX.size); i++) {
    const at = a + AUX_RX.base + 16 * i;
    v.setUint32(at, a + AUX_RX.bufs + AUX_RX.stride * i, true);
    v.setUint32(at + 4, 0, true);
    v.setUint32(at + 8, AUX_RX.bufLen, true);
    v.setUint16(at + 12, VIRTQ_DESC_F_WRITE, true);
    v.setUint16(at + 14, 0, true);
    v.setUint16(a + AUX_RX.avail + 4 + 2 * i, i, true);
  }
  v.setUint16(a + AUX_RX.avail + 2, Math.min(n, AUX_RX.size), true);
}

/** Every packet the device put into the auxiliary rx ring is well-formed (§5.10.6): a header for the guest, `len` = its payload. */
function checkAuxRx(ctx: FuzzContext, findings: Finding[]): void {
  const b = ctx.sim.bytes;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const a = ctx.arena;
  const usedIdx = v.getUint16(a + AUX_RX.used + 2, true);
  for (let u = 0; u < Math.min(usedIdx, AUX_RX.size); u++) {
    const id = v.getUint32(a + AUX_RX.used + 4 + 8 * u, true);
    const len = v.getUint32(a + AUX_RX.used + 8 + 8 * u, true);
    const bad = (why: string): void => void findings.push({ invariant: 'vsock-packet-well-formed', detail: `rx used ${u} (id ${id}, len ${len}): ${why}` });
    if (id >= AUX_RX.size) return bad('id out of range');
    if (len < 44 || len > AUX_RX.bufLen) return bad('used length is not a header plus at most the buffer');
    const h = a + AUX_RX.bufs + AUX_RX.stride * id;
    if (v.getUint32(h + 8, true) !== FUZZ_VSOCK_CID || v.getUint32(h + 12, true) !== 0) return bad(`dst_cid ${v.getUint32(h + 8, true)} is not the guest`);
    if (v.getUint32(h + 4, true) !== 0) return bad('src_cid upper half set');
    if (v.getUint32(h + 24, true) !== len - 44) return bad(`header len ${v.getUint32(h + 24, true)} ≠ payload ${len - 44}`);
    const op = v.getUint16(h + 30, true);
    if (op < 1 || op > 7) return bad(`op ${op}`);
  }
}

const MSG_IDS = [...Object.keys(P.REQUEST_PAYLOAD).map(Number), P.VIRTIO_MSG_EVENT_CONFIG, P.VIRTIO_MSG_EVENT_USED, 0, 1, 0x0d, 0x3f, 0x43, 0xff];

function genTransportCase(r: Rand, ctx: FuzzContext): FuzzCase {
  const n = ctx.devices.length;
  const messages: string[] = [];
  const count = 1 + r.int(24);
  const dev = r.int(n);
  if (r.chance(0.4)) {
    // A plausible handshake prefix, so later messages meet live devices.
    const f = BASE_FEATURES | VIRTIO_F_RING_INDIRECT_DESC;
    for (const s of [0, 1, 3]) messages.push(toHex(message(0, P.VIRTIO_MSG_SET_DEVICE_STATUS, dev, 1 + r.int(0xfffe), le32(s))));
    messages.push(toHex(message(0, P.VIRTIO_MSG_SET_DRIVER_FEATURES, dev, 7, le32(0, 2, Number(f & 0xffffffffn), Number(f >> 32n)))));
    messages.push(toHex(message(0, P.VIRTIO_MSG_SET_DEVICE_STATUS, dev, 8, le32(FEATURES_OK_STATUS))));
  }
  for (let i = 0; i < count; i++) {
    const type = r.pick([0, 0, 0, 0, 1, 2, 3, r.u32() & 0xff]);
    const msgId = type & 2 ? r.pick([P.BUS_MSG_GET_DEVICES, P.BUS_MSG_PING, P.BUS_MSG_EVENT_DEVICE, r.u32() & 0xff]) : r.pick(MSG_IDS);
    const words = r.pick([0, 1, 2, 3, 4, 10, 12, 20, 64]);
    const fields = [];
    for (let k = 0; k < words; k++) fields.push(msgId === P.VIRTIO_MSG_SET_DEVICE_STATUS && k === 0 ? r.pick([0, 1, 3, 11, 15, 0x4f, 0xff, r.u32()]) : interestingU32(r, ctx));
    const devNum = r.chance(0.9) ? r.int(n) : r.pick([n, 0xffff, r.u32() & 0xffff]);
    const token = r.chance(0.15) ? 0 : r.u32() & 0xffff;
    const msgSize = r.chance(0.05) ? r.pick([0, 7, 265, 0xffff, r.u32() & 0xffff]) : undefined;
    messages.push(toHex(message(type, msgId, devNum, token, le32(...fields), msgSize)));
  }
  if (r.chance(0.1)) messages.push(toHex(message(0, P.VIRTIO_MSG_SET_DEVICE_STATUS, dev, 9, le32(STATUS_LIVE))));
  return { target: 'transport', queue: { index: 0, size: 1, features: '0' }, desc: '', avail: '', window: [], messages, kicks: 1 + r.int(2), noDrain: r.chance(0.1) };
}

function genPacked(r: Rand, ctx: FuzzContext): FuzzCase {
  const l = ctx.sim.layout;
  const g = genPackedCase(r, { arena: ctx.arena, windowSize: l.windowSize, poolOffset: l.poolOffset, devNum: (t) => ctx.devices.indexOf(t) });
  return { target: 'packed', device: g.device, queue: { index: g.index, size: g.size, features: g.features.toString(16) }, desc: '', avail: g.avail, window: [], messages: [], kicks: 0, rounds: g.rounds };
}

/** Generates case number `n` of `target` for `seed` (deterministic). */
export function generate(ctx: FuzzContext, target: string, seed: number, n: number): FuzzCase {
  const r = new Rand((seed * 0x9e3779b1 + n * 0x85ebca77) >>> 0);
  if (target === 'regblock' || target === 'mmio') return generateRegisterCase(r, ctx, target);
  if (target === 'transport') return genTransportCase(r, ctx);
  return target === 'packed' ? genPacked(r, ctx) : genQueueCase(r, ctx, target);
}

// ---- execution and invariants -------------------------------------------------------------------

interface Walk {
  ok: boolean;
  writable: number;
}

/** The harness's own reading of a chain (spec rules, bounded), from a snapshot of the arena. */
function walkChain(snap: DataView, arena: number, size: number, head: number): Walk {
  const inArena = (a: number, len: number) => a >= arena && a + len <= arena + ARENA.size;
  let writable = 0;
  let i = head;
  for (let ttl = size; ttl > 0; ttl--) {
    const at = ARENA.desc + 16 * i;
    const addr = snap.getUint32(at, true);
    const len = snap.getUint32(at + 8, true);
    const flags = snap.getUint16(at + 12, true);
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!inArena(addr, len) || len % 16) return { ok: false, writable };
      const t = addr - arena;
      for (let j = 0, tt = len / 16; tt > 0; tt--) {
        const l2 = snap.getUint32(t + 16 * j + 8, true);
        const f2 = snap.getUint16(t + 16 * j + 12, true);
        if (f2 & VIRTQ_DESC_F_WRITE) writable += l2;
        if (!(f2 & VIRTQ_DESC_F_NEXT)) return { ok: true, writable };
        j = snap.getUint16(t + 16 * j + 14, true);
        if (j >= len / 16) return { ok: false, writable };
      }
      return { ok: false, writable };
    }
    if (flags & VIRTQ_DESC_F_WRITE) writable += len;
    if (!(flags & VIRTQ_DESC_F_NEXT)) return { ok: true, writable };
    i = snap.getUint16(at + 14, true);
    if (i >= size) return { ok: false, writable };
  }
  return { ok: false, writable };
}

/** Window ranges the driver allowed the device to write, read from a snapshot of the arena. */
function writableRanges(snap: DataView, arena: number, size: number): [number, number][] {
  const out: [number, number][] = [[arena + ARENA.used, arena + ARENA.used + 6 + 8 * size + 2]];
  const table = (t: number, n: number, depth: number) => {
    for (let j = 0; j < n; j++) {
      const at = t + 16 * j;
      if (at < 0 || at + 16 > ARENA.size) return;
      const addr = snap.getUint32(at, true);
      const hi = snap.getUint32(at + 4, true);
      const len = snap.getUint32(at + 8, true);
      const flags = snap.getUint16(at + 12, true);
      if (hi === 0 && flags & VIRTQ_DESC_F_WRITE && !(flags & VIRTQ_DESC_F_INDIRECT)) out.push([addr, addr + len]);
      if (hi === 0 && flags & VIRTQ_DESC_F_INDIRECT && depth === 0 && len % 16 === 0) table(addr - arena, Math.min(len / 16, 1024), 1);
    }
  };
  table(ARENA.desc, size, 0);
  return out;
}

/** Enables gpio interrupts through the harness's own requestq (outside the arena): SET_IRQ_TYPE per [line, type]. */
function gpioPrelude(rq: Ring, irq: [number, number][]): void {
  for (const [k, [line, type]] of irq.entries()) {
    const at = rq.data + 16 * k;
    const v = new DataView(rq.bytes.buffer, rq.bytes.byteOffset + at, 8);
    v.setUint16(0, 6, true); // VIRTIO_GPIO_MSG_SET_IRQ_TYPE
    v.setUint16(2, line, true);
    v.setUint32(4, type, true);
    rq.chain([{ off: at, len: 8 }, { off: at + 8, len: 2, write: true }]);
  }
  rq.notify();
}

function threwCount(sim: Sim): number {
  return sim.stats().devices.reduce((a, d) => a + (d.counters['violation.DEVICE_MODEL_THREW'] ?? 0), 0);
}

/** Runs one case on `ctx` and returns the invariants it broke (empty: all held). */
export function runCase(ctx: FuzzContext, c: FuzzCase): Finding[] {
  if (ctx.transport !== transportFor(c.target)) throw new Error(`fuzz case for ${c.target} on a ${ctx.transport} context`);
  if (c.target === 'regblock' || c.target === 'mmio') return runRegisterCase(ctx, c);
  const { sim, drv, arena } = ctx;
  const findings: Finding[] = [];
  const dev = c.target === 'transport' ? -1 : devFor(ctx, c);
  const packed = c.target === 'packed';
  const faults0 = sim.runtime.faults.length;
  const threw0 = threwCount(sim);
  const header = sim.bytes.slice(0, 0x44);
  const size = c.queue.size;
  const bytes = () => sim.bytes;
  bytes().fill(0, arena, arena + AUX_RX.end);
  const aux = c.target === 'vsock' && c.rxBuffers !== undefined && c.queue.index !== 0;
  if (dev >= 0 && packed) {
    const st = drv.negotiate(dev, BigInt(`0x${c.queue.features}`));
    if (st & 8) {
      drv.setQueue(dev, c.queue.index, size, arena + PACKED_ARENA.desc, arena + PACKED_ARENA.driver, arena + PACKED_ARENA.device);
      drv.setStatus(dev, STATUS_LIVE);
    }
    bytes().set(fromHex(c.avail).subarray(0, 4), arena + PACKED_ARENA.driver);
  } else if (dev >= 0) {
    const st = drv.negotiate(dev, BigInt(`0x${c.queue.features}`) | (c.irq ? VIRTIO_GPIO_F_IRQ : 0n));
    if (st & 8) {
      drv.setQueue(dev, c.queue.index, size, arena + ARENA.desc, arena + ARENA.avail, arena + ARENA.used);
      const prelude = c.irq && c.queue.index !== 0 ? new Ring(drv, dev, 0, 16, arena + ARENA.size) : null;
      if (prelude) drv.setQueue(dev, 0, 16, prelude.desc, prelude.avail, prelude.used);
      if (aux) drv.setQueue(dev, 0, AUX_RX.size, arena + AUX_RX.base, arena + AUX_RX.avail, arena + AUX_RX.used);
      drv.setStatus(dev, STATUS_LIVE);
      if (prelude) gpioPrelude(prelude, c.irq!);
    }
    if (aux) postAuxRx(ctx, c.rxBuffers!);
    bytes().set(fromHex(c.desc).subarray(0, 16 * MAX_FUZZ_QUEUE), arena + ARENA.desc);
    bytes().set(fromHex(c.avail).subarray(0, 6 + 2 * MAX_FUZZ_QUEUE), arena + ARENA.avail);
  }
  for (const w of c.window) {
    const d = fromHex(w.data);
    if (w.off >= 0 && w.off + d.length <= ARENA.size) bytes().set(d, arena + w.off);
  }
  const pre = bytes().slice(arena, arena + ARENA.size);
  for (const m of c.messages) sim.send(fromHex(m));
  const guard = guarded(findings);
  for (let k = 0; k < (packed ? 0 : Math.max(1, Math.min(c.kicks, 8))); k++) {
    if (k > 0 && c.noDrain) for (const m of c.messages) sim.send(fromHex(m)); // keep pushing while never draining
    guard('doorbell', () => sim.kick());
    if (!c.noDrain) drv.pump();
  }
  // Packed rounds: the driver's writes, a snapshot, the doorbell, the checks of that doorbell.
  const history: Uint8Array[] = [];
  for (const round of packed ? (c.rounds ?? []).slice(0, 16) : []) {
    for (const w of round.window) {
      const d = fromHex(w.data);
      if (w.off >= 0 && w.off + d.length <= ARENA.size) bytes().set(d, arena + w.off);
    }
    const before = bytes().slice(arena, arena + ARENA.size);
    history.push(before);
    for (const m of round.messages) sim.send(fromHex(m));
    guard('doorbell', () => sim.kick());
    drv.pump();
    if (dev >= 0) findings.push(...checkPackedRound(before, bytes().slice(arena, arena + ARENA.size), history, arena, size));
  }
  if (c.input && dev >= 0 && c.target === 'vsock') guard('vsock host input', () => vsockHostInput(sim, fromHex(c.input!)));
  else if (c.input && dev >= 0 && c.target === 'gpio') {
    guard('gpio input', () => {
      const g = sim.gpio('fuzzgpio');
      for (const x of fromHex(c.input!)) g.set((x & 0x7f) % FUZZ_GPIO_LINES.length, x >> 7);
    });
  } else if (c.input && dev >= 0) guard('console input', () => sim.console().input(fromHex(c.input!)));
  drv.pump();

  if (aux) checkAuxRx(ctx, findings);
  if (sim.runtime.faults.length > faults0) findings.push({ invariant: 'no-escape', detail: `runtime fault: ${JSON.stringify(sim.runtime.faults.slice(faults0))}` });
  if (threwCount(sim) > threw0) {
    const d = sim.stats().devices.find((x) => /device model threw/.test(x.lastViolation));
    findings.push({ invariant: 'no-internal-error', detail: `device model threw (window bounds or a host bug): ${d?.lastViolation ?? '?'}` });
  }
  if (Buffer.compare(sim.bytes.slice(0, 0x44), header) !== 0) findings.push({ invariant: 'header-intact', detail: 'window header changed' });
  if (dev >= 0 && !packed) {
    const post = bytes().slice(arena, arena + ARENA.size);
    const preV = new DataView(pre.buffer);
    const preRanges = writableRanges(preV, arena, size);
    const ranges = [...preRanges, ...writableRanges(new DataView(post.buffer), arena, size)];
    // A writable buffer over a descriptor table makes the table self-modifying: the device's own
    // data can change a descriptor before that descriptor is fetched (once, as it should be), so the
    // buffers it then writes are in neither snapshot. Writes must then only stay inside the arena
    // (the pool); single fetch itself is proven by test/hostile/double-fetch-*.
    const tables: [number, number][] = [[arena + ARENA.desc, arena + ARENA.desc + 16 * size], [arena + ARENA.tables, arena + ARENA.size]];
    const selfModifying = preRanges.some(([s, e]) => tables.some(([ts, te]) => s < te && e > ts));
    for (let i = 0; i < ARENA.size && !selfModifying; i++) {
      if (pre[i] === post[i]) continue;
      const a = arena + i;
      if (!ranges.some(([s, e]) => a >= s && a < e)) {
        findings.push({ invariant: 'no-write-outside-writable', detail: `byte at window 0x${a.toString(16)} (arena +0x${i.toString(16)}) changed but no writable buffer covers it` });
        break;
      }
    }
    const postV = new DataView(post.buffer);
    const usedIdx = postV.getUint16(ARENA.used + 2, true);
    // A writable buffer over the used ring lets the device's data land there: used entries then say nothing.
    const usedStart = arena + ARENA.used;
    const usedEnd = usedStart + 6 + 8 * size;
    const scribbled = ranges.some(([s, e]) => !(s === usedStart && e === usedEnd + 2) && s < usedEnd && e > usedStart);
    for (let u = 0; !scribbled && u < Math.min(usedIdx, size); u++) {
      const id = postV.getUint32(ARENA.used + 4 + 8 * u, true);
      const len = postV.getUint32(ARENA.used + 8 + 8 * u, true);
      if (id >= size) {
        findings.push({ invariant: 'used-id-valid', detail: `used id ${id} ≥ queue size ${size}` });
        break;
      }
      const w = walkChain(preV, arena, size, id);
      if (w.ok && len > w.writable) {
        findings.push({ invariant: 'used-len-le-writable', detail: `used len ${len} > writable ${w.writable} for head ${id}` });
        break;
      }
    }
  }
  // Drain both FIFOs (a driver that finally reads lets the backend finish its backlog).
  for (let k = 0; k < 4; k++) {
    sim.receive();
    guard('drain', () => sim.kick());
  }
  sim.receive();
  drv.pump();
  // Every other device (and the bus) still answers.
  guard('liveness', () => {
    if (!drv.ping()) findings.push({ invariant: 'others-answer', detail: 'bus did not answer PING' });
    for (let d = 0; d < ctx.devices.length; d++) {
      if (d !== dev && drv.getStatus(d) === null) findings.push({ invariant: 'others-answer', detail: `device ${d} (${ctx.devices[d]}) did not answer GET_DEVICE_STATUS` });
    }
  });
  // Back to a clean state for the next case.
  guard('reset', () => {
    for (let d = 0; d < ctx.devices.length; d++) if (d === dev || dev < 0) drv.setStatus(d, 0);
  });
  sim.receive();
  drv.events.length = 0;
  return findings;
}

/**
 * `runCase`, with a failure of the harness itself (e.g. the backend stopped answering stats()) turned
 * into a `harness-error` finding: a campaign records it and goes on.
 */
export function runCaseSafe(ctx: FuzzContext, c: FuzzCase): Finding[] {
  try {
    return runCase(ctx, c);
  } catch (e) {
    return [{ invariant: 'harness-error', detail: e instanceof Error ? e.message : String(e) }];
  }
}

/** Greedy minimisation: drop messages, window writes, descriptors and input while `invariant` still breaks. */
export function minimise(ctx: FuzzContext, c: FuzzCase, invariant: string, maxRuns = 200): FuzzCase {
  let best = structuredClone(c);
  let runs = 0;
  const still = (x: FuzzCase) => runs++ < maxRuns && runCaseSafe(ctx, x).some((f) => f.invariant === invariant);
  const tryEdit = (edit: (x: FuzzCase) => boolean) => {
    const x = structuredClone(best);
    if (edit(x) && still(x)) {
      best = x;
      return true;
    }
    return false;
  };
  tryEdit((x) => (x.input ? (delete x.input, true) : false));
  for (let i = (best.ops?.length ?? 0) - 1; i >= 0; i--) tryEdit((x) => (x.ops!.splice(i, 1), true));
  tryEdit((x) => (x.live ? ((x.live = false), true) : false));
  if (best.ops && !best.live) tryEdit((x) => (x.desc || x.avail ? ((x.desc = ''), (x.avail = ''), true) : false)); // ring bytes only matter on a live rng
  tryEdit((x) => (x.kicks > 1 ? ((x.kicks = 1), true) : false));
  for (let i = best.messages.length - 1; i >= 0; i--) tryEdit((x) => (x.messages.splice(i, 1), true));
  for (let i = (best.rounds?.length ?? 0) - 1; i >= 0; i--) tryEdit((x) => (x.rounds!.splice(i, 1), true));
  for (let i = 0; i < (best.rounds?.length ?? 0); i++) {
    for (let j = best.rounds![i]!.window.length - 1; j >= 0; j--) tryEdit((x) => (x.rounds![i]!.window.splice(j, 1), true));
    for (let j = best.rounds![i]!.messages.length - 1; j > 0; j--) tryEdit((x) => (x.rounds![i]!.messages.splice(j, 1), true));
  }
  for (let i = best.window.length - 1; i >= 0; i--) tryEdit((x) => (x.window.splice(i, 1), true));
  for (let i = 0; i < best.queue.size && best.desc; i++) {
    tryEdit((x) => {
      const d = fromHex(x.desc);
      if (d.subarray(16 * i, 16 * i + 16).every((b) => b === 0)) return false;
      d.fill(0, 16 * i, 16 * i + 16);
      x.desc = toHex(d);
      return true;
    });
  }
  return best;
}
