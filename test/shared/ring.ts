/**
 * A split ring written by hand into the window pool, for tests that need to write anything at all
 * into descriptors and rings (virtio 1.3 §2.7). Offsets are window offsets. This base only touches
 * the window bytes; how the ring is installed and notified (synchronously on a simulator, or through
 * an async RawPeer on any backend) is up to the subclass.
 */

/** Little-endian u32 words, as virtio-msg payloads are written. */
export const u32s = (...v: number[]) => {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
};

export class SplitRing {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** Scratch data area after the rings. */
  readonly data: number;
  availIdx = 0;

  constructor(
    /** The window, read again on every access (a simulator's heap may move). */
    private readonly window: () => Uint8Array,
    readonly size: number,
    base: number,
  ) {
    this.desc = base;
    this.avail = base + 16 * size;
    this.used = Math.ceil((this.avail + 6 + 2 * size) / 4096) * 4096;
    this.data = Math.ceil((this.used + 6 + 8 * size) / 4096) * 4096;
    window().fill(0, base, this.data + 65536);
  }

  get bytes(): Uint8Array {
    return this.window();
  }

  private get v(): DataView {
    const b = this.window();
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Writes descriptor `i` (address given as lo/hi halves). */
  setDesc(i: number, addr: number, len: number, flags: number, next = 0, addrHi = 0, table = this.desc): void {
    const v = this.v;
    v.setUint32(table + 16 * i, addr >>> 0, true);
    v.setUint32(table + 16 * i + 4, addrHi >>> 0, true);
    v.setUint32(table + 16 * i + 8, len >>> 0, true);
    v.setUint16(table + 16 * i + 12, flags, true);
    v.setUint16(table + 16 * i + 14, next, true);
  }

  /** Puts `head` in the next available slot and publishes the index. */
  offer(head: number): void {
    this.v.setUint16(this.avail + 4 + 2 * (this.availIdx % this.size), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.v.setUint16(this.avail + 2, this.availIdx, true);
  }

  /** Writes the available index directly (for index attacks). */
  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.v.setUint16(this.avail + 2, this.availIdx, true);
  }

  usedIdx(): number {
    return this.v.getUint16(this.used + 2, true);
  }

  usedElem(i: number): { id: number; len: number } {
    const at = this.used + 4 + 8 * (i % this.size);
    return { id: this.v.getUint32(at, true), len: this.v.getUint32(at + 4, true) };
  }

  /** The SET_VQUEUE payload for this ring as queue `q`. */
  setVqueuePayload(q: number): Uint8Array {
    return u32s(q, 0, this.size, 0, this.desc, 0, this.avail, 0, this.used, 0);
  }
}
