/**
 * The two single-producer single-consumer message FIFOs of the window (docs/window-layout.md).
 * The backend consumes the driver→device FIFO and produces into the device→driver FIFO. Our own index
 * (tail, resp. head) lives in private memory and is only ever written to the window; the peer's index
 * is read once per batch and validated before use.
 *
 * Each FIFO is reached through two word views of the window made (and bounds-checked) once, here:
 * its index block and its slots. Every later access indexes those views with a slot number masked to
 * the FIFO's size, so no per-message window check is needed and none can reach outside the FIFO.
 */
import type { FifoLayout } from '../window/layout';
import { FIFO_HEAD, FIFO_SLOTS, FIFO_TAIL } from '../window/layout';
import type { GuestWindow } from '../window/window';

const HEAD = FIFO_HEAD >>> 2;
const TAIL = FIFO_TAIL >>> 2;

/** One end of a FIFO: its index block and its slots as words (the layout keeps both 4-byte aligned). */
abstract class FifoEnd {
  protected readonly mask: number;
  protected readonly count: number;
  protected readonly index: Uint32Array;
  protected readonly slots: Uint32Array;
  protected readonly slotWords: number;

  constructor(win: GuestWindow, fifo: FifoLayout, slotSize: number) {
    if (slotSize & 3) throw new Error(`FIFO slot size ${slotSize} is not a multiple of 4`);
    this.mask = fifo.slots - 1;
    this.count = fifo.slots;
    this.index = win.areaWords(fifo.offset, FIFO_SLOTS);
    this.slots = win.areaWords(fifo.offset + FIFO_SLOTS, fifo.slots * slotSize);
    this.slotWords = slotSize >>> 2;
  }

  /**
   * Boot: the FIFO is empty. Zeroes its control block and every slot, not only the indexes: what a
   * previous instance left unread is never processed, also not when a frontend that has not seen the
   * restart yet produces on from its old head (docs/security.md, "A restarted backend"). Our own index follows.
   */
  reset(): void {
    this.index.fill(0);
    this.slots.fill(0);
    this.restart();
  }

  protected abstract restart(): void;
}

/** Reads messages the frontend produced. */
export class FifoConsumer extends FifoEnd {
  private tail = 0;

  protected restart(): void {
    this.tail = 0;
  }

  /**
   * Messages ready to read, or -1 when the producer's head is impossible (more than `slots` ahead):
   * the caller counts the violation and calls `resync()`.
   */
  ready(): number {
    const n = (this.index[HEAD]! - this.tail) >>> 0;
    return n > this.count ? -1 : n;
  }

  /** Skips whatever the producer claims to have written: garbage is discarded, never read. */
  resync(): void {
    this.tail = this.index[HEAD]!;
    this.index[TAIL] = this.tail;
  }

  /**
   * Copies the next message into `dst` (private memory, `slotSize` bytes as words): the one fetch of a
   * message. The 8-byte header first; then as many payload words as the *private copy's* `msg_size`
   * says, at most the slot (the decoder rejects a size outside 8..slot). Words of `dst` past `msg_size`
   * are left as they were: the decoder's payload view never reaches them.
   */
  readNext(dst: Uint32Array): void {
    const s = this.slots;
    const at = (this.tail & this.mask) * this.slotWords;
    dst[0] = s[at]!;
    const w1 = s[at + 1]!;
    dst[1] = w1;
    const size = w1 >>> 16; // msg_size, bytes 6..7
    if (size > 8) {
      const end = size < 4 * this.slotWords ? (size + 3) >>> 2 : this.slotWords;
      for (let k = 2; k < end; k++) dst[k] = s[at + k]!;
    }
    this.tail = (this.tail + 1) >>> 0;
  }

  /** Publishes how far we have read (the caller fences before, so slot reads complete first). */
  publishTail(): void {
    this.index[TAIL] = this.tail;
  }
}

/** Writes messages for the frontend. */
export class FifoProducer extends FifoEnd {
  private head = 0;
  private published = 0;

  protected restart(): void {
    this.head = 0;
    this.published = 0;
  }

  /**
   * Free slots, or -1 when the consumer's tail is impossible (it claims to have read what we never
   * wrote): the caller counts it and treats the FIFO as full until the tail is sane again.
   */
  space(): number {
    const used = (this.head - this.index[TAIL]!) >>> 0;
    return used > this.count ? -1 : this.count - used;
  }

  /**
   * Writes the first `size` bytes of `msg` (words; `size` ≤ the slot, the caller checked `space()`),
   * rounded up to a whole word; visible after `publish()`.
   */
  push(msg: Uint32Array, size: number): void {
    const s = this.slots;
    const at = (this.head & this.mask) * this.slotWords;
    const n = (size + 3) >>> 2;
    if (n > this.slotWords) throw new Error(`FIFO push of ${size} bytes into ${4 * this.slotWords}-byte slots`);
    for (let k = 0; k < n; k++) s[at + k] = msg[k]!;
    this.head = (this.head + 1) >>> 0;
  }

  /** True when messages were pushed since the last publish. */
  get dirty(): boolean {
    return this.head !== this.published;
  }

  /** Publishes pushed messages (the caller fences before, so slot writes land first). */
  publishHead(): void {
    this.index[HEAD] = this.head;
    this.published = this.head;
  }
}
