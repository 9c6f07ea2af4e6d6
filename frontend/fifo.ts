/**
 * The frontend's side of the window FIFOs (docs/window-layout.md): it produces into the
 * driver→device FIFO and consumes the device→driver FIFO. Both indexes are re-read from the window
 * on every call (the frontend is their only writer), so the driver model, the simulator's raw access
 * and test peers can share one FIFO.
 */
import type { FifoLayout } from './layout';
import { FIFO_HEAD, FIFO_SLOTS, FIFO_TAIL } from './layout';

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/**
 * Writes one message (at most `slotSize` bytes of it; the rest of the slot zeroed) and publishes
 * it; false when the FIFO is full. No doorbell.
 */
export function fifoPush(bytes: Uint8Array, f: FifoLayout, slotSize: number, msg: Uint8Array): boolean {
  const v = view(bytes);
  const head = v.getUint32(f.offset + FIFO_HEAD, true);
  const tail = v.getUint32(f.offset + FIFO_TAIL, true);
  if (((head - tail) >>> 0) >= f.slots) return false;
  const slot = f.offset + FIFO_SLOTS + (head & (f.slots - 1)) * slotSize;
  bytes.fill(0, slot, slot + slotSize);
  bytes.set(msg.subarray(0, slotSize), slot);
  v.setUint32(f.offset + FIFO_HEAD, (head + 1) >>> 0, true);
  return true;
}

/**
 * Takes every message the producer published (each a copy of `msg_size` bytes, clamped to the
 * slot) and hands the slots back. `wasFull` tells the caller to ring the producer: it holds events
 * back while the FIFO is full (the "room again" rule).
 */
export function fifoTakeAll(bytes: Uint8Array, f: FifoLayout, slotSize: number): { messages: Uint8Array[]; wasFull: boolean } {
  const v = view(bytes);
  const head = v.getUint32(f.offset + FIFO_HEAD, true);
  let tail = v.getUint32(f.offset + FIFO_TAIL, true);
  const wasFull = ((head - tail) >>> 0) >= f.slots;
  const messages: Uint8Array[] = [];
  for (let n = 0; tail !== head && n < f.slots; n++) {
    const slot = f.offset + FIFO_SLOTS + (tail & (f.slots - 1)) * slotSize;
    const size = v.getUint16(slot + 6, true);
    messages.push(bytes.slice(slot, slot + Math.min(Math.max(size, 8), slotSize)));
    tail = (tail + 1) >>> 0;
  }
  v.setUint32(f.offset + FIFO_TAIL, tail, true);
  return { messages, wasFull };
}
