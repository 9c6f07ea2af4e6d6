/**
 * The two single-producer single-consumer message FIFOs of the window (docs/window-layout.md).
 * The backend consumes the driver→device FIFO and produces into the device→driver FIFO. Our own index
 * (tail, resp. head) lives in private memory and is only ever written to the window; the peer's index
 * is read once per batch and validated before use.
 */
import type { FifoLayout } from '../window/layout';
import { FIFO_HEAD, FIFO_SLOTS, FIFO_TAIL } from '../window/layout';
import type { GuestWindow } from '../window/window';

/** Reads messages the frontend produced. */
export class FifoConsumer {
  private tail = 0;
  private readonly mask: number;
  private readonly slotsBase: number;

  constructor(
    private readonly win: GuestWindow,
    private readonly fifo: FifoLayout,
    private readonly slotSize: number,
  ) {
    this.mask = fifo.slots - 1;
    this.slotsBase = fifo.offset + FIFO_SLOTS;
  }

  /**
   * Messages ready to read, or -1 when the producer's head is impossible (more than `slots` ahead):
   * the caller counts the violation and calls `resync()`.
   */
  ready(): number {
    const head = this.win.u32(this.fifo.offset + FIFO_HEAD);
    const n = (head - this.tail) >>> 0;
    return n > this.fifo.slots ? -1 : n;
  }

  /** Skips whatever the producer claims to have written: garbage is discarded, never read. */
  resync(): void {
    this.tail = this.win.u32(this.fifo.offset + FIFO_HEAD);
    this.win.setU32(this.fifo.offset + FIFO_TAIL, this.tail);
  }

  /** Copies the next slot into `dst` (private memory, `slotSize` bytes): the one fetch of a message. */
  readNext(dst: Uint8Array): void {
    this.win.copyOutInto(this.slotsBase + (this.tail & this.mask) * this.slotSize, this.slotSize, dst, 0);
    this.tail = (this.tail + 1) >>> 0;
  }

  /** Publishes how far we have read (the caller fences before, so slot reads complete first). */
  publishTail(): void {
    this.win.setU32(this.fifo.offset + FIFO_TAIL, this.tail);
  }
}

/** Writes messages for the frontend. */
export class FifoProducer {
  private head = 0;
  private published = 0;
  private readonly mask: number;
  private readonly slotsBase: number;

  constructor(
    private readonly win: GuestWindow,
    private readonly fifo: FifoLayout,
    private readonly slotSize: number,
  ) {
    this.mask = fifo.slots - 1;
    this.slotsBase = fifo.offset + FIFO_SLOTS;
  }

  /**
   * Free slots, or -1 when the consumer's tail is impossible (it claims to have read what we never
   * wrote): the caller counts it and treats the FIFO as full until the tail is sane again.
   */
  space(): number {
    const tail = this.win.u32(this.fifo.offset + FIFO_TAIL);
    const used = (this.head - tail) >>> 0;
    return used > this.fifo.slots ? -1 : this.fifo.slots - used;
  }

  /** Writes the first `size` bytes of `msg` (the caller checked `space()`); visible after `publish()`. */
  push(msg: Uint8Array, size: number): void {
    this.win.copyInPrefix(this.slotsBase + (this.head & this.mask) * this.slotSize, msg, size);
    this.head = (this.head + 1) >>> 0;
  }

  /** True when messages were pushed since the last publish. */
  get dirty(): boolean {
    return this.head !== this.published;
  }

  /** Publishes pushed messages (the caller fences before, so slot writes land first). */
  publishHead(): void {
    this.win.setU32(this.fifo.offset + FIFO_HEAD, this.head);
    this.published = this.head;
  }
}
