/**
 * The only code that reads or writes window bytes.
 *
 * The window is shared with a frontend we do not trust. Every access is bounds-checked here, with
 * arithmetic that cannot overflow: guest addresses arrive as 64-bit values split into two u32 halves
 * and lengths as u32, so every sum stays far below 2^53 and is exact in a JS number.
 * Reads of guest structures copy once into private memory (`copyOut`); callers parse the copy.
 */
import { GuestProtocolError } from '../errors';

export class GuestWindow {
  /** Bytes in the window. */
  readonly size: number;
  /** First byte the frontend may hand us as a buffer or ring address (the pool). */
  readonly guestStart: number;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  /** The window as aligned 16- and 32-bit words (host order: little-endian, checked in the constructor). */
  private readonly halves: Uint16Array;
  private readonly words: Uint32Array;

  constructor(buffer: ArrayBuffer, guestStart: number) {
    if (guestStart < 0 || guestStart > buffer.byteLength) throw new Error(`guestStart ${guestStart} outside window`);
    this.size = buffer.byteLength;
    this.guestStart = guestStart;
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
    // Every window structure is little-endian; word copies hand out host-order words, so the host must be too.
    if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('GuestWindow needs a little-endian host');
    this.halves = new Uint16Array(buffer, 0, buffer.byteLength >>> 1);
    this.words = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }

  /** True when [off, off+len) lies inside the window (off, len: non-negative integers < 2^53). */
  contains(off: number, len: number): boolean {
    return off >= 0 && len >= 0 && off + len <= this.size;
  }

  /**
   * Validates a guest-supplied 64-bit address (lo, hi u32 halves) and length as a range inside the
   * pool; returns the window offset. Anything else is a protocol violation, never a memory access.
   * `chain` (a head index) prefixes the description only when it is thrown: no string per call.
   */
  guestRange(lo: number, hi: number, len: number, what: string, chain = -1): number {
    if (hi !== 0 || lo < this.guestStart || lo + len > this.size) {
      throw new GuestProtocolError(
        'ADDR_OUTSIDE_WINDOW',
        'DESIGN §2',
        `${chain >= 0 ? `chain ${chain} ` : ''}${what} [0x${hi.toString(16)}_${lo.toString(16).padStart(8, '0')} +${len}] outside pool [0x${this.guestStart.toString(16)}, 0x${this.size.toString(16)})`,
      );
    }
    return lo;
  }

  /**
   * A validated guest structure (a virtqueue area, checked by `guestRange` and for alignment at
   * SET_VQUEUE) as 32-bit words (`off` 4-byte aligned) or 16-bit halves (`off` 2-byte aligned), for the
   * per-chain path of its queue: the range is checked here once, and a typed array never reaches past
   * its own end, so the queue's masked ring indices cannot leave the area.
   */
  areaWords(off: number, len: number): Uint32Array {
    if (!(off >= 0 && off + len <= this.size && (off & 3) === 0)) this.outside(off, len);
    return new Uint32Array(this.bytes.buffer, off, len >>> 2);
  }
  /**
   * The whole window as words, for the chain cursors' header copies: they copy only ranges of segments
   * the walk validated inside the pool, and a typed array never reaches past the window (the bound
   * `copyOutWords`/`copyInWords` check).
   */
  wordView(): Uint32Array {
    return this.words;
  }
  areaHalves(off: number, len: number): Uint16Array {
    if (!(off >= 0 && off + len <= this.size && (off & 1) === 0)) this.outside(off, len);
    return new Uint16Array(this.bytes.buffer, off, len >>> 1);
  }
  /** The same as `areaWords` for an 8-byte aligned area, as doubles: for comparing bytes 8 at a time (never computed with). */
  areaDoubles(off: number, len: number): Float64Array {
    if (!(off >= 0 && off + len <= this.size && (off & 7) === 0)) this.outside(off, len);
    return new Float64Array(this.bytes.buffer, off, len >>> 3);
  }

  private check(off: number, len: number): void {
    if (!(off >= 0 && off + len <= this.size)) this.outside(off, len);
  }

  /** A host bug (an internal access outside the window): fails loudly. */
  private outside(off: number, len: number): never {
    throw new Error(`window access [${off} +${len}] outside window of ${this.size}`);
  }

  u8(off: number): number {
    if (!(off >= 0 && off + 1 <= this.size)) this.outside(off, 1);
    return this.bytes[off]!;
  }
  // Aligned offsets (every ring and FIFO field) go through the word views: no DataView call.
  u16(off: number): number {
    if (!(off >= 0 && off + 2 <= this.size)) this.outside(off, 2);
    return (off & 1) === 0 ? this.halves[off >>> 1]! : this.view.getUint16(off, true);
  }
  u32(off: number): number {
    if (!(off >= 0 && off + 4 <= this.size)) this.outside(off, 4);
    return (off & 3) === 0 ? this.words[off >>> 2]! : this.view.getUint32(off, true);
  }
  setU8(off: number, v: number): void {
    if (!(off >= 0 && off + 1 <= this.size)) this.outside(off, 1);
    this.bytes[off] = v;
  }
  setU16(off: number, v: number): void {
    if (!(off >= 0 && off + 2 <= this.size)) this.outside(off, 2);
    if ((off & 1) === 0) this.halves[off >>> 1] = v;
    else this.view.setUint16(off, v, true);
  }
  setU32(off: number, v: number): void {
    if (!(off >= 0 && off + 4 <= this.size)) this.outside(off, 4);
    if ((off & 3) === 0) this.words[off >>> 2] = v;
    else this.view.setUint32(off, v, true);
  }

  /** Copies [off, off+len) into a fresh private array: the one fetch of a guest structure. */
  copyOut(off: number, len: number): Uint8Array {
    this.check(off, len);
    return this.bytes.slice(off, off + len);
  }

  /** Copies [off, off+len) into `dst` at `dstOff` (private memory the caller owns). */
  copyOutInto(off: number, len: number, dst: Uint8Array, dstOff: number): void {
    if (!(off >= 0 && off + len <= this.size)) this.outside(off, len);
    dst.set(this.bytes.subarray(off, off + len), dstOff);
  }

  /**
   * Copies the 16 bytes at `off` (4-byte aligned) into `dst[0..3]` as four little-endian words: the one
   * fetch of a split-queue descriptor, without a DataView call or a subarray per copy.
   */
  copyOut16(off: number, dst: Uint32Array): void {
    if (!(off >= 0 && off + 16 <= this.size && (off & 3) === 0)) this.outside(off, 16);
    const w = this.words;
    const i = off >>> 2;
    dst[0] = w[i]!;
    dst[1] = w[i + 1]!;
    dst[2] = w[i + 2]!;
    dst[3] = w[i + 3]!;
  }

  /** Copies `count` words at `off` (4-byte aligned) into `dst[0..count)`: a short structure's one fetch. */
  copyOutWords(off: number, count: number, dst: Uint32Array): void {
    if (!(off >= 0 && off + 4 * count <= this.size && (off & 3) === 0 && count <= dst.length)) this.outside(off, 4 * count);
    const w = this.words;
    const i = off >>> 2;
    for (let k = 0; k < count; k++) dst[k] = w[i + k]!;
  }

  /** Writes `src[0..count)` as words at `off` (4-byte aligned). */
  copyInWords(off: number, src: Uint32Array, count: number): void {
    if (!(off >= 0 && off + 4 * count <= this.size && (off & 3) === 0 && count <= src.length)) this.outside(off, 4 * count);
    const w = this.words;
    const i = off >>> 2;
    for (let k = 0; k < count; k++) w[i + k] = src[k]!;
  }

  /** Writes `data` at `off`. */
  copyIn(off: number, data: Uint8Array): void {
    this.check(off, data.length);
    this.bytes.set(data, off);
  }

  /** Fills [off, off+len) with `value`. */
  fill(off: number, len: number, value: number): void {
    this.check(off, len);
    this.bytes.fill(value, off, off + len);
  }
}
