/**
 * A split ring written by hand into the window pool (virtio 1.3 §2.7), for hostile tests and the
 * fuzzer: descriptors and indexes can be set to anything at all. Offsets are window offsets. Layout
 * from `base`: descriptor table, available ring, the used ring on the next 4 KiB boundary, then a data
 * area (`data`; 64 KiB of it zeroed). This base only touches window bytes; how the ring is installed
 * and notified (a synchronous simulator, the raw fuzz driver, an async peer on any backend) is up to
 * the subclass.
 */
import { splitAreaSizes } from '../../firmware/virtqueue/split';

/** Little-endian u32 words, as virtio-msg payloads are written. */
export function le32(...v: number[]): Uint8Array {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
}

export class SplitRing {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** First byte after the rings, free for buffers. */
  readonly data: number;
  /** Our avail idx (free-running u16). */
  availIdx = 0;

  constructor(
    /** The window, read again on every access (a simulator's heap may move). */
    private readonly window: () => Uint8Array,
    readonly size: number,
    base: number,
  ) {
    const s = splitAreaSizes(size);
    this.desc = base;
    this.avail = base + s.desc;
    this.used = Math.ceil((this.avail + s.avail) / 4096) * 4096;
    this.data = Math.ceil((this.used + s.used) / 4096) * 4096;
    window().fill(0, base, this.data + 65536);
  }

  get bytes(): Uint8Array {
    return this.window();
  }

  protected get v(): DataView {
    const b = this.window();
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
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

  /** The SET_VQUEUE payload for this ring as queue `q`. */
  setVqueuePayload(q: number): Uint8Array {
    return le32(q, 0, this.size, 0, this.desc, 0, this.avail, 0, this.used, 0);
  }
}
