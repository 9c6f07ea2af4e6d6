/**
 * Driver side of a packed virtqueue (virtio 1.3 §2.8) for the TypeScript frontend model, as Linux's
 * virtio_ring does it: buffer ids from a free list (below the queue size), each buffer's descriptors
 * written from the next position with the head's flags last (§2.8.21.1), the Driver Ring Wrap Counter
 * toggled at the end of the ring, used descriptors read at the used position and skipped by the number
 * of descriptors their buffer took (§2.8.22), and both event suppression structures (§2.8.10) honoured
 * (RING_EVENT_FLAGS_DESC with EVENT_IDX). Layout in one pool allocation: the descriptor ring, then the
 * driver and the device event suppression structures (4 bytes each).
 */
import {
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_WRAP,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from '../firmware/virtio';
import { packedAreaSizes } from '../firmware/virtqueue/packed';
import type { PoolAllocator } from './pool';
import type { DriverTransport } from './transport';
import type { Buf } from './vring';
import { DriverQueue } from './vring';

export class PackedDriverQueue<T = unknown> extends DriverQueue<T> {
  readonly areas: { desc: number; driver: number; device: number };
  /** Next descriptor position to fill and the Driver Ring Wrap Counter (§2.8.1). */
  private nextAvail = 0;
  private availWrap = 1;
  /** Next used descriptor position to read and its wrap counter. */
  private nextUsed = 0;
  private usedWrap = 1;
  private free: number;
  /** Descriptors made available since the last kick (vring_need_event's old..new). */
  private added = 0;
  private readonly freeIds: number[] = [];
  /** Per buffer id: its token and the descriptors it took (0: free). */
  private readonly tokens: (T | undefined)[];
  private readonly counts: Uint16Array;
  private buffers = 0;

  constructor(bus: DriverTransport, pool: PoolAllocator, devNum: number, index: number, size: number, eventIdx: boolean) {
    const s = packedAreaSizes(size);
    super(bus, pool, devNum, index, size, eventIdx, s.desc + s.driver + s.device);
    this.areas = { desc: this.area.off, driver: this.area.off + s.desc, device: this.area.off + s.desc + s.driver };
    this.free = size;
    this.tokens = new Array(size);
    this.counts = new Uint16Array(size);
    for (let i = size - 1; i >= 0; i--) this.freeIds.push(i);
    // With EVENT_IDX, ask for a used buffer notification at the first used descriptor (0, wrap 1).
    if (eventIdx) this.setDriverEvent(0, 1);
  }

  get numFree(): number {
    return this.free;
  }

  get inFlight(): number {
    return this.buffers;
  }

  add(out: Buf[], inn: Buf[], token: T): boolean {
    const n = out.length + inn.length;
    if (n === 0) throw new Error('a chain needs at least one buffer');
    if (n > this.free || this.freeIds.length === 0) return false;
    const v = this.view();
    const d = this.areas.desc;
    const id = this.freeIds.pop()!;
    const head = this.nextAvail;
    let headFlags = 0;
    const all = [...out.map((b) => [b, 0] as const), ...inn.map((b) => [b, VIRTQ_DESC_F_WRITE] as const)];
    all.forEach(([b, write], k) => {
      const at = d + 16 * this.nextAvail;
      const flags = write | (k < n - 1 ? VIRTQ_DESC_F_NEXT : 0) | (this.availWrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED);
      v.setUint32(at, b.off, true);
      v.setUint32(at + 4, 0, true);
      v.setUint32(at + 8, b.len, true);
      v.setUint16(at + 12, id, true); // in every descriptor, as Linux does; §2.8.6 needs it in the last
      if (k === 0) headFlags = flags;
      else v.setUint16(at + 14, flags, true);
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap ^= 1;
      }
    });
    v.setUint16(d + 16 * head + 14, headFlags, true); // the head last: the device sees the whole list or nothing
    this.tokens[id] = token;
    this.counts[id] = n;
    this.free -= n;
    this.added += n;
    this.buffers++;
    this.counters.added++;
    return true;
  }

  /** Notifies the device if it asked to be (§2.8.10: the device event suppression structure). */
  async kick(): Promise<void> {
    if (this.added === 0) return;
    const ev = this.view().getUint32(this.areas.device, true);
    const mode = (ev >>> 16) & 3;
    let need = mode !== RING_EVENT_FLAGS_DISABLE;
    if (mode === RING_EVENT_FLAGS_DESC && this.eventIdx) {
      // vring_need_event over positions: the device's offset, one ring earlier when of the other wrap.
      const event = (ev & 0x7fff) - ((ev & RING_EVENT_WRAP ? 1 : 0) !== this.availWrap ? this.size : 0);
      need = ((this.nextAvail - event - 1) & 0xffff) < (this.added & 0xffff);
    }
    this.added = 0;
    await this.notify(need);
  }

  reap(): number {
    const v = this.view();
    const d = this.areas.desc;
    let n = 0;
    for (let k = 0; k < this.size; k++) {
      const at = d + 16 * this.nextUsed;
      const flags = v.getUint16(at + 14, true);
      const used = this.usedWrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
      if ((flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED)) !== used) break; // not used yet
      const id = v.getUint16(at + 12, true);
      const len = v.getUint32(at + 8, true);
      if (id >= this.size || this.counts[id] === 0) throw new Error(`${this.where}: used buffer id ${id} was not in flight`);
      const count = this.counts[id]!;
      const token = this.tokens[id]!;
      this.tokens[id] = undefined;
      this.counts[id] = 0;
      this.freeIds.push(id);
      this.free += count;
      this.buffers--;
      this.nextUsed += count; // skip the rest of that buffer's descriptors (§2.8.6)
      if (this.nextUsed >= this.size) {
        this.nextUsed -= this.size;
        this.usedWrap ^= 1;
      }
      this.done.set(token, len);
      this.counters.used++;
      n++;
    }
    // Ask for a used buffer notification at the next used descriptor (EVENT_IDX, §2.8.10).
    if (this.eventIdx) this.setDriverEvent(this.nextUsed, this.usedWrap);
    return n;
  }

  private setDriverEvent(pos: number, wrap: number): void {
    this.view().setUint32(this.areas.driver, (pos | (wrap ? RING_EVENT_WRAP : 0) | (RING_EVENT_FLAGS_DESC << 16)) >>> 0, true);
  }
}
