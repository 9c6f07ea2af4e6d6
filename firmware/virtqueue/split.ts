/**
 * Split virtqueue, device side (virtio 1.3 §2.7): descriptor table, available ring, used ring.
 *
 * `pop()` walks and validates a whole chain into a `DescriptorChain` (chain.ts) before the device sees
 * it. Each descriptor (and each indirect table) is fetched once into private memory and validated there.
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
import { DESC_SIZE, DescriptorChain, MAX_CHAIN_BYTES, MAX_INDIRECT_DESCS, MAX_QUEUE_SIZE } from './chain';
import type { QueueAddresses, Virtqueue } from './queue';

/** Sizes of the three areas of a split queue of `size` entries (§2.7). */
export function splitAreaSizes(size: number): { desc: number; avail: number; used: number } {
  return { desc: DESC_SIZE * size, avail: 6 + 2 * size, used: 6 + 8 * size };
}

/**
 * Validates a queue configuration (SET_VQUEUE) and returns the window offsets of its areas.
 * §2.7: size is a power of two ≤ max; descriptor table 16-byte, available ring 2-byte and used ring
 * 4-byte aligned; every area inside the pool.
 */
export function validateSplitConfig(win: GuestWindow, size: number, maxSize: number, a: QueueAddresses) {
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

/** The device side of one live split virtqueue. */
export class SplitQueue implements Virtqueue {
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
