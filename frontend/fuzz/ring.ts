/**
 * A split ring written by hand into the window pool (virtio 1.3 §2.7), for hostile tests and the
 * fuzzer: descriptors and indexes can be set to anything at all. Offsets are window offsets. Layout
 * from `base`: descriptor table, available ring, the used ring on the next 4 KiB boundary, then a data
 * area (`data`; 64 KiB of it zeroed). This base only touches window bytes; how the ring is installed
 * and notified (a synchronous simulator, the raw fuzz driver, an async peer on any backend) is up to
 * the subclass.
 */
import { VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_USED, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { splitAreaSizes } from '../../firmware/virtqueue/split';

/** Little-endian u32 words, as virtio-msg payloads are written. */
export function le32(...v: number[]): Uint8Array {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
}

/** What both hand-written rings share: the window they write, their size, the areas SET_VQUEUE carries. */
abstract class HandWrittenRing {
  /** The three areas as SET_VQUEUE carries them (split: table, avail, used; packed: ring, driver, device). */
  abstract readonly areas: { desc: number; driver: number; device: number };

  constructor(
    /** The window, read again on every access (a simulator's heap may move). */
    private readonly window: () => Uint8Array,
    readonly size: number,
  ) {}

  get bytes(): Uint8Array {
    return this.window();
  }

  protected get v(): DataView {
    const b = this.window();
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** The SET_VQUEUE payload for this ring as queue `q`. */
  setVqueuePayload(q: number): Uint8Array {
    const a = this.areas;
    return le32(q, 0, this.size, 0, a.desc, 0, a.driver, 0, a.device, 0);
  }
}

export class SplitRing extends HandWrittenRing {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  readonly areas: { desc: number; driver: number; device: number };
  /** First byte after the rings, free for buffers. */
  readonly data: number;
  /** Our avail idx (free-running u16). */
  availIdx = 0;

  constructor(window: () => Uint8Array, size: number, base: number) {
    super(window, size);
    const s = splitAreaSizes(size);
    this.desc = base;
    this.avail = base + s.desc;
    this.used = Math.ceil((this.avail + s.avail) / 4096) * 4096;
    this.data = Math.ceil((this.used + s.used) / 4096) * 4096;
    this.areas = { desc: this.desc, driver: this.avail, device: this.used };
    window().fill(0, base, this.data + 65536);
  }

  /** Writes descriptor `i` of the table at `table` (default: this ring's); address as lo/hi halves. */
  setDesc(i: number, addr: number, len: number, flags: number, next = 0, table = this.desc, addrHi = 0): void {
    const v = this.v;
    const at = table + 16 * i;
    v.setUint32(at, addr >>> 0, true);
    v.setUint32(at + 4, addrHi >>> 0, true);
    v.setUint32(at + 8, len >>> 0, true);
    v.setUint16(at + 12, flags, true);
    v.setUint16(at + 14, next, true);
  }

  /** Puts `head` in the next available slot and publishes the index. */
  offer(head: number): void {
    this.v.setUint16(this.avail + 4 + 2 * (this.availIdx % this.size), head, true);
    this.setAvailIdx(this.availIdx + 1);
  }

  /** Writes the available index directly (for index attacks). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.v.setUint16(this.avail + 2, this.availIdx, true);
  }

  /** used idx as the device published it. */
  usedIdx(): number {
    return this.v.getUint16(this.used + 2, true);
  }

  /** Used element `n` (free-running index). */
  usedElem(n: number): { id: number; len: number } {
    const at = this.used + 4 + 8 * (n % this.size);
    return { id: this.v.getUint32(at, true), len: this.v.getUint32(at + 4, true) };
  }
}

/** A segment of a buffer: window offset, length, device-writable or not. */
export interface RingSegment {
  off: number;
  len: number;
  write?: boolean;
}

/** A used buffer as the device returned it. */
export interface UsedBuffer {
  id: number;
  len: number;
  /** The used descriptor's flags (§2.8.3: WRITE when the device wrote data). */
  flags: number;
}

/**
 * A packed ring written by hand into the window pool (virtio 1.3 §2.8), for hostile tests, unit tests
 * and the fuzzer: any descriptor, flag or event value can be written. Layout from `base`: the descriptor
 * ring, the driver event suppression structure and the device event suppression structure (4 bytes each,
 * 16-byte aligned), then a data area on the next 4 KiB boundary (`data`; 64 KiB of it zeroed).
 *
 * It also keeps a well-behaved driver's state — next descriptor position and Driver Ring Wrap Counter,
 * next used position and its wrap counter, the descriptors each buffer id took — so `offer()` and
 * `reap()` do what §2.8.21 and §2.8.22 say, and a test corrupts exactly what it means to.
 */
export class PackedRing extends HandWrittenRing {
  readonly desc: number;
  readonly driver: number;
  readonly device: number;
  readonly areas: { desc: number; driver: number; device: number };
  /** First byte after the rings, free for buffers. */
  readonly data: number;
  /** The driver's next descriptor position and Driver Ring Wrap Counter (§2.8.1). */
  nextAvail = 0;
  availWrap = 1;
  /** The next used descriptor position the driver reads and its wrap counter. */
  nextUsed = 0;
  usedWrap = 1;
  /** Descriptors each buffer id in flight took (to skip to the next used descriptor, §2.8.6). */
  readonly inFlight = new Map<number, number>();

  constructor(window: () => Uint8Array, size: number, base: number) {
    super(window, size);
    this.desc = base;
    this.driver = Math.ceil((base + 16 * size) / 16) * 16;
    this.device = this.driver + 16;
    this.data = Math.ceil((this.device + 4) / 4096) * 4096;
    this.areas = { desc: this.desc, driver: this.driver, device: this.device };
    window().fill(0, base, this.data + 65536);
  }

  /** The flags of a descriptor made available under Driver Ring Wrap Counter `wrap` (AVAIL = wrap, USED = its inverse), plus `extra`. */
  static availFlags(wrap: number, extra = 0): number {
    return extra | (wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
  }

  /** Writes descriptor `pos` of the ring (or of the table at `table`) whole: address (lo/hi halves), length, id, flags. */
  setDesc(pos: number, addr: number, len: number, id: number, flags: number, table = this.desc, addrHi = 0): void {
    const v = this.v;
    const at = table + 16 * pos;
    v.setUint32(at, addr >>> 0, true);
    v.setUint32(at + 4, addrHi >>> 0, true);
    v.setUint32(at + 8, len >>> 0, true);
    v.setUint16(at + 12, id, true);
    v.setUint16(at + 14, flags, true);
  }

  /** Writes only the flags of ring descriptor `pos` (what makes it available). */
  setFlags(pos: number, flags: number): void {
    this.v.setUint16(this.desc + 16 * pos + 14, flags, true);
  }

  /** Ring descriptor `pos` as it is now. */
  descAt(pos: number): { addr: number; len: number; id: number; flags: number } {
    const v = this.v;
    const at = this.desc + 16 * pos;
    return { addr: v.getUint32(at, true), len: v.getUint32(at + 8, true), id: v.getUint16(at + 12, true), flags: v.getUint16(at + 14, true) };
  }

  /**
   * Writes `segs` as a list from the next descriptor position (NEXT on all but the last, `id` in every
   * descriptor as Linux does; §2.8.6 needs it in the last) without making it available: the head's flags
   * are left as they were until `publish` (§2.8.21.1: the first descriptor goes last). `flags` is added to
   * every descriptor. Returns the head's position, the flags that make it available and the count.
   */
  write(segs: RingSegment[], id: number, flags = 0): { head: number; headFlags: number; count: number } {
    if (segs.length === 0) throw new Error('a buffer needs at least one descriptor');
    const head = this.nextAvail;
    let headFlags = 0;
    segs.forEach((s, k) => {
      const f = PackedRing.availFlags(this.availWrap, flags | (s.write ? VIRTQ_DESC_F_WRITE : 0) | (k < segs.length - 1 ? VIRTQ_DESC_F_NEXT : 0));
      if (k === 0) {
        headFlags = f;
        this.setDesc(head, s.off, s.len, id, this.descAt(head).flags);
      } else this.setDesc(this.nextAvail, s.off, s.len, id, f);
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    });
    this.inFlight.set(id, segs.length);
    return { head, headFlags, count: segs.length };
  }

  /** Makes a written list available: its head's flags. */
  publish(w: { head: number; headFlags: number }): void {
    this.setFlags(w.head, w.headFlags);
  }

  /** Makes `segs` available as buffer `id` (a list of descriptors); returns the head position. */
  offer(segs: RingSegment[], id: number): number {
    const w = this.write(segs, id);
    this.publish(w);
    return w.head;
  }

  /** Makes `segs` available as buffer `id` through an indirect table written at `table` (one INDIRECT descriptor, §2.8.7). */
  offerIndirect(segs: RingSegment[], id: number, table: number): number {
    segs.forEach((s, k) => this.setDesc(k, s.off, s.len, 0, s.write ? VIRTQ_DESC_F_WRITE : 0, table));
    const w = this.write([{ off: table, len: 16 * segs.length }], id, VIRTQ_DESC_F_INDIRECT);
    this.publish(w);
    return w.head;
  }

  /**
   * The used buffers the device published since the last call, read as a driver does (§2.8.22): the
   * descriptor at the next used position is used when AVAIL and USED both equal the used wrap counter;
   * the position then skips the descriptors its buffer took. Throws when the device used an id that is
   * not in flight.
   */
  reap(): UsedBuffer[] {
    const out: UsedBuffer[] = [];
    for (let k = 0; k < this.size; k++) {
      const d = this.descAt(this.nextUsed);
      const want = this.usedWrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
      if ((d.flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) !== want) break;
      const n = this.inFlight.get(d.id);
      if (n === undefined) throw new Error(`the device used buffer id ${d.id} (descriptor ${this.nextUsed}), which is not in flight`);
      this.inFlight.delete(d.id);
      out.push({ id: d.id, len: d.len, flags: d.flags });
      this.nextUsed += n;
      if (this.nextUsed >= this.size) {
        this.nextUsed -= this.size;
        this.usedWrap ^= 1;
      }
    }
    return out;
  }

  /** Writes the driver event suppression structure (§2.8.14): flags, and the offset/wrap for RING_EVENT_FLAGS_DESC. */
  setDriverEvent(flags: number, off = 0, wrap = 0): void {
    const v = this.v;
    v.setUint16(this.driver, (off & 0x7fff) | (wrap ? 0x8000 : 0), true);
    v.setUint16(this.driver + 2, flags, true);
  }

  /** The device event suppression structure as the device wrote it. */
  deviceEvent(): { flags: number; off: number; wrap: number } {
    const v = this.v;
    const ow = v.getUint16(this.device, true);
    return { flags: v.getUint16(this.device + 2, true), off: ow & 0x7fff, wrap: ow >>> 15 };
  }

}
