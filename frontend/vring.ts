/**
 * Driver side of a virtqueue, written into the window pool: what a guest's virtio_ring does, for the
 * TypeScript frontend model. `DriverQueue` is what the drivers use; `SplitDriverQueue` (below, virtio
 * 1.3 §2.7) and `PackedDriverQueue` (vring-packed.ts, §2.8) implement it. It trusts the device only as far
 * as a driver must (used ids are checked, so a broken backend gives an error rather than a corrupted model).
 */
import { splitAreaSizes } from '../firmware/virtqueue/split';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from '../firmware/virtio';
import type { PoolAllocator } from './pool';
import type { DriverTransport } from './transport';

/** A buffer in the window: offset and length. */
export interface Buf {
  off: number;
  len: number;
}

/** The driver side of one virtqueue, split or packed. */
export abstract class DriverQueue<T = unknown> {
  /** Notifications sent to the device for this queue, and ones suppressed by the device. */
  readonly counters = { notifies: 0, suppressed: 0, added: 0, used: 0 };
  /** Completed chains not yet collected: token → used length. */
  readonly done = new Map<T, number>();
  /** The pool allocation holding the rings. */
  protected readonly area: { off: number; len: number };

  constructor(
    protected readonly bus: DriverTransport,
    private readonly pool: PoolAllocator,
    readonly devNum: number,
    readonly index: number,
    readonly size: number,
    protected readonly eventIdx: boolean,
    /** Bytes of the ring areas, allocated page-aligned and zeroed. */
    ringBytes: number,
  ) {
    this.area = { off: pool.alloc(ringBytes, 4096), len: ringBytes };
    this.bus.port.bytes.fill(0, this.area.off, this.area.off + ringBytes);
  }

  /** Window offsets of the three areas, as SET_VQUEUE carries them (desc, driver, device). */
  abstract readonly areas: { desc: number; driver: number; device: number };
  /** Free descriptors. */
  abstract readonly numFree: number;
  /** Chains made available and not yet used. */
  abstract readonly inFlight: number;
  /** Makes a chain available: `out` device-readable buffers, then `inn` device-writable ones; false when there is no room. */
  abstract add(out: Buf[], inn: Buf[], token: T): boolean;
  /** Notifies the device of what `add` made available, if it asked to be notified. */
  abstract kick(): Promise<void>;
  /** Collects used chains into `done`; returns how many arrived. */
  abstract reap(): number;

  protected view(): DataView {
    const b = this.bus.port.bytes;
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /** Notifies the device of this queue (when `need`: EVENT_AVAIL, or the transport's notify register), counting sent and suppressed notifications. */
  protected async notify(need: boolean): Promise<void> {
    if (!need) {
      this.counters.suppressed++;
      return;
    }
    this.counters.notifies++;
    await this.bus.notify(this.devNum, this.index);
  }

  /** The (device, queue) a failure message names. */
  protected get where(): string {
    return `device ${this.devNum} queue ${this.index}`;
  }

  /** Waits until `token` completes; returns its used length. */
  async complete(token: T, timeoutMs = 5000): Promise<number> {
    await this.bus.until(
      () => {
        this.reap();
        return this.done.has(token);
      },
      timeoutMs,
      () => `${this.where}: request not completed within ${timeoutMs} ms`,
    );
    const len = this.done.get(token)!;
    this.done.delete(token);
    return len;
  }

  /** Returns the ring memory to the pool (after the device or queue was reset). */
  release(): void {
    this.pool.release(this.area.off, this.area.len);
  }
}

/** The driver side of a split virtqueue (§2.7): descriptor table, available ring, used ring on its own page. */
export class SplitDriverQueue<T = unknown> extends DriverQueue<T> {
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly areas: { desc: number; driver: number; device: number };
  private readonly freeDesc: number[] = [];
  private readonly chainNext: Int32Array;
  private readonly tokens: (T | undefined)[];
  private availIdx = 0;
  private kickedIdx = 0;
  private lastUsed = 0;

  constructor(bus: DriverTransport, pool: PoolAllocator, devNum: number, index: number, size: number, eventIdx: boolean) {
    const s = splitAreaSizes(size);
    const usedOff = Math.ceil((s.desc + s.avail) / 4096) * 4096; // used ring on its own page
    super(bus, pool, devNum, index, size, eventIdx, usedOff + s.used + 2);
    this.descTable = this.area.off;
    this.availRing = this.area.off + s.desc;
    this.usedRing = this.area.off + usedOff;
    this.areas = { desc: this.descTable, driver: this.availRing, device: this.usedRing };
    this.chainNext = new Int32Array(size);
    this.tokens = new Array(size);
    for (let i = size - 1; i >= 0; i--) this.freeDesc.push(i);
  }

  get numFree(): number {
    return this.freeDesc.length;
  }

  add(out: Buf[], inn: Buf[], token: T): boolean {
    const n = out.length + inn.length;
    if (n === 0) throw new Error('a chain needs at least one buffer');
    if (n > this.freeDesc.length) return false;
    const v = this.view();
    let head = -1;
    let prev = -1;
    const all = [...out.map((b) => [b, 0] as const), ...inn.map((b) => [b, VIRTQ_DESC_F_WRITE] as const)];
    for (const [b, flag] of all) {
      const d = this.freeDesc.pop()!;
      const at = this.descTable + 16 * d;
      v.setUint32(at, b.off, true);
      v.setUint32(at + 4, 0, true);
      v.setUint32(at + 8, b.len, true);
      v.setUint16(at + 12, flag, true);
      v.setUint16(at + 14, 0, true);
      if (prev >= 0) {
        v.setUint16(this.descTable + 16 * prev + 12, v.getUint16(this.descTable + 16 * prev + 12, true) | VIRTQ_DESC_F_NEXT, true);
        v.setUint16(this.descTable + 16 * prev + 14, d, true);
        this.chainNext[prev] = d;
      } else head = d;
      this.chainNext[d] = -1;
      prev = d;
    }
    this.tokens[head] = token;
    v.setUint16(this.availRing + 4 + 2 * (this.availIdx & (this.size - 1)), head, true);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    v.setUint16(this.availRing + 2, this.availIdx, true);
    this.counters.added++;
    return true;
  }

  /** Notifies the device if it asked to be (§2.7.10: avail_event with EVENT_IDX, else NO_NOTIFY). */
  async kick(): Promise<void> {
    if (this.kickedIdx === this.availIdx) return;
    const v = this.view();
    let need: boolean;
    if (this.eventIdx) {
      const availEvent = v.getUint16(this.usedRing + 4 + 8 * this.size, true);
      need = ((this.availIdx - availEvent - 1) & 0xffff) < ((this.availIdx - this.kickedIdx) & 0xffff);
    } else need = (v.getUint16(this.usedRing, true) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    this.kickedIdx = this.availIdx;
    await this.notify(need);
  }

  reap(): number {
    const v = this.view();
    const usedIdx = v.getUint16(this.usedRing + 2, true);
    let n = 0;
    while (this.lastUsed !== usedIdx) {
      const e = this.usedRing + 4 + 8 * (this.lastUsed & (this.size - 1));
      const id = v.getUint32(e, true);
      const len = v.getUint32(e + 4, true);
      if (id >= this.size || this.tokens[id] === undefined) throw new Error(`${this.where}: used id ${id} was not in flight`);
      const token = this.tokens[id]!;
      this.tokens[id] = undefined;
      for (let d = id; d >= 0; ) {
        const next = this.chainNext[d]!;
        this.freeDesc.push(d);
        d = next;
      }
      this.done.set(token, len);
      this.lastUsed = (this.lastUsed + 1) & 0xffff;
      this.counters.used++;
      n++;
    }
    // Ask for an interrupt at the next completion (EVENT_IDX used_event).
    if (this.eventIdx) v.setUint16(this.availRing + 4 + 2 * this.size, this.lastUsed, true);
    return n;
  }

  get inFlight(): number {
    return (this.availIdx - this.lastUsed) & 0xffff;
  }
}
