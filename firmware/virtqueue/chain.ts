/**
 * Descriptor chains, the contract between a virtqueue and a device model (both ring formats: split,
 * virtio 1.3 §2.7, and packed, §2.8).
 *
 * A queue's `pop()` walks and validates a whole chain before the device sees it (cloud-hypervisor style:
 * nothing is moved before the chain is known to be good) and hands out a `DescriptorChain`: the window
 * ranges of its device-readable segments, then its device-writable ones, with a reader and a writer over
 * them. The device never sees a raw descriptor, so it cannot tell (and need not care) which ring format
 * the driver negotiated.
 */
import type { GuestWindow } from '../window/window';

/** Largest queue any Bulkhead device offers (the spec allows 32768). */
export const MAX_QUEUE_SIZE = 1024;
/** Largest indirect table we accept (Linux never builds more than the queue size). */
export const MAX_INDIRECT_DESCS = 1024;
/** §2.7.5: the total length of a chain's buffers must not exceed 2^32. */
export const MAX_CHAIN_BYTES = 2 ** 32;
/** Bytes of one descriptor, split (`virtq_desc`) or packed (`pvirtq_desc`). */
export const DESC_SIZE = 16;

/** Segments one chain can have at most: a direct walk (≤ MAX_QUEUE_SIZE) ending in an indirect table. */
export const MAX_CHAIN_SEGMENTS = MAX_QUEUE_SIZE + MAX_INDIRECT_DESCS;

/**
 * Window ranges a cursor's `take()` consumed: (offset, length) pairs at [0, 2 × count). One scratch
 * for the whole firmware (single-threaded); valid until the next `take()` on any cursor.
 */
export const CHAIN_RANGES = new Uint32Array(2 * MAX_CHAIN_SEGMENTS); // offsets < window ≤ 2^32, lengths u32

/**
 * A validated descriptor chain: `readableCount` device-readable segments, then writable ones.
 * The queue keeps one chain object per head index (split) or buffer id (packed) and refills it at each
 * `pop()` of that head or id (unique while in flight, so a chain a device holds is never refilled under
 * it); its reader and writer are likewise one object each, rewound by `reader()` / `writer()`.
 */
export class DescriptorChain {
  /** Window offsets and lengths of the non-empty segments, readable first; entries ≥ `segments` are stale. */
  readonly segOffsets: number[] = [];
  readonly segLengths: number[] = [];
  segments = 0;
  readableCount = 0;
  readableBytes = 0;
  writableBytes = 0;
  /**
   * Split queues only (a packed queue leaves them NaN): the head descriptor's 16 bytes as two doubles
   * (SplitQueue's `descDoubles`: address; length and flags/next) when the last walk of this head found exactly that one direct descriptor (no NEXT, no
   * INDIRECT) and accepted it; NaN otherwise (equal to nothing). The walk is a function of those bytes
   * and the queue's bounds only, so `pop()` reuses the fields above when the driver posts the same bytes
   * again (a driver re-posting its buffers) and walks when anything differs.
   *
   * Why doubles compare like the bytes: for doubles that are not NaN, `===` holds exactly when the bits
   * are equal, except +0 === -0. A NaN pattern never equals the memo, so such a descriptor is walked
   * every time. The ±0 pair differs only in bit 63: `memo0` (the address) 0 vs 2^63, which the walk
   * accepts only with length 0, where it never looks at the address; `memo1` (length 0, flags/next 0)
   * vs (length 0, next 0x8000), where flags has no NEXT and `next` is never read. Both walks give the
   * same chain, so the aliasing cannot change a result (test/unit/split-queue.test.ts checks both).
   */
  memo0 = NaN;
  memo1 = NaN;
  private readonly rd: ChainReader;
  private readonly wr: ChainWriter;
  /** The window as words (GuestWindow.wordView), for the header copies of readHead/writeHead. */
  private readonly words: Uint32Array;
  private readonly win: GuestWindow;

  constructor(
    /** What goes back to the driver in the used ring: the head descriptor index (split) or the buffer id (packed). */
    readonly headIndex: number,
    win: GuestWindow,
  ) {
    this.words = win.wordView();
    this.win = win;
    this.rd = new ChainReader(win, this);
    this.wr = new ChainWriter(win, this);
  }

  /** The segments' window offsets (a copy; for tests and logs, not the data path). */
  get offsets(): number[] {
    return this.segOffsets.slice(0, this.segments);
  }
  get lengths(): number[] {
    return this.segLengths.slice(0, this.segments);
  }

  /**
   * A header and its payload in one call (the per-packet path): copies the first `n` readable bytes
   * (`n` ≤ readableBytes, a multiple of 4, ≤ 4 × dst.length) into `dst` — the one fetch — and puts the
   * rest of the readable bytes into CHAIN_RANGES; returns the number of ranges. The reader's position is
   * unspecified afterwards (when the payload is one range it is not even touched): call `reader()` to
   * read the chain again.
   */
  readHead(dst: Uint32Array, n: number): number {
    const total = this.readableBytes;
    const offs = this.segOffsets;
    const lens = this.segLengths;
    const at = offs[0]!;
    const l0 = lens[0]!;
    const rd = this.rd; // positioned only on the paths that go on with take()
    if (this.readableCount > 0 && ((at | n) & 3) === 0 && l0 >= n) {
      // readWords inline: the header inside the first segment, word by word.
      const w = this.words;
      const i = at >>> 2;
      if (n === 12) {
        // the virtio-net header of VERSION_1, unrolled
        dst[0] = w[i]!;
        dst[1] = w[i + 1]!;
        dst[2] = w[i + 2]!;
      } else for (let k = 0; k < n >>> 2; k++) dst[k] = w[i + k]!;
      const rest = total - n;
      // take(rest) inline when the rest is one range (rest > 0: it is readable): the end of the first
      // segment (header and payload in one buffer), or all of the second (the header in its own).
      if (rest > 0 && l0 - n === rest) {
        const out = CHAIN_RANGES;
        out[0] = at + n;
        out[1] = rest;
        return 1; // the reader is not moved (see above)
      }
      const seg = l0 === n ? 1 : 0;
      const pos = l0 === n ? 0 : n;
      if (seg === 1 && lens[1] === rest && rest > 0) {
        const out = CHAIN_RANGES;
        out[0] = offs[1]!;
        out[1] = rest;
        return 1;
      }
      rd.seg = seg;
      rd.segPos = pos;
      rd.remaining = rest;
      rd.written = 0;
      return rd.take(rest);
    }
    this.reader();
    rd.readWords(dst, n);
    return rd.take(rd.remaining);
  }

  /**
   * A header and its payload in one call: writes the first `n` bytes of `src`'s buffer (`n` + `len` ≤
   * writableBytes, `n` a multiple of 4) and puts the next `len` writable bytes into CHAIN_RANGES; returns
   * the number of ranges. The writer's position is unspecified afterwards (with a one-range payload it
   * is not touched): the caller passes `n` + `len` to `pushUsed` itself.
   */
  writeHead(src: Uint32Array, n: number, len: number): number {
    const seg = this.readableCount;
    const total = this.writableBytes;
    const at = this.segOffsets[seg]!;
    const l = this.segLengths[seg]!;
    if (total >= n && ((at | n) & 3) === 0 && l > n) {
      // writeWords inline: the header inside the first writable segment, word by word.
      const w = this.words;
      const i = at >>> 2;
      if (n === 12) {
        // the virtio-net header of VERSION_1, unrolled
        w[i] = src[0]!;
        w[i + 1] = src[1]!;
        w[i + 2] = src[2]!;
      } else for (let k = 0; k < n >>> 2; k++) w[i + k] = src[k]!;
      if (len > 0 && l - n >= len) {
        // take(len) inline: the payload in the rest of this segment, one range.
        const out = CHAIN_RANGES;
        out[0] = at + n;
        out[1] = len;
        return 1; // the writer is not moved (see above)
      }
      const wr = this.wr; // positioned only on the paths that go on with take()
      wr.seg = seg;
      wr.segPos = n;
      wr.remaining = total - n;
      wr.written = n;
      return wr.take(len);
    }
    const wr = this.writer();
    wr.writeWords(src, n);
    return wr.take(len);
  }

  /**
   * Writes the chain's last device-writable byte (blk's status byte, §5.2.6: "the final byte"; i2c's in_hdr, §5.19.6) without
   * moving the writer: what `writer()`, a skip to the end and `writeU8` do, in one store. The walk keeps
   * only non-empty segments, readable before writable, so with a writable byte the last segment is
   * writable and its last byte is the chain's.
   */
  writeLastByte(v: number): void {
    if (this.writableBytes < 1) throw new Error(`chain ${this.headIndex}: no writable byte`);
    const k = this.segments - 1;
    this.win.setU8(this.segOffsets[k]! + this.segLengths[k]! - 1, v);
  }

  /** The chain's cursor over its device-readable bytes, rewound to the start. */
  reader(): ChainReader {
    const rd = this.rd; // rewound in place (no call: the per-request path)
    rd.seg = 0;
    rd.segPos = 0;
    rd.remaining = this.readableBytes;
    rd.written = 0;
    return rd;
  }

  /** The chain's cursor over its device-writable bytes, rewound to the start (`written` 0). */
  writer(): ChainWriter {
    const wr = this.wr;
    wr.seg = this.readableCount;
    wr.segPos = 0;
    wr.remaining = this.writableBytes;
    wr.written = 0;
    return wr;
  }
}

/** Sequential access to one side of a chain. Regions are validated window ranges. */
class ChainCursor {
  /** Position: segment index in the chain and offset inside it (set by the chain's reader()/writer()). */
  seg = 0;
  segPos = 0;
  /** Bytes left on this side of the chain. */
  remaining = 0;
  /**
   * Bytes consumed through `take()` (and, for a writer, `write*()`) since the chain's reader()/writer():
   * a writer's used length. Kept here so `take()` needs no override.
   */
  written = 0;

  constructor(
    protected readonly win: GuestWindow,
    protected readonly chain: DescriptorChain,
  ) {}

  /**
   * Consumes `n` bytes (≤ remaining) and puts them as window ranges into CHAIN_RANGES (offset, length
   * pairs), for services that move data straight between their backing and the window; returns the
   * number of ranges.
   */
  take(n: number): number {
    if (n > this.remaining) throw new Error(`take(${n}) beyond ${this.remaining} remaining`);
    this.remaining -= n;
    this.written += n;
    const offs = this.chain.segOffsets;
    const lens = this.chain.segLengths;
    const out = CHAIN_RANGES;
    let seg = this.seg;
    let pos = this.segPos;
    let k = 0;
    while (n > 0) {
      const l = lens[seg]!;
      const avail = l - pos;
      const t = avail < n ? avail : n;
      out[k++] = offs[seg]! + pos;
      out[k++] = t;
      n -= t;
      pos += t;
      if (pos === l) {
        seg++;
        pos = 0;
      }
    }
    this.seg = seg;
    this.segPos = pos;
    return k >> 1;
  }

  /** Skips `n` bytes (≤ remaining). */
  skip(n: number): void {
    this.take(n);
  }

  protected advance(take: number): void {
    this.segPos += take;
    this.remaining -= take;
    if (this.segPos === this.chain.segLengths[this.seg]) {
      this.seg++;
      this.segPos = 0;
    }
  }
}

/** Reads the device-readable part of a chain into private memory. */
export class ChainReader extends ChainCursor {
  /** Copies the next `n` bytes (n ≤ remaining) into a fresh private array. */
  read(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.readInto(out, n);
    return out;
  }

  /**
   * Copies the next `n` bytes (≤ remaining, ≤ 4 × dst.length) into `dst` (private memory the caller
   * reuses; byte k of the copy is byte k of dst's buffer). A whole number of words inside one 4-byte-
   * aligned segment (a request header) is copied word by word in one window call, anything else by `readInto`.
   */
  readWords(dst: Uint32Array, n: number): void {
    const seg = this.seg;
    const at = this.chain.segOffsets[seg]! + this.segPos;
    if (this.remaining >= n && ((at | n) & 3) === 0 && this.chain.segLengths[seg]! - this.segPos >= n) {
      if (n === 16) this.win.copyOut16(at, dst); // unrolled: the blk header
      else this.win.copyOutWords(at, n >>> 2, dst);
      // advance(n) inline
      this.remaining -= n;
      if ((this.segPos += n) === this.chain.segLengths[seg]) {
        this.seg = seg + 1;
        this.segPos = 0;
      }
    } else this.readInto(new Uint8Array(dst.buffer, dst.byteOffset, n), n);
  }

  /** Copies the next `n` bytes (n ≤ remaining, ≤ dst.length) into private memory the caller reuses. */
  readInto(dst: Uint8Array, n: number): void {
    if (n > this.remaining) throw new Error(`read(${n}) beyond ${this.remaining} remaining`);
    const offs = this.chain.segOffsets;
    const lens = this.chain.segLengths;
    let pos = 0;
    while (pos < n) {
      const avail = lens[this.seg]! - this.segPos;
      const take = avail < n - pos ? avail : n - pos;
      this.win.copyOutInto(offs[this.seg]! + this.segPos, take, dst, pos);
      pos += take;
      this.advance(take);
    }
  }
}

/** Writes into the device-writable part of a chain; `written` becomes the used length. */
export class ChainWriter extends ChainCursor {

  /** Writes `data` (length ≤ remaining). */
  write(data: Uint8Array): void {
    if (data.length > this.remaining) throw new Error(`write(${data.length}) beyond ${this.remaining} remaining`);
    const offs = this.chain.segOffsets;
    const lens = this.chain.segLengths;
    if (lens[this.seg]! - this.segPos > data.length) {
      // All of it inside the current segment (the usual header write): one copy, no subarray.
      this.win.copyIn(offs[this.seg]! + this.segPos, data);
      this.segPos += data.length;
      this.remaining -= data.length;
      this.written += data.length;
      return;
    }
    let pos = 0;
    while (pos < data.length) {
      const avail = lens[this.seg]! - this.segPos;
      const take = avail < data.length - pos ? avail : data.length - pos;
      this.win.copyIn(offs[this.seg]! + this.segPos, data.subarray(pos, pos + take));
      pos += take;
      this.advance(take);
    }
    this.written += data.length;
  }

  /**
   * Writes the first `n` bytes of `src`'s buffer (n ≤ remaining, ≤ 4 × src.length): word by word in one
   * window call when they fit a 4-byte-aligned run of the current segment, else by `write`.
   */
  writeWords(src: Uint32Array, n: number): void {
    const at = this.chain.segOffsets[this.seg]! + this.segPos;
    if (this.remaining >= n && ((at | n) & 3) === 0 && this.chain.segLengths[this.seg]! - this.segPos > n) {
      this.win.copyInWords(at, src, n >>> 2);
      this.segPos += n;
      this.remaining -= n;
      this.written += n;
    } else this.write(new Uint8Array(src.buffer, src.byteOffset, n));
  }

  /** Writes one byte (remaining ≥ 1). */
  writeU8(v: number): void {
    if (this.remaining < 1) throw new Error(`write(1) beyond ${this.remaining} remaining`);
    this.win.setU8(this.chain.segOffsets[this.seg]! + this.segPos, v);
    this.remaining--;
    if (++this.segPos === this.chain.segLengths[this.seg]) {
      this.seg++;
      this.segPos = 0;
    }
    this.written++;
  }
}
