/**
 * Split virtqueue, device side (virtio 1.3 §2.7).
 *
 * The device model never sees a raw descriptor: `pop()` walks and validates a whole chain (cloud-
 * hypervisor style: nothing is moved before the chain is known to be good) and hands out a
 * `DescriptorChain` with a reader over its device-readable part and a writer over its writable part.
 * Each descriptor (and each indirect table) is fetched once into private memory and validated there.
 * Every loop is bounded by the queue size or MAX_INDIRECT_DESCS, never by a length the guest wrote.
 * A violation throws GuestProtocolError: the transport sets DEVICE_NEEDS_RESET for the device.
 */
import { GuestProtocolError } from '../errors';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from '../virtio';
import type { GuestWindow } from '../window/window';

/** Largest queue any Bulkhead device offers (the spec allows 32768). */
export const MAX_QUEUE_SIZE = 1024;
/** Largest indirect table we accept (Linux never builds more than the queue size). */
export const MAX_INDIRECT_DESCS = 1024;
/** §2.7.5: the total length of a chain's buffers must not exceed 2^32. */
export const MAX_CHAIN_BYTES = 2 ** 32;

const DESC_SIZE = 16;

/** Ring addresses as the frontend gave them: 64-bit values in u32 halves. */
export interface QueueAddresses {
  descLo: number;
  descHi: number;
  driverLo: number;
  driverHi: number;
  deviceLo: number;
  deviceHi: number;
}

/** Sizes of the three areas of a split queue of `size` entries (§2.7). */
export function splitAreaSizes(size: number): { desc: number; avail: number; used: number } {
  return { desc: DESC_SIZE * size, avail: 6 + 2 * size, used: 6 + 8 * size };
}

/**
 * Validates a queue configuration (SET_VQUEUE) and returns the window offsets of its areas.
 * §2.7: size is a power of two ≤ max; descriptor table 16-byte, available ring 2-byte and used ring
 * 4-byte aligned; every area inside the pool.
 */
export function validateQueueConfig(win: GuestWindow, size: number, maxSize: number, a: QueueAddresses) {
  if (size < 1 || size > maxSize || (size & (size - 1)) !== 0) {
    throw new GuestProtocolError('QUEUE_SIZE', 'virtio §2.7', `queue size ${size} is not a power of two in 1..${maxSize}`);
  }
  const s = splitAreaSizes(size);
  const desc = win.guestRange(a.descLo, a.descHi, s.desc, 'descriptor table');
  const avail = win.guestRange(a.driverLo, a.driverHi, s.avail, 'available ring');
  const used = win.guestRange(a.deviceLo, a.deviceHi, s.used, 'used ring');
  if (desc % 16 || avail % 2 || used % 4) {
    throw new GuestProtocolError('QUEUE_ALIGN', 'virtio §2.7.2', `misaligned rings desc=0x${desc.toString(16)} avail=0x${avail.toString(16)} used=0x${used.toString(16)}`);
  }
  return { desc, avail, used };
}

/** Segments one chain can have at most: a direct walk (≤ MAX_QUEUE_SIZE) ending in an indirect table. */
export const MAX_CHAIN_SEGMENTS = MAX_QUEUE_SIZE + MAX_INDIRECT_DESCS;

/**
 * Window ranges a cursor's `take()` consumed: (offset, length) pairs at [0, 2 × count). One scratch
 * for the whole firmware (single-threaded); valid until the next `take()` on any cursor.
 */
export const CHAIN_RANGES = new Uint32Array(2 * MAX_CHAIN_SEGMENTS); // offsets < window ≤ 2^32, lengths u32

/**
 * A validated descriptor chain: `readableCount` device-readable segments, then writable ones.
 * The queue keeps one chain object per head index and refills it at each `pop()` of that head (a head
 * is unique while it is in flight, so a chain a device holds is never refilled under it); its reader
 * and writer are likewise one object each, rewound by `reader()` / `writer()`.
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
   * The head descriptor's 16 bytes as two doubles (SplitQueue's `descDoubles`: address; length and
   * flags/next) when the last walk of this head found exactly that one direct descriptor (no NEXT, no
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

  constructor(
    /** The head descriptor index: what goes into the used ring. */
    readonly headIndex: number,
    win: GuestWindow,
  ) {
    this.words = win.wordView();
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

/** The device side of one live split virtqueue. */
export class SplitQueue {
  /** Next available-ring entry to consume (free-running u16). */
  nextAvail = 0;
  /** Next used-ring entry to fill (free-running u16). */
  nextUsed = 0;
  /** Chains handed out and not yet returned: every `pop()` advances `nextAvail`, every `pushUsed()` `nextUsed`. */
  get inFlightCount(): number {
    return (this.nextAvail - this.nextUsed) & 0xffff;
  }
  private availIdx = 0;
  private signalledUsed = 0;
  private publishedUsed = 0;
  private readonly inFlight: Uint8Array;
  /** One reusable chain per head index (created on first use). */
  private readonly chains: (DescriptorChain | undefined)[];
  /** The three areas as word views (validated at SET_VQUEUE; GuestWindow.areaWords/areaHalves). */
  private readonly descWords: Uint32Array;
  private readonly availHalves: Uint16Array;
  private readonly usedWords: Uint32Array;
  /** The descriptor table as doubles, two per descriptor, for the memo test of `pop()` (DescriptorChain.memo0). */
  private readonly descDoubles: Float64Array;
  /** Scratch for turning a walked head descriptor's four words into its two memo doubles (one buffer). */
  private readonly headDoubles = new Float64Array(2);
  private readonly headWords = new Uint32Array(this.headDoubles.buffer);
  /** The pool bounds (GuestWindow.guestRange's check, inline on the per-descriptor path). */
  private readonly poolStart: number;
  private readonly winSize: number;

  constructor(
    private readonly win: GuestWindow,
    /** Queue index within its device. */
    readonly index: number,
    /** Number of entries (validated power of two). */
    readonly size: number,
    /** Window offsets of the descriptor table, available ring and used ring (validated). */
    readonly descTable: number,
    readonly availRing: number,
    readonly usedRing: number,
    private readonly eventIdx: boolean,
    private readonly indirect: boolean,
    private readonly fence: () => void,
  ) {
    if (size > MAX_QUEUE_SIZE) throw new Error(`queue size ${size} > ${MAX_QUEUE_SIZE}`);
    this.inFlight = new Uint8Array(size);
    this.chains = new Array<DescriptorChain | undefined>(size);
    this.descWords = win.areaWords(descTable, DESC_SIZE * size);
    this.descDoubles = win.areaDoubles(descTable, DESC_SIZE * size);
    this.availHalves = win.areaHalves(availRing, 6 + 2 * size);
    this.usedWords = win.areaWords(usedRing, 6 + 8 * size);
    this.poolStart = win.guestStart;
    this.winSize = win.size;
  }

  /**
   * Returns the next validated chain, or null when the ring is empty. Throws GuestProtocolError on a
   * queue-level violation. The per-chain path: the ring entry, the descriptors and the used element go
   * through the queue's own area views (no window call per access), and the walk is inline.
   */
  pop(): DescriptorChain | null {
    const nextAvail = this.nextAvail;
    if (this.availIdx === nextAvail && !this.hasAvailable()) return null;
    const size = this.size;
    const head = this.availHalves[2 + (nextAvail & (size - 1))]!;
    if (head >= size) {
      throw new GuestProtocolError('HEAD_OUT_OF_RANGE', 'virtio §2.7.6', `avail ring head ${head} ≥ queue size ${size}`);
    }
    const inFlight = this.inFlight;
    if (inFlight[head]) {
      throw new GuestProtocolError('HEAD_IN_FLIGHT', 'virtio §2.7.13.2', `head ${head} made available again while in flight`);
    }
    let c = this.chains[head];
    if (!c) {
      c = new DescriptorChain(head, this.win);
      this.chains[head] = c;
    }
    // The head descriptor's 16 bytes, read once as two doubles for the memo test (DescriptorChain.memo0).
    const dd = this.descDoubles;
    const d0 = dd[head << 1]!;
    const d1 = dd[(head << 1) + 1]!;
    // Unless it is the same single descriptor this head carried last time (the same checks would pass
    // with the same result, which the chain still holds), walk it.
    if (d0 !== c.memo0 || d1 !== c.memo1) this.walk(c, head);
    this.nextAvail = (nextAvail + 1) & 0xffff;
    inFlight[head] = 1;
    return c;
  }

  /**
   * The walk (the per-chain path when the memo misses): the chain at `head` into its chain object `c`.
   * Each descriptor is read once, word by word, into locals and its fields are parsed from them; an
   * indirect table is copied once and walked the same way (no object per descriptor or chain).
   * §2.7.4.2, §2.7.5, §2.7.5.3 and the pool bounds are enforced before a descriptor is added. The memo
   * test's read only chose to walk: the walk reads the head descriptor itself, and a memo holds what
   * this read validated.
   */
  private walk(c: DescriptorChain, head: number): void {
    const size = this.size;
    let src = this.descWords; // the descriptor table, then (after an INDIRECT descriptor) the private copy of the indirect table
    const h0 = head << 2;
    let addrLo = src[h0]!;
    let addrHi = src[h0 + 1]!;
    let len = src[h0 + 2]!;
    let fn = src[h0 + 3]!;
    const headFn = fn;
    const offs = c.segOffsets;
    const lens = c.segLengths;
    let segments = 0;
    let readableCount = 0;
    let readableBytes = 0;
    let writableBytes = 0;
    let sawWritable = false; // a writable descriptor (even an empty one) was seen: later readable ones are a violation
    const poolStart = this.poolStart;
    const winSize = this.winSize;
    let limit = size; // entries of `src`
    let inIndirect = false;
    // Each turn checks the descriptor in addrLo/addrHi/len/fn, then reads the next one (or the indirect
    // table's first) into them: every descriptor visited is read once.
    for (let ttl = limit; ; ) {
      if (ttl-- === 0) {
        if (inIndirect) throw new GuestProtocolError('CHAIN_LOOP', 'virtio §2.7.5.3.1', `chain ${head}: indirect chain longer than its table (loop)`);
        throw new GuestProtocolError('CHAIN_LOOP', 'virtio §2.7.5.2', `chain ${head}: more than ${limit} descriptors (loop)`);
      }
      const flags = fn & 0xffff;
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (inIndirect) throw new GuestProtocolError('NESTED_INDIRECT', 'virtio §2.7.5.3.1', `chain ${head}: INDIRECT inside an indirect table`);
        src = this.indirectTable(head, addrLo, addrHi, len, flags);
        limit = len / DESC_SIZE;
        ttl = limit;
        inIndirect = true;
        addrLo = src[0]!;
        addrHi = src[1]!;
        len = src[2]!;
        fn = src[3]!;
        continue;
      }
      if (flags & VIRTQ_DESC_F_WRITE) sawWritable = true;
      else if (sawWritable) {
        throw new GuestProtocolError('READABLE_AFTER_WRITABLE', 'virtio §2.7.4.2', `chain ${head}: device-readable descriptor after a writable one`);
      }
      if (len !== 0) {
        // GuestWindow.guestRange's check inline; it builds and throws the error when the check fails.
        if (addrHi !== 0 || addrLo < poolStart || addrLo + len > winSize) this.win.guestRange(addrLo, addrHi, len, 'buffer', head);
        if (readableBytes + writableBytes + len > MAX_CHAIN_BYTES) {
          throw new GuestProtocolError('CHAIN_TOO_LONG', 'virtio §2.7.5', `chain ${head}: more than 2^32 bytes`);
        }
        offs[segments] = addrLo;
        lens[segments] = len;
        segments++;
        if (sawWritable) writableBytes += len;
        else {
          readableCount++;
          readableBytes += len;
        }
      } // an empty descriptor carries nothing; it still counted against the TTL
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      const next = fn >>> 16;
      if (next >= limit) {
        if (inIndirect) throw new GuestProtocolError('NEXT_OUT_OF_RANGE', 'virtio §2.7.5.3.1', `chain ${head}: indirect next ${next} ≥ table size ${limit}`);
        throw new GuestProtocolError('NEXT_OUT_OF_RANGE', 'virtio §2.7.5', `chain ${head}: next ${next} ≥ queue size ${limit}`);
      }
      const at = next << 2;
      addrLo = src[at]!;
      addrHi = src[at + 1]!;
      len = src[at + 2]!;
      fn = src[at + 3]!;
    }
    // A single direct descriptor: remember its bytes (still in the locals: the walk made one turn) as
    // the memo test will read them, two doubles. A NaN pattern reads back as some NaN: never a hit.
    if ((headFn & (VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_INDIRECT)) === 0) {
      const hw = this.headWords;
      hw[0] = addrLo;
      hw[1] = addrHi;
      hw[2] = len;
      hw[3] = fn;
      c.memo0 = this.headDoubles[0]!;
      c.memo1 = this.headDoubles[1]!;
    } else c.memo0 = NaN;
    c.segments = segments;
    c.readableCount = readableCount;
    c.readableBytes = readableBytes;
    c.writableBytes = writableBytes;
  }

  /**
   * True when the driver has made buffers available that we have not popped. The index is fetched
   * once and cached, so the answer and the next `pop()` agree whatever the driver writes in between
   * (a driver flipping avail idx cannot make `pop()` return null after this said true).
   */
  hasAvailable(): boolean {
    if (this.availIdx !== this.nextAvail) return true;
    const idx = this.win.u16(this.availRing + 2);
    // §2.7.13.3 (and rust-vmm): the driver can never make more than `size` entries available.
    const ahead = (idx - this.nextAvail) & 0xffff;
    if (ahead > this.size) {
      throw new GuestProtocolError('AVAIL_IDX_JUMP', 'virtio §2.7.13.3', `avail idx ${idx} is ${ahead} ahead of ${this.nextAvail} (queue size ${this.size})`);
    }
    if (ahead === 0) return false;
    this.availIdx = idx;
    this.fence(); // read the ring entries only after the index (weakly ordered CPUs)
    return true;
  }

  /** §2.7.5.3: checks an INDIRECT descriptor and returns the private copy of its table (one fetch), as words. */
  private indirectTable(head: number, addrLo: number, addrHi: number, len: number, flags: number): Uint32Array {
    if (!this.indirect) {
      throw new GuestProtocolError('INDIRECT_NOT_NEGOTIATED', 'virtio §2.7.5.3.1', `chain ${head}: INDIRECT without VIRTIO_F_RING_INDIRECT_DESC`);
    }
    if (flags & VIRTQ_DESC_F_NEXT) {
      throw new GuestProtocolError('INDIRECT_WITH_NEXT', 'virtio §2.7.5.3.1', `chain ${head}: INDIRECT and NEXT both set`);
    }
    if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > MAX_INDIRECT_DESCS) {
      throw new GuestProtocolError('INDIRECT_BAD_LEN', 'virtio §2.7.5.3.1', `chain ${head}: indirect table of ${len} bytes`);
    }
    const off = this.win.guestRange(addrLo, addrHi, len, 'indirect table', head);
    return new Uint32Array(this.win.copyOut(off, len).buffer); // a fresh copy: offset 0, whole words
  }

  /** Returns a chain to the driver with `len` bytes written (visible after `publishUsed`). */
  pushUsed(chain: DescriptorChain, len: number): void {
    const head = chain.headIndex;
    const inFlight = this.inFlight;
    if (!inFlight[head]) throw new Error(`pushUsed: head ${head} not in flight`);
    if (len > chain.writableBytes) throw new Error(`pushUsed: used length ${len} > writable ${chain.writableBytes}`);
    inFlight[head] = 0;
    const nextUsed = this.nextUsed;
    const at = 1 + 2 * (nextUsed & (this.size - 1)); // used ring element (id, len): words 1 + 2k, 2 + 2k
    const w = this.usedWords;
    w[at] = head;
    w[at + 1] = len;
    this.nextUsed = (nextUsed + 1) & 0xffff;
  }

  /**
   * Publishes the used entries written since the last call and says whether the driver wants an
   * interrupt for them (§2.7.7: VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX).
   */
  publishUsed(): boolean {
    if (this.nextUsed === this.publishedUsed) return false;
    this.fence(); // used entries before used.idx
    this.win.setU16(this.usedRing + 2, this.nextUsed);
    this.publishedUsed = this.nextUsed;
    this.fence(); // used.idx before reading the driver's suppression fields
    const old = this.signalledUsed;
    const now = this.nextUsed;
    let notify: boolean;
    if (this.eventIdx) {
      const usedEvent = this.win.u16(this.availRing + 4 + 2 * this.size);
      notify = ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    } else {
      notify = (this.win.u16(this.availRing) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    this.signalledUsed = now;
    return notify;
  }

  /**
   * With EVENT_IDX, asks the driver to notify us when it makes entry `nextAvail` available
   * (§2.7.10) and returns true if more buffers arrived meanwhile (the caller keeps going).
   */
  armAvailEvent(): boolean {
    if (!this.eventIdx) return this.hasAvailable();
    this.win.setU16(this.usedRing + 4 + 8 * this.size, this.nextAvail);
    this.fence();
    return this.hasAvailable();
  }
}
