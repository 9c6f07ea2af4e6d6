/**
 * Packed virtqueue, device side (virtio 1.3 §2.8): one descriptor ring that both sides write, a driver
 * event suppression structure (the device reads it) and a device event suppression structure (the
 * device writes it). Negotiated with VIRTIO_F_RING_PACKED; queues of any size 1..max (not only powers
 * of two).
 *
 * Reading what the driver made available (every field read once, into private memory):
 * - `scan()` reads the one word holding a descriptor's buffer id and flags, for the descriptors after
 *   the last one consumed, while they are available (§2.8.1: AVAIL equal to our copy of the Driver Ring
 *   Wrap Counter, USED its inverse) and the driver still owns them (at most `size` minus the slots of
 *   buffers in flight); then one fence, so a batch costs one barrier, as the split ring's avail idx does.
 *   Those words are kept in `seenWords`: the flags and the id that decide a chain are never read again.
 * - `pop()` takes a chain's extent from the kept flags (§2.8.6: NEXT on all but the last descriptor, the
 *   Buffer ID in the last), reads each descriptor's address and length once, copies an indirect table
 *   once (§2.8.7), and validates everything before the device sees the chain.
 * - `pushUsed()` writes one used descriptor per buffer at the device's position and skips the rest of
 *   that buffer's descriptors (§2.8.6), so buffers may complete in any order (§2.8: "used device
 *   descriptors are written in the order in which their processing is complete"). The flags of the first
 *   used descriptor of a batch are written last, by `publishUsed()`, after a fence (§2.8.9): the driver
 *   never sees a used descriptor whose id or length is not there yet.
 *
 * Violations (docs/packed-ring.md lists them with their spec rules) throw GuestProtocolError: the
 * transport marks the device DEVICE_NEEDS_RESET. Every loop is bounded by the queue size or
 * MAX_INDIRECT_DESCS, never by a value the driver wrote.
 */
import { GuestProtocolError } from '../errors';
import {
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  RING_EVENT_WRAP,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from '../virtio';
import type { GuestWindow } from '../window/window';
import { DESC_SIZE, DescriptorChain, MAX_CHAIN_BYTES, MAX_INDIRECT_DESCS, MAX_QUEUE_SIZE } from './chain';
import type { QueueAddresses, Virtqueue } from './queue';

/** §2.8: packed virtqueues have at most 2^15 entries (an event offset has 15 bits). */
export const MAX_PACKED_QUEUE_SIZE = 32768;

/** Bytes of each event suppression structure (`pvirtq_event_suppress`, §2.8.14). */
const EVENT_SUPPRESS_SIZE = 4;

/**
 * Flag bits where the per-descriptor paths test them: in the descriptor's third word, whose low half is the
 * buffer id and high half the flags (int32 values, as the bitwise operators give them).
 */
const AVAIL_HI = VIRTQ_DESC_F_AVAIL << 16;
const USED_HI = VIRTQ_DESC_F_USED << 16;
const AVAIL_USED_HI = AVAIL_HI | USED_HI;
const NEXT_HI = VIRTQ_DESC_F_NEXT << 16;
const WRITE_HI = VIRTQ_DESC_F_WRITE << 16;
/**
 * The flags a single descriptor's walk depends on (NEXT, WRITE, INDIRECT: bits 0–2): with its length,
 * `len * 8 + (flags & MEMO_FLAGS)`, one exact number, is the second half of the memo (DescriptorChain.memo1).
 */
const MEMO_FLAGS = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_INDIRECT;

/** Sizes of the three areas of a packed queue of `size` entries (§2.8.10.1). */
export function packedAreaSizes(size: number): { desc: number; driver: number; device: number } {
  return { desc: DESC_SIZE * size, driver: EVENT_SUPPRESS_SIZE, device: EVENT_SUPPRESS_SIZE };
}

/**
 * Validates a packed queue configuration (SET_VQUEUE: desc = descriptor ring, driver = driver event
 * suppression, device = device event suppression) and returns the window offsets of its areas.
 * §2.8: size 1..max, any value (§2.8.10.1: it need not be a power of 2); §2.8.10.1: the descriptor ring
 * 16-byte aligned, each event suppression structure 4-byte aligned; every area inside the pool.
 */
export function validatePackedConfig(win: GuestWindow, size: number, maxSize: number, a: QueueAddresses) {
  const max = Math.min(maxSize, MAX_PACKED_QUEUE_SIZE);
  if (!(size >= 1 && size <= max)) throw new GuestProtocolError('QUEUE_SIZE', 'virtio §2.8', `packed queue size ${size} outside 1..${max}`);
  const s = packedAreaSizes(size);
  const desc = win.guestRange(a.descLo, a.descHi, s.desc, 'descriptor ring');
  const driver = win.guestRange(a.driverLo, a.driverHi, s.driver, 'driver event suppression');
  const device = win.guestRange(a.deviceLo, a.deviceHi, s.device, 'device event suppression');
  if (desc % 16 || driver % 4 || device % 4) {
    throw new GuestProtocolError('QUEUE_ALIGN', 'virtio §2.8.10.1', `misaligned packed rings desc=0x${desc.toString(16)} driver=0x${driver.toString(16)} device=0x${device.toString(16)}`);
  }
  return { desc, driver, device };
}

/** The device side of one live packed virtqueue. */
export class PackedQueue implements Virtqueue {
  /** Position of the next descriptor to consume, and our copy of the Driver Ring Wrap Counter (§2.8.1). */
  nextAvail = 0;
  availWrap = 1;
  /** Position of the next used descriptor to write, and the Device Ring Wrap Counter (§2.8.1). */
  nextUsed = 0;
  usedWrap = 1;
  /** A used descriptor's AVAIL and USED bits for `usedWrap`, in its id/flags word. */
  private usedBits = AVAIL_USED_HI;
  /** Buffers handed out by `pop()` and not yet returned by `pushUsed()` (counted for stats, off the per-chain path). */
  get inFlightCount(): number {
    let n = 0;
    for (let id = 0; id < this.size; id++) if (this.idSlots[id] !== 0) n++;
    return n;
  }
  /**
   * Ring slots the buffers in flight took (their chains' descriptors): the driver owns the other
   * `size - inFlightDescs`. The distance from the used position to the available one, which is at most
   * the ring size, so the two wrap counters tell which lap each is on.
   */
  private get inFlightDescs(): number {
    const d = this.nextAvail - this.nextUsed;
    return this.availWrap === this.usedWrap ? d : d + this.size;
  }
  /** Descriptors from `nextAvail` on whose flags `scan()` read as available, before its last fence. */
  private seen = 0;
  /**
   * The words with the buffer id (low half) and flags (high half) that `scan()` read, at the index they
   * have in the ring's word view (4 × position + 3; the other entries unused).
   */
  private readonly seenWords: Uint32Array;
  /** Per buffer id: the ring slots its chain took while it is in flight (0: not in flight). */
  private readonly idSlots: Uint16Array;
  /** One reusable chain per buffer id (created on first use). */
  private readonly chains: (DescriptorChain | undefined)[];
  /** The three areas as word views (validated at SET_VQUEUE; GuestWindow.areaWords). */
  private readonly ring: Uint32Array;
  /** The descriptor ring as doubles, two per descriptor (the first: its address), for the memo test of `pop()`. */
  private readonly ringDoubles: Float64Array;
  /** Scratch for turning a walked descriptor's address words into its memo double. */
  private readonly addrDouble = new Float64Array(1);
  private readonly addrWords = new Uint32Array(this.addrDouble.buffer);
  private readonly driverEvent: Uint32Array;
  private readonly deviceEvent: Uint32Array;
  /** The first used descriptor of the batch not yet published: its word index and id/flags word (-1: none). */
  private pendingAt = -1;
  private pendingWord = 0;
  /** Where the used position and wrap counter were at the last `publishUsed()` (EVENT_IDX arithmetic). */
  private signalledUsed = 0;
  private signalledWrap = 1;
  /** The pool bounds (GuestWindow.guestRange's check, inline on the per-descriptor path). */
  private readonly poolStart: number;
  private readonly winSize: number;

  constructor(
    private readonly win: GuestWindow,
    /** Queue index within its device. */
    readonly index: number,
    /** Number of descriptors in the ring (validated: 1..max). */
    readonly size: number,
    /** Window offsets of the descriptor ring and the driver and device event suppression structures (validated). */
    readonly descRing: number,
    readonly driverArea: number,
    readonly deviceArea: number,
    private readonly eventIdx: boolean,
    private readonly indirect: boolean,
    private readonly fence: () => void,
  ) {
    if (size > MAX_QUEUE_SIZE) throw new Error(`queue size ${size} > ${MAX_QUEUE_SIZE}`);
    this.seenWords = new Uint32Array(4 * size);
    this.idSlots = new Uint16Array(size);
    this.chains = new Array<DescriptorChain | undefined>(size);
    this.ring = win.areaWords(descRing, DESC_SIZE * size);
    this.ringDoubles = win.areaDoubles(descRing, DESC_SIZE * size);
    this.driverEvent = win.areaWords(driverArea, EVENT_SUPPRESS_SIZE);
    this.deviceEvent = win.areaWords(deviceArea, EVENT_SUPPRESS_SIZE);
    this.poolStart = win.guestStart;
    this.winSize = win.size;
    // §2.8.10: the device event suppression structure is the device's to write. Notifications stay enabled
    // (we never ask the driver to stop notifying); with EVENT_IDX, for the first descriptor (0, wrap 1).
    this.deviceEvent[0] = this.eventIdx ? availEventWord(0, 1) : RING_EVENT_FLAGS_ENABLE << 16;
  }

  /** True when a `pop()` would return a chain (or throw): the flags it will use are already read. */
  hasAvailable(): boolean {
    return this.seen > 0 || this.scan();
  }

  /**
   * Reads the id/flags word of the descriptors after those already seen, while they are available and
   * the driver owns them, into `seenWords`, and fences once when it found any (§2.8.21.1: the driver
   * writes a descriptor's flags after its other fields, so those are read after the flags). Returns true
   * when descriptors were found. Throws when the driver made available a descriptor the device still holds.
   */
  private scan(): boolean {
    const size = this.size;
    const ring = this.ring;
    const sw = this.seenWords;
    const first = this.seen;
    const free = size - this.inFlightDescs;
    let k = first;
    let p = this.nextAvail + k;
    let want = this.availWrap ? AVAIL_HI : USED_HI; // an available descriptor's AVAIL/USED bits, in its id/flags word
    if (p >= size) {
      p -= size;
      want ^= AVAIL_USED_HI;
    }
    let q = (p << 2) + 3; // the id/flags word of descriptor p, stepped by 4
    const end = (size << 2) + 3;
    for (; k < free; k++) {
      const w = ring[q]!;
      if ((w & AVAIL_USED_HI) !== want) {
        // Not available. A slot the driver owns holds its old descriptor or our used one, both with AVAIL
        // of the other wrap; AVAIL and USED both of this wrap is neither available nor used (§2.8.1).
        if ((w & AVAIL_USED_HI) === (want === AVAIL_HI ? AVAIL_USED_HI : 0)) {
          throw new GuestProtocolError('DESC_FLAGS_WRAP', 'virtio §2.8.1', `descriptor ${q >>> 2}: AVAIL and USED both ${want === AVAIL_HI ? 1 : 0} (the Driver Ring Wrap Counter): neither available nor used`);
        }
        break;
      }
      sw[q] = w;
      if ((q += 4) === end) {
        q = 3;
        want ^= AVAIL_USED_HI;
      }
    }
    // Every slot the driver owns is seen: the next one belongs to a buffer in flight, which the driver may
    // not reuse before it sees it used (§2.8.16). Available there means the driver's head overtook ours.
    if (k === free && (ring[q]! & AVAIL_USED_HI) === want) {
      throw new GuestProtocolError('RING_OVERRUN', 'virtio §2.8.16', `descriptor ${q >>> 2} made available while the device still holds it (${this.inFlightDescs} of ${size} descriptors in flight)`);
    }
    if (k === first) return k > 0;
    this.seen = k;
    this.fence(); // the descriptors' other fields only after their flags (weakly ordered CPUs)
    return true;
  }

  /**
   * Returns the next validated chain, or null when the driver has made nothing more available. Throws
   * GuestProtocolError on a queue-level violation.
   */
  pop(): DescriptorChain | null {
    if (this.seen === 0 && !this.scan()) return null;
    const size = this.size;
    const head = this.nextAvail;
    const sw = this.seenWords;
    // The chain's extent, from the flags the scan kept: NEXT on all but the last descriptor (§2.8.6).
    let n = 1;
    let last = head;
    let w = sw[(head << 2) + 3]!;
    while (w & NEXT_HI) {
      if (n === this.seen) {
        this.scan(); // the rest of a list the driver made available before its head (a later fence)
        if (n === this.seen) this.cut(head, n);
      }
      last = last + 1 === size ? 0 : last + 1;
      w = sw[(last << 2) + 3]!;
      n++;
    }
    // §2.8.6: the Buffer ID is in the last descriptor. Bulkhead keeps per-buffer state for at most `size`
    // ids: the most buffers that can be outstanding (§2.8.10.1), and what Linux and the spec's own
    // example driver (§2.8.21.1) allocate.
    const id = w & 0xffff;
    if (id >= size) throw new GuestProtocolError('BUFFER_ID_OUT_OF_RANGE', 'virtio §2.8.13', `buffer id ${id} (descriptor ${last}) ≥ queue size ${size}`);
    if (this.idSlots[id] !== 0) throw new GuestProtocolError('BUFFER_ID_IN_FLIGHT', 'virtio §2.8.21.1', `buffer id ${id} (descriptor ${last}) made available again while in flight`);
    let c = this.chains[id];
    if (!c) {
      c = new DescriptorChain(id, this.win);
      this.chains[id] = c;
    }
    // One direct descriptor with the address, length and flags this id's chain was last walked from
    // (DescriptorChain.memo0: a driver re-posting its buffers) gives that chain again; else walk. The
    // walk of such a descriptor depends on nothing else, and reads the descriptor itself.
    if (n !== 1 || this.ringDoubles[head << 1] !== c.memo0 || this.ring[(head << 2) + 2]! * 8 + ((w >>> 16) & MEMO_FLAGS) !== c.memo1) this.walk(c, head, n);
    let next = head + n;
    if (next >= size) {
      next -= size;
      this.availWrap ^= 1;
    }
    this.nextAvail = next;
    this.seen -= n;
    this.idSlots[id] = n;
    return c;
  }

  /** The list from `head` has NEXT on its descriptor n-1 but descriptor n is not available: say why. */
  private cut(head: number, n: number): never {
    const free = this.size - this.inFlightDescs;
    if (n === this.size) {
      throw new GuestProtocolError('CHAIN_TOO_LONG', 'virtio §2.8.17', `descriptor ${head}: NEXT on all ${n} descriptors of the ring (a list longer than the queue size)`);
    }
    if (n === free) {
      throw new GuestProtocolError('RING_OVERRUN', 'virtio §2.8.17', `descriptor ${head}: a list of more than the ${free} descriptors the driver owns (${this.inFlightDescs} in flight)`);
    }
    const p = (head + n) % this.size;
    throw new GuestProtocolError('CHAIN_INCOMPLETE', 'virtio §2.8.17', `descriptor ${head}: NEXT on descriptor ${(p + this.size - 1) % this.size} but descriptor ${p} is not available (flags 0x${(this.ring[(p << 2) + 3]! >>> 16).toString(16)}): a list's first descriptor goes last`);
  }

  /**
   * Walks the `n` descriptors from `head` (the flags and id from `seenWords`; address and length read
   * once each, here) into chain `c`; an INDIRECT descriptor's table is copied once and walked in order.
   * §2.8.17 (readable before writable), §2.8.19 (indirect rules), the pool bounds and the 2^32 total are
   * enforced before a segment is added.
   */
  private walk(c: DescriptorChain, head: number, n: number): void {
    const size = this.size;
    const ring = this.ring;
    const sw = this.seenWords;
    const offs = c.segOffsets;
    const lens = c.segLengths;
    const id = c.headIndex;
    const poolStart = this.poolStart;
    const winSize = this.winSize;
    let segments = 0;
    let readableCount = 0;
    let readableBytes = 0;
    let writableBytes = 0;
    let sawWritable = false;
    let table: Uint32Array | null = null; // the private copy of an indirect table, once one was met
    let tableLen = 0;
    let t = 0;
    let j = 0;
    let p = head;
    let addrLo = 0;
    let addrHi = 0;
    let len = 0;
    let flags = 0;
    for (;;) {
      if (table === null) {
        if (j === n) break;
        const at = p << 2;
        flags = sw[at + 3]! >>> 16;
        addrLo = ring[at]!;
        addrHi = ring[at + 1]!;
        len = ring[at + 2]!;
        j++;
        p = p + 1 === size ? 0 : p + 1;
        if (flags & VIRTQ_DESC_F_INDIRECT) {
          table = this.indirectTable(id, n, flags, addrLo, addrHi, len);
          tableLen = len / DESC_SIZE;
          continue;
        }
      } else {
        if (t === tableLen) break;
        const at = t << 2;
        addrLo = table[at]!;
        addrHi = table[at + 1]!;
        len = table[at + 2]!;
        flags = table[at + 3]! >>> 16;
        t++;
        // §2.8.7: WRITE is the only valid flag in a table (the id and the other flags are ignored); a
        // nested table is refused outright, as in the split ring (§2.8.19: the driver MUST NOT set it).
        if (flags & VIRTQ_DESC_F_INDIRECT) throw new GuestProtocolError('NESTED_INDIRECT', 'virtio §2.8.19', `buffer ${id}: INDIRECT inside an indirect table`);
      }
      // The per-descriptor checks are the split walk's (SplitQueue.walk); both keep them inline, on locals,
      // because a call per descriptor is a measurable share of a request in QuickJS.
      if (flags & VIRTQ_DESC_F_WRITE) sawWritable = true;
      else if (sawWritable) {
        throw new GuestProtocolError('READABLE_AFTER_WRITABLE', 'virtio §2.8.17', `buffer ${id}: device-readable descriptor after a writable one`);
      }
      if (len !== 0) {
        // GuestWindow.guestRange's check inline; it builds and throws the error when the check fails.
        if (addrHi !== 0 || addrLo < poolStart || addrLo + len > winSize) this.win.guestRange(addrLo, addrHi, len, 'buffer', id);
        if (readableBytes + writableBytes + len > MAX_CHAIN_BYTES) {
          throw new GuestProtocolError('CHAIN_TOO_LONG', 'virtio §2.7.5', `buffer ${id}: more than 2^32 bytes`);
        }
        offs[segments] = addrLo;
        lens[segments] = len;
        segments++;
        if (sawWritable) writableBytes += len;
        else {
          readableCount++;
          readableBytes += len;
        }
      } // an empty descriptor carries nothing
    }
    if (n === 1 && table === null) {
      // A single direct descriptor (still in the locals): remember it as the memo test of pop() reads it.
      // A NaN pattern never hits; ±0 aliases only the addresses of an empty descriptor, which the walk ignores.
      const aw = this.addrWords;
      aw[0] = addrLo;
      aw[1] = addrHi;
      c.memo0 = this.addrDouble[0]!;
      c.memo1 = len * 8 + (flags & MEMO_FLAGS); // as pop()'s memo test computes it
    } else c.memo0 = NaN;
    c.segments = segments;
    c.readableCount = readableCount;
    c.readableBytes = readableBytes;
    c.writableBytes = writableBytes;
  }

  /** §2.8.7, §2.8.19: checks an INDIRECT descriptor of a list of `n` and returns the private copy of its table (one fetch). */
  private indirectTable(id: number, n: number, flags: number, addrLo: number, addrHi: number, len: number): Uint32Array {
    if (!this.indirect) {
      throw new GuestProtocolError('INDIRECT_NOT_NEGOTIATED', 'virtio §2.8.19', `buffer ${id}: INDIRECT without VIRTIO_F_RING_INDIRECT_DESC`);
    }
    // §2.8.19: an indirect descriptor is never part of a list linked by NEXT (as its head or later).
    if (flags & VIRTQ_DESC_F_NEXT) throw new GuestProtocolError('INDIRECT_WITH_NEXT', 'virtio §2.8.19', `buffer ${id}: INDIRECT and NEXT both set`);
    if (n > 1) throw new GuestProtocolError('INDIRECT_IN_CHAIN', 'virtio §2.8.19', `buffer ${id}: INDIRECT descriptor at the end of a list of ${n}`);
    if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > MAX_INDIRECT_DESCS) {
      throw new GuestProtocolError('INDIRECT_BAD_LEN', 'virtio §2.8.7', `buffer ${id}: indirect table of ${len} bytes`);
    }
    const off = this.win.guestRange(addrLo, addrHi, len, 'indirect table', id);
    return new Uint32Array(this.win.copyOut(off, len).buffer); // a fresh copy: offset 0, whole words
  }

  /**
   * Returns a buffer to the driver with `len` bytes written: one used descriptor at the device's position
   * (id, length, flags), then the position skips the buffer's other descriptors (§2.8.6). Visible after
   * `publishUsed`.
   */
  pushUsed(chain: DescriptorChain, len: number): void {
    const id = chain.headIndex;
    const idSlots = this.idSlots;
    const n = idSlots[id]!;
    if (n === 0) throw new Error(`pushUsed: buffer ${id} not in flight`);
    if (len > chain.writableBytes) throw new Error(`pushUsed: used length ${len} > writable ${chain.writableBytes}`);
    idSlots[id] = 0;
    const u = this.nextUsed;
    const at = (u << 2) + 2;
    const ring = this.ring;
    ring[at] = len; // §2.8.4: Element Length of a used descriptor (Element Address is unused)
    // §2.8.1: AVAIL and USED both equal to the Device Ring Wrap Counter; §2.8.3: WRITE when data was written.
    const word = id | this.usedBits | (len !== 0 ? WRITE_HI : 0);
    if (this.pendingAt < 0) {
      this.pendingAt = at + 1; // the batch's first used descriptor: its flags go last (publishUsed)
      this.pendingWord = word;
    } else ring[at + 1] = word;
    let next = u + n;
    if (next >= this.size) {
      next -= this.size;
      this.usedWrap ^= 1;
      this.usedBits ^= AVAIL_USED_HI;
    }
    this.nextUsed = next;
  }

  /**
   * Publishes the used descriptors written since the last call (the first one's flags, after a fence)
   * and says whether the driver wants a used buffer notification for them (§2.8.10, the driver event
   * suppression structure; RING_EVENT_FLAGS_DESC only with EVENT_IDX). A structure the driver filled
   * with a reserved or out-of-range value is a violation.
   */
  publishUsed(): boolean {
    const at = this.pendingAt;
    if (at < 0) return false;
    this.fence(); // the used descriptors' lengths and ids (and the batch's other flags) before the first flags
    this.ring[at] = this.pendingWord;
    this.pendingAt = -1;
    this.fence(); // the flags before reading the driver's event suppression
    const ev = this.driverEvent[0]!; // off_wrap (low half) and flags (high half), read once
    const mode = (ev >>> 16) & 3; // desc_event_flags; the 14 reserved bits are ignored
    const now = this.nextUsed;
    const nowWrap = this.usedWrap;
    let notify: boolean;
    if (mode === RING_EVENT_FLAGS_ENABLE) notify = true;
    else if (mode === RING_EVENT_FLAGS_DISABLE) notify = false;
    else notify = this.usedEventDue(ev, mode, now, nowWrap);
    this.signalledUsed = now;
    this.signalledWrap = nowWrap;
    return notify;
  }

  /**
   * RING_EVENT_FLAGS_DESC (§2.8.10): notify when the descriptor at the driver's offset and wrap counter
   * was among those used since the last `publishUsed()`. Positions are taken into our wrap's frame (an
   * offset of the other wrap is one ring earlier), then compared as vring_need_event compares indices.
   */
  private usedEventDue(ev: number, mode: number, now: number, nowWrap: number): boolean {
    const size = this.size;
    if (mode !== RING_EVENT_FLAGS_DESC) throw new GuestProtocolError('EVENT_FLAGS_RESERVED', 'virtio §2.8.14', `driver event suppression flags ${mode} (reserved)`);
    if (!this.eventIdx) throw new GuestProtocolError('EVENT_FLAGS_DESC', 'virtio §2.8.10', 'driver event suppression RING_EVENT_FLAGS_DESC without VIRTIO_F_RING_EVENT_IDX');
    const off = ev & 0x7fff;
    if (off >= size) throw new GuestProtocolError('EVENT_OFF_OUT_OF_RANGE', 'virtio §2.8.10', `driver event offset ${off} ≥ queue size ${size}`);
    const event = off - ((ev & RING_EVENT_WRAP ? 1 : 0) !== nowWrap ? size : 0);
    const old = this.signalledUsed - (this.signalledWrap !== nowWrap ? size : 0);
    return ((now - event - 1) & 0xffff) < ((now - old) & 0xffff);
  }

  /**
   * With EVENT_IDX, asks the driver to notify us when it makes the descriptor at `nextAvail` (our wrap
   * counter) available (RING_EVENT_FLAGS_DESC, §2.8.10), and returns true if more buffers arrived meanwhile.
   */
  armAvailEvent(): boolean {
    if (this.eventIdx) {
      this.deviceEvent[0] = availEventWord(this.nextAvail, this.availWrap);
      this.fence();
    }
    return this.hasAvailable();
  }
}

/** The device event suppression word asking for a notification at descriptor `pos` of wrap `wrap`. */
function availEventWord(pos: number, wrap: number): number {
  return (pos | (wrap ? RING_EVENT_WRAP : 0) | (RING_EVENT_FLAGS_DESC << 16)) >>> 0;
}
