/**
 * Window bytes as a person reads them, for trace timelines and replay diffs: which header field,
 * FIFO slot or ring entry a byte belongs to, and the virtio-msg messages and used entries a change
 * stands for ("v→d FIFO: EVENT_USED dev 0 queue 1"). It learns where each virtqueue lives from the
 * SET_VQUEUE messages the firmware consumed. Labels only: nothing here decides anything.
 */
import * as P from '../../firmware/transport/protocol';
import type { WindowLayout } from '../../firmware/window/layout';
import { FIFO_HEAD, FIFO_SLOTS, FIFO_TAIL, H, HEADER_SIZE, computeLayout } from '../../firmware/window/layout';
import type { TraceRecord } from './format';
import type { WindowRange } from './ranges';
import { applyRanges } from './ranges';

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const hex = (n: number) => `0x${n.toString(16)}`;

/** At most this many messages or used entries are spelled out per line. */
const MAX_LISTED = 8;

const BUS_NAMES: Record<number, string> = { [P.BUS_MSG_GET_DEVICES]: 'GET_DEVICES', [P.BUS_MSG_PING]: 'PING', [P.BUS_MSG_EVENT_DEVICE]: 'EVENT_DEVICE' };

/** One virtio-msg message (the bytes of a FIFO slot) in words: "EVENT_USED dev 0 queue 1". */
export function describeMessage(m: Uint8Array): string {
  if (m.length < P.HEADER_BYTES) return `${m.length}-byte fragment`;
  const type = m[0]! & 3;
  const id = m[1]!;
  const dev = u16(m, 2);
  const token = u16(m, 4);
  const size = u16(m, 6);
  const bus = (type & P.TYPE_BUS) !== 0;
  const name = (bus ? BUS_NAMES[id] : P.MSG_NAMES[id]) ?? `${bus ? 'bus ' : ''}msg ${hex(id)}`;
  const resp = type & P.TYPE_RESPONSE ? ' response' : '';
  const pl = (k: number) => (P.HEADER_BYTES + 4 * k + 4 <= Math.min(size, m.length) ? u32(m, P.HEADER_BYTES + 4 * k) : undefined);
  let detail = '';
  if (!bus && (id === P.VIRTIO_MSG_EVENT_USED || id === P.VIRTIO_MSG_EVENT_AVAIL || id === P.VIRTIO_MSG_RESET_VQUEUE || id === P.VIRTIO_MSG_GET_VQUEUE) && pl(0) !== undefined) detail = ` queue ${pl(0)}`;
  else if (!bus && (id === P.VIRTIO_MSG_SET_DEVICE_STATUS || (id === P.VIRTIO_MSG_GET_DEVICE_STATUS && resp)) && pl(0) !== undefined) detail = ` status ${hex(pl(0)!)}`;
  else if (!bus && id === P.VIRTIO_MSG_SET_VQUEUE && pl(9) !== undefined) detail = ` queue ${pl(0)} size ${pl(2)} desc ${hex(pl(4)!)} driver ${hex(pl(6)!)} device ${hex(pl(8)!)}`;
  else if (!bus && id === P.VIRTIO_MSG_EVENT_CONFIG && pl(0) !== undefined) detail = ` status ${hex(pl(0)!)}`;
  const tok = type & P.TYPE_RESPONSE || token ? ` token ${token}` : '';
  return `${name}${resp}${bus ? '' : ` dev ${dev}`}${detail}${tok}${size < P.HEADER_BYTES || size > m.length ? ` (msg_size ${size})` : ''}`;
}

/** Where a virtqueue's three areas are (from SET_VQUEUE). */
interface QueueInfo {
  dev: number;
  index: number;
  size: number;
  desc: number;
  driver: number;
  device: number;
}

/** A labelled piece of the window. */
interface Region {
  label: string;
  start: number;
  end: number;
  /** The region's bytes in words, from a window image. */
  decode?: (w: Uint8Array) => string;
}

const HEADER_FIELDS = Object.entries(H)
  .map(([name, off]) => ({ name, off, size: name.endsWith('PeerId') || name === 'version' || name === 'headerSize' ? 2 : 4 }))
  .sort((a, b) => a.off - b.off);

/** Follows a trace's window and says what its changes mean. */
export class WindowModel {
  readonly layout: WindowLayout | null;
  private readonly queues = new Map<string, QueueInfo>();

  constructor(boardJson: string) {
    let layout: WindowLayout | null = null;
    try {
      const b = JSON.parse(boardJson) as { window?: { size?: number; fifoSlots?: number } };
      layout = computeLayout(Number(b.window?.size), Number(b.window?.fifoSlots));
    } catch {
      layout = null; // an unusual board: raw offsets only
    }
    this.layout = layout;
  }

  private slotRange(fifo: 'd2v' | 'v2d') {
    const f = fifo === 'd2v' ? this.layout!.fifoD2V : this.layout!.fifoV2D;
    return { f, slots: f.offset + FIFO_SLOTS, end: f.offset + FIFO_SLOTS + f.slots * this.layout!.slotSize };
  }

  /** The messages numbered [from, to) of a FIFO, read from a window image (at most MAX_LISTED). */
  private messages(w: Uint8Array, fifo: 'd2v' | 'v2d', from: number, to: number): Uint8Array[] {
    const { f, slots } = this.slotRange(fifo);
    const n = Math.min((to - from) >>> 0, f.slots);
    const out: Uint8Array[] = [];
    for (let k = 0; k < Math.min(n, MAX_LISTED); k++) {
      const at = slots + (((from + k) >>> 0) & (f.slots - 1)) * this.layout!.slotSize;
      out.push(w.subarray(at, at + this.layout!.slotSize));
    }
    return out;
  }

  private list(items: string[], total: number): string {
    return items.join(', ') + (total > items.length ? `, … (${total} in all)` : '');
  }

  /** Learns queue placements from SET_VQUEUE and forgets them on RESET_VQUEUE / status 0. */
  private learn(m: Uint8Array): void {
    if (m.length < 8 || m[0]! & 3) return;
    const id = m[1]!;
    const dev = u16(m, 2);
    if (id === P.VIRTIO_MSG_SET_VQUEUE && u16(m, 6) >= 48) {
      const q: QueueInfo = { dev, index: u32(m, 8), size: u32(m, 16), desc: u32(m, 24), driver: u32(m, 32), device: u32(m, 40) };
      if (q.size > 0 && q.size <= 32768) this.queues.set(`${dev}/${q.index}`, q);
    } else if (id === P.VIRTIO_MSG_SET_DEVICE_STATUS && u16(m, 6) >= 12 && u32(m, 8) === 0) {
      for (const [k, q] of this.queues) if (q.dev === dev) this.queues.delete(k);
    }
  }

  /** The window as the trace has it after the records `follow` saw. */
  state: Uint8Array | null = null;

  /**
   * Follows one record of a trace (in order): keeps the window image and returns what a window record
   * changed, in words ('' for other records).
   */
  follow(r: TraceRecord): string {
    if (r.type === 'header') this.state = new Uint8Array(r.header.windowSize);
    if ((r.type !== 'init' && r.type !== 'input' && r.type !== 'writes') || !this.state) return '';
    const before = this.state.slice();
    applyRanges(this.state, r.ranges);
    return this.summarise(r.type, r.ranges, before, this.state);
  }

  /**
   * One clause for what a record changed (`before` and `after` are the window images around it):
   * messages posted or taken, used entries, header fields, and how many other bytes.
   */
  summarise(kind: 'input' | 'writes' | 'init', ranges: readonly WindowRange[], before: Uint8Array, after: Uint8Array): string {
    const total = ranges.reduce((a, r) => a + r.data.length, 0);
    if (!this.layout || total === 0) return total ? `${total} bytes` : '';
    const parts: string[] = [];
    let explained = 0;
    const touched = (s: number, e: number) => ranges.some((r) => r.off < e && r.off + r.data.length > s);
    const covered = (s: number, e: number) => ranges.reduce((a, r) => a + Math.max(0, Math.min(e, r.off + r.data.length) - Math.max(s, r.off)), 0);
    // Header fields.
    if (touched(0, HEADER_SIZE)) {
      const fields = HEADER_FIELDS.filter((f) => touched(f.off, f.off + f.size)).map((f) => `${f.name}=${f.size === 2 ? u16(after, f.off) : u32(after, f.off)}`);
      parts.push(`header ${fields.join(' ')}`);
      explained += covered(0, HEADER_SIZE);
    }
    for (const fifo of ['d2v', 'v2d'] as const) {
      const { f, end } = this.slotRange(fifo);
      const arrow = fifo === 'd2v' ? 'd→v' : 'v→d';
      for (const idx of [FIFO_HEAD, FIFO_TAIL]) {
        const at = f.offset + idx;
        if (!touched(at, at + 4)) continue;
        const was = u32(before, at);
        const now = u32(after, at);
        const n = (now - was) >>> 0;
        const producer = idx === FIFO_HEAD;
        if (producer && n > 0 && n <= f.slots) {
          const msgs = this.messages(after, fifo, was, now);
          parts.push(`${arrow} +${n}: ${this.list(msgs.map(describeMessage), n)}`);
        } else if (!producer && n > 0 && n <= f.slots) {
          const msgs = this.messages(after, fifo, was, now);
          if (fifo === 'd2v') msgs.forEach((m) => this.learn(m));
          parts.push(`${arrow} took ${n}`);
        } else parts.push(`${arrow} ${producer ? 'head' : 'tail'} ${was}→${now}`);
      }
      const { slots } = this.slotRange(fifo);
      if (!touched(f.offset + FIFO_HEAD, f.offset + FIFO_HEAD + 4) && touched(slots, end)) {
        const written: number[] = [];
        for (const r of ranges) {
          for (let i = Math.max(0, Math.floor((r.off - slots) / this.layout.slotSize)); i < f.slots && slots + i * this.layout.slotSize < r.off + r.data.length && written.length <= MAX_LISTED; i++) {
            if (slots + (i + 1) * this.layout.slotSize > r.off) written.push(i);
          }
        }
        parts.push(`${arrow} slot ${written.slice(0, MAX_LISTED).join(',')} written: ${this.list(written.slice(0, MAX_LISTED).map((i) => describeMessage(after.subarray(slots + i * this.layout!.slotSize, slots + (i + 1) * this.layout!.slotSize))), written.length)} (not yet published)`);
      }
      explained += covered(f.offset, end);
    }
    for (const q of this.queues.values()) {
      const name = `dev ${q.dev} q${q.index}`;
      if (touched(q.driver + 2, q.driver + 4)) {
        const was = u16(before, q.driver + 2);
        const now = u16(after, q.driver + 2);
        const n = (now - was) & 0xffff;
        const heads: string[] = [];
        for (let k = 0; k < Math.min(n, MAX_LISTED, q.size); k++) heads.push(String(u16(after, q.driver + 4 + 2 * ((was + k) % q.size))));
        parts.push(`${name} avail ${was}→${now}${heads.length ? ` heads ${this.list(heads, n)}` : ''}`);
      }
      if (touched(q.device + 2, q.device + 4)) {
        const was = u16(before, q.device + 2);
        const now = u16(after, q.device + 2);
        const n = (now - was) & 0xffff;
        const used: string[] = [];
        for (let k = 0; k < Math.min(n, MAX_LISTED, q.size); k++) {
          const e = q.device + 4 + 8 * ((was + k) % q.size);
          used.push(`{id ${u32(after, e)} len ${u32(after, e + 4)}}`);
        }
        parts.push(`${name} used ${was}→${now}${used.length ? ` ${this.list(used, n)}` : ''}`);
      }
      for (const [s, e] of [
        [q.desc, q.desc + 16 * q.size],
        [q.driver, q.driver + 6 + 2 * q.size],
        [q.device, q.device + 6 + 8 * q.size],
      ] as const) explained += covered(s, e);
    }
    const rest = total - explained;
    if (rest > 0) parts.push(`${rest} bytes ${explained ? 'elsewhere' : ''}in the pool`.replace('  ', ' '));
    return parts.join('; ');
  }

  /** The labelled region containing `off`. */
  private region(off: number): Region {
    const l = this.layout;
    if (!l) return { label: `window ${hex(off)}`, start: off, end: off + 1 };
    if (off < HEADER_SIZE) {
      const f = HEADER_FIELDS.find((x) => off >= x.off && off < x.off + x.size);
      return f ? { label: `header.${f.name}`, start: f.off, end: f.off + f.size, decode: (w) => String(f.size === 2 ? u16(w, f.off) : u32(w, f.off)) } : { label: 'header (reserved)', start: off, end: off + 1 };
    }
    for (const fifo of ['d2v', 'v2d'] as const) {
      const { f, slots, end } = this.slotRange(fifo);
      const arrow = fifo === 'd2v' ? 'd→v' : 'v→d';
      for (const [idx, nm] of [[FIFO_HEAD, 'head'], [FIFO_TAIL, 'tail']] as const) {
        const at = f.offset + idx;
        if (off >= at && off < at + 4) return { label: `${arrow} FIFO ${nm}`, start: at, end: at + 4, decode: (w) => String(u32(w, at)) };
      }
      if (off >= slots && off < end) {
        const i = Math.floor((off - slots) / l.slotSize);
        const s = slots + i * l.slotSize;
        return { label: `${arrow} FIFO slot ${i}`, start: s, end: s + l.slotSize, decode: (w) => describeMessage(w.subarray(s, s + l.slotSize)) };
      }
    }
    for (const q of this.queues.values()) {
      const name = `dev ${q.dev} q${q.index}`;
      if (off >= q.device && off < q.device + 6 + 8 * q.size) {
        const k = off - q.device;
        if (k < 4) return { label: `${name} used.${k < 2 ? 'flags' : 'idx'}`, start: q.device + (k < 2 ? 0 : 2), end: q.device + (k < 2 ? 2 : 4), decode: (w) => String(u16(w, q.device + (k < 2 ? 0 : 2))) };
        const e = Math.floor((k - 4) / 8);
        if (e < q.size) {
          const at = q.device + 4 + 8 * e;
          return { label: `${name} used.ring[${e}]`, start: at, end: at + 8, decode: (w) => `{id ${u32(w, at)} len ${u32(w, at + 4)}}` };
        }
        return { label: `${name} used.avail_event`, start: q.device + 4 + 8 * q.size, end: q.device + 6 + 8 * q.size, decode: (w) => String(u16(w, q.device + 4 + 8 * q.size)) };
      }
      if (off >= q.driver && off < q.driver + 6 + 2 * q.size) return { label: `${name} avail ring`, start: q.driver, end: q.driver + 6 + 2 * q.size };
      if (off >= q.desc && off < q.desc + 16 * q.size) {
        const d = Math.floor((off - q.desc) / 16);
        return { label: `${name} desc[${d}]`, start: q.desc + 16 * d, end: q.desc + 16 * d + 16 };
      }
    }
    return { label: off >= l.poolOffset ? `pool +${hex(off - l.poolOffset)}` : `window ${hex(off)}`, start: off, end: off + 1 };
  }

  /**
   * A readable diff of two window images over `spans` (the differing ranges): one line per labelled
   * region, expected vs got, decoded where the region has a meaning; at most `max` lines.
   */
  diff(expected: Uint8Array, got: Uint8Array, spans: readonly [number, number][], max = 12): string[] {
    const lines: string[] = [];
    const raw = (w: Uint8Array, s: number, e: number) => Buffer.from(w.subarray(s, Math.min(e, s + 32))).toString('hex').replace(/(..)/g, '$1 ').trim() + (e - s > 32 ? ' …' : '');
    let regions = 0;
    for (const [off, len] of spans) {
      for (let p = off; p < off + len && lines.length < max; ) {
        const r = this.region(p);
        const end = r.decode ? r.end : Math.min(off + len, p + 32);
        const s = r.decode ? r.start : p;
        regions++;
        const exp = r.decode ? `${r.decode(expected)} [${raw(expected, s, end)}]` : raw(expected, s, end);
        const gt = r.decode ? `${r.decode(got)} [${raw(got, s, end)}]` : raw(got, s, end);
        lines.push(`  ${hex(s)} ${r.label}: expected ${exp}, got ${gt}`);
        p = Math.max(end, p + 1);
      }
    }
    const total = spans.length;
    if (lines.length >= max && (regions < total || total > max)) lines.push(`  … (${spans.reduce((a, [, l]) => a + l, 0)} bytes in ${total} ranges differ in all)`);
    return lines;
  }
}
