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

/** A validated descriptor chain: `readableCount` device-readable segments, then writable ones. */
export class DescriptorChain {
  constructor(
    /** The head descriptor index: what goes into the used ring. */
    readonly headIndex: number,
    private readonly win: GuestWindow,
    /** Window offsets and lengths of the non-empty segments, readable first. */
    readonly offsets: number[],
    readonly lengths: number[],
    readonly readableCount: number,
    readonly readableBytes: number,
    readonly writableBytes: number,
  ) {}

  /** A cursor over the device-readable bytes. */
  reader(): ChainReader {
    return new ChainReader(this.win, this.offsets, this.lengths, 0, this.readableCount, this.readableBytes);
  }

  /** A cursor over the device-writable bytes. */
  writer(): ChainWriter {
    return new ChainWriter(this.win, this.offsets, this.lengths, this.readableCount, this.offsets.length, this.writableBytes);
  }
}

/** Sequential access to one side of a chain. Regions are validated window ranges. */
class ChainCursor {
  protected seg: number;
  protected segPos = 0;
  /** Bytes left on this side of the chain. */
  remaining: number;

  constructor(
    protected readonly win: GuestWindow,
    protected readonly offsets: number[],
    protected readonly lengths: number[],
    first: number,
    protected readonly end: number,
    total: number,
  ) {
    this.seg = first;
    this.remaining = total;
  }

  /**
   * Consumes `n` bytes (≤ remaining) and returns them as window ranges [offset, length, ...], for
   * services that move data straight between their backing and the window.
   */
  regions(n: number): number[] {
    if (n > this.remaining) throw new Error(`regions(${n}) beyond ${this.remaining} remaining`);
    const out: number[] = [];
    while (n > 0) {
      const avail = this.lengths[this.seg]! - this.segPos;
      const take = Math.min(avail, n);
      out.push(this.offsets[this.seg]! + this.segPos, take);
      this.advance(take);
      n -= take;
    }
    return out;
  }

  /** Skips `n` bytes (≤ remaining). */
  skip(n: number): void {
    this.regions(n);
  }

  protected advance(take: number): void {
    this.segPos += take;
    this.remaining -= take;
    if (this.segPos === this.lengths[this.seg]) {
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

  /** Copies the next `n` bytes (n ≤ remaining, ≤ dst.length) into private memory the caller reuses. */
  readInto(dst: Uint8Array, n: number): void {
    if (n > this.remaining) throw new Error(`read(${n}) beyond ${this.remaining} remaining`);
    let pos = 0;
    while (pos < n) {
      const take = Math.min(this.lengths[this.seg]! - this.segPos, n - pos);
      this.win.copyOutInto(this.offsets[this.seg]! + this.segPos, take, dst, pos);
      pos += take;
      this.advance(take);
    }
  }
}

/** Writes into the device-writable part of a chain; `written` becomes the used length. */
export class ChainWriter extends ChainCursor {
  /** Bytes written so far. */
  written = 0;

  /** Writes `data` (length ≤ remaining). */
  write(data: Uint8Array): void {
    if (data.length > this.remaining) throw new Error(`write(${data.length}) beyond ${this.remaining} remaining`);
    let pos = 0;
    while (pos < data.length) {
      const take = Math.min(this.lengths[this.seg]! - this.segPos, data.length - pos);
      this.win.copyIn(this.offsets[this.seg]! + this.segPos, data.subarray(pos, pos + take));
      pos += take;
      this.advance(take);
    }
    this.written += data.length;
  }

  /** Reserves `n` bytes as window ranges that a service fills directly; counts them as written. */
  override regions(n: number): number[] {
    const r = super.regions(n);
    this.written += n;
    return r;
  }
}

/** Collects a chain's segments while it is walked, enforcing §2.7.4.2 and §2.7.5 per descriptor. */
class ChainBuilder {
  private readonly offsets: number[] = [];
  private readonly lengths: number[] = [];
  private readableCount = 0;
  private readableBytes = 0;
  private writableBytes = 0;
  private sawWritable = false;

  constructor(
    readonly head: number,
    private readonly win: GuestWindow,
  ) {}

  add(addrLo: number, addrHi: number, len: number, flags: number): void {
    const head = this.head;
    if (flags & VIRTQ_DESC_F_WRITE) this.sawWritable = true;
    else if (this.sawWritable) {
      throw new GuestProtocolError('READABLE_AFTER_WRITABLE', 'virtio §2.7.4.2', `chain ${head}: device-readable descriptor after a writable one`);
    }
    if (len === 0) return; // carries nothing; it still counted against the TTL
    const off = this.win.guestRange(addrLo, addrHi, len, 'buffer', head);
    if (this.readableBytes + this.writableBytes + len > MAX_CHAIN_BYTES) {
      throw new GuestProtocolError('CHAIN_TOO_LONG', 'virtio §2.7.5', `chain ${head}: more than 2^32 bytes`);
    }
    this.offsets.push(off);
    this.lengths.push(len);
    if (this.sawWritable) this.writableBytes += len;
    else {
      this.readableCount++;
      this.readableBytes += len;
    }
  }

  build(): DescriptorChain {
    return new DescriptorChain(this.head, this.win, this.offsets, this.lengths, this.readableCount, this.readableBytes, this.writableBytes);
  }
}

/** The device side of one live split virtqueue. */
export class SplitQueue {
  /** Next available-ring entry to consume (free-running u16). */
  nextAvail = 0;
  /** Next used-ring entry to fill (free-running u16). */
  nextUsed = 0;
  /** Chains handed out and not yet returned. */
  inFlightCount = 0;
  private availIdx = 0;
  private signalledUsed = 0;
  private publishedUsed = 0;
  private readonly inFlight: Uint8Array;
  private readonly descScratch = new Uint8Array(DESC_SIZE);
  private readonly descView = new DataView(this.descScratch.buffer);

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
    this.inFlight = new Uint8Array(size);
  }

  /**
   * Returns the next validated chain, or null when the ring is empty. Throws GuestProtocolError on a
   * queue-level violation.
   */
  pop(): DescriptorChain | null {
    if (!this.hasAvailable()) return null;
    const head = this.win.u16(this.availRing + 4 + 2 * (this.nextAvail & (this.size - 1)));
    if (head >= this.size) {
      throw new GuestProtocolError('HEAD_OUT_OF_RANGE', 'virtio §2.7.6', `avail ring head ${head} ≥ queue size ${this.size}`);
    }
    if (this.inFlight[head]) {
      throw new GuestProtocolError('HEAD_IN_FLIGHT', 'virtio §2.7.13.2', `head ${head} made available again while in flight`);
    }
    const chain = this.walk(head);
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    this.inFlight[head] = 1;
    this.inFlightCount++;
    return chain;
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

  /**
   * Walks the chain at `head`. Each descriptor is copied once into `descScratch` and its fields are
   * parsed from that private copy (no object per descriptor: this is the per-request hot path).
   */
  private walk(head: number): DescriptorChain {
    const c = new ChainBuilder(head, this.win);
    const v = this.descView;
    let i = head;
    for (let ttl = this.size; ; ) {
      if (ttl-- === 0) {
        throw new GuestProtocolError('CHAIN_LOOP', 'virtio §2.7.5.2', `chain ${head}: more than ${this.size} descriptors (loop)`);
      }
      this.win.copyOutInto(this.descTable + i * DESC_SIZE, DESC_SIZE, this.descScratch, 0);
      const flags = v.getUint16(12, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        this.walkIndirect(c, { addrLo: v.getUint32(0, true), addrHi: v.getUint32(4, true), len: v.getUint32(8, true), flags });
        break;
      }
      c.add(v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), flags);
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      const next = v.getUint16(14, true);
      if (next >= this.size) {
        throw new GuestProtocolError('NEXT_OUT_OF_RANGE', 'virtio §2.7.5', `chain ${head}: next ${next} ≥ queue size ${this.size}`);
      }
      i = next;
    }
    return c.build();
  }

  /** §2.7.5.3: one level of indirection, the table fetched once, its chain bounded by its length. */
  private walkIndirect(c: ChainBuilder, d: { addrLo: number; addrHi: number; len: number; flags: number }): void {
    const head = c.head;
    if (!this.indirect) {
      throw new GuestProtocolError('INDIRECT_NOT_NEGOTIATED', 'virtio §2.7.5.3.1', `chain ${head}: INDIRECT without VIRTIO_F_RING_INDIRECT_DESC`);
    }
    if (d.flags & VIRTQ_DESC_F_NEXT) {
      throw new GuestProtocolError('INDIRECT_WITH_NEXT', 'virtio §2.7.5.3.1', `chain ${head}: INDIRECT and NEXT both set`);
    }
    if (d.len === 0 || d.len % DESC_SIZE !== 0 || d.len / DESC_SIZE > MAX_INDIRECT_DESCS) {
      throw new GuestProtocolError('INDIRECT_BAD_LEN', 'virtio §2.7.5.3.1', `chain ${head}: indirect table of ${d.len} bytes`);
    }
    const n = d.len / DESC_SIZE;
    const off = this.win.guestRange(d.addrLo, d.addrHi, d.len, 'indirect table', head);
    const table = this.win.copyOut(off, d.len); // one fetch of the whole table
    const v = new DataView(table.buffer);
    let j = 0;
    for (let ttl = n; ; ) {
      if (ttl-- === 0) {
        throw new GuestProtocolError('CHAIN_LOOP', 'virtio §2.7.5.3.1', `chain ${head}: indirect chain longer than its table (loop)`);
      }
      const flags = v.getUint16(j * 16 + 12, true);
      const next = v.getUint16(j * 16 + 14, true);
      if (flags & VIRTQ_DESC_F_INDIRECT) {
        throw new GuestProtocolError('NESTED_INDIRECT', 'virtio §2.7.5.3.1', `chain ${head}: INDIRECT inside an indirect table`);
      }
      c.add(v.getUint32(j * 16, true), v.getUint32(j * 16 + 4, true), v.getUint32(j * 16 + 8, true), flags);
      if (!(flags & VIRTQ_DESC_F_NEXT)) return;
      if (next >= n) {
        throw new GuestProtocolError('NEXT_OUT_OF_RANGE', 'virtio §2.7.5.3.1', `chain ${head}: indirect next ${next} ≥ table size ${n}`);
      }
      j = next;
    }
  }

  /** Returns a chain to the driver with `len` bytes written (visible after `publishUsed`). */
  pushUsed(chain: DescriptorChain, len: number): void {
    const head = chain.headIndex;
    if (!this.inFlight[head]) throw new Error(`pushUsed: head ${head} not in flight`);
    if (len > chain.writableBytes) throw new Error(`pushUsed: used length ${len} > writable ${chain.writableBytes}`);
    this.inFlight[head] = 0;
    this.inFlightCount--;
    const e = this.usedRing + 4 + 8 * (this.nextUsed & (this.size - 1));
    this.win.setU32(e, head);
    this.win.setU32(e + 4, len);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
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
