/**
 * Window layout version 1 (docs/window-layout.md). The backend computes it from its board definition
 * and writes the header itself at boot; it never reads layout fields back from the window.
 */
import type { GuestWindow } from './window';

export const WINDOW_MAGIC = 0x4b4c4842; // bytes "BHLK"
export const WINDOW_VERSION = 1;
export const HEADER_SIZE = 128;
export const HEADER_PAGE = 4096;
/** Maximum virtio-msg size (virtio-msg §Revisions: recommended 264) = FIFO slot size. */
export const SLOT_SIZE = 264;
/** FIFO control block: head at +0, tail at +64, slots from +128. */
export const FIFO_HEAD = 0;
export const FIFO_TAIL = 64;
export const FIFO_SLOTS = 128;

/** Header field offsets. */
export const H = {
  magic: 0x00,
  version: 0x04,
  headerSize: 0x06,
  windowSize: 0x08,
  slotSize: 0x0c,
  fifoD2VOffset: 0x10,
  fifoD2VSlots: 0x14,
  fifoV2DOffset: 0x18,
  fifoV2DSlots: 0x1c,
  poolOffset: 0x20,
  poolSize: 0x24,
  backendState: 0x28,
  backendGeneration: 0x2c,
  frontendState: 0x30,
  transportRevision: 0x34,
  transportFeatures: 0x38,
  deviceCount: 0x3c,
  backendPeerId: 0x40,
  frontendPeerId: 0x42,
} as const;

export const BACKEND_OFF = 0;
export const BACKEND_BOOTING = 1;
export const BACKEND_READY = 2;
export const BACKEND_STOPPED = 3;

export interface FifoLayout {
  offset: number;
  slots: number;
}

/** Where everything lives in a window of `windowSize` bytes. */
export interface WindowLayout {
  windowSize: number;
  slotSize: number;
  fifoD2V: FifoLayout;
  fifoV2D: FifoLayout;
  poolOffset: number;
  poolSize: number;
}

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

/** Computes the layout for a board's window (throws a plain Error for an impossible board). */
export function computeLayout(windowSize: number, fifoSlots: number): WindowLayout {
  if (!Number.isInteger(fifoSlots) || fifoSlots < 2 || fifoSlots > 4096 || (fifoSlots & (fifoSlots - 1)) !== 0) {
    throw new Error(`board window.fifoSlots must be a power of two in 2..4096, got ${fifoSlots}`);
  }
  const fifoBytes = alignUp(FIFO_SLOTS + fifoSlots * SLOT_SIZE, HEADER_PAGE);
  const d2v = HEADER_PAGE;
  const v2d = d2v + fifoBytes;
  const pool = v2d + fifoBytes;
  if (!Number.isInteger(windowSize) || windowSize < pool + 64 * 1024 || windowSize > 0xffff_f000) {
    throw new Error(`board window.size ${windowSize} too small for ${fifoSlots}-slot FIFOs plus a 64 KiB pool (or above 4 GiB)`);
  }
  return {
    windowSize,
    slotSize: SLOT_SIZE,
    fifoD2V: { offset: d2v, slots: fifoSlots },
    fifoV2D: { offset: v2d, slots: fifoSlots },
    poolOffset: pool,
    poolSize: windowSize - pool,
  };
}

/**
 * Writes the header (state BOOTING) and zeroes both FIFOs, control blocks and slots. `backendPeerId` null leaves
 * the field as the runtime wrote it (the native runtime learns its ivshmem peer id before boot).
 */
export function writeHeader(win: GuestWindow, l: WindowLayout, generation: number, deviceCount: number, backendPeerId: number | null): void {
  win.setU32(H.backendState, BACKEND_BOOTING);
  win.setU32(H.magic, WINDOW_MAGIC);
  win.setU16(H.version, WINDOW_VERSION);
  win.setU16(H.headerSize, HEADER_SIZE);
  win.setU32(H.windowSize, l.windowSize);
  win.setU32(H.slotSize, l.slotSize);
  win.setU32(H.fifoD2VOffset, l.fifoD2V.offset);
  win.setU32(H.fifoD2VSlots, l.fifoD2V.slots);
  win.setU32(H.fifoV2DOffset, l.fifoV2D.offset);
  win.setU32(H.fifoV2DSlots, l.fifoV2D.slots);
  win.setU32(H.poolOffset, l.poolOffset);
  win.setU32(H.poolSize, l.poolSize);
  win.setU32(H.backendGeneration, generation);
  win.setU32(H.transportRevision, 1);
  win.setU32(H.transportFeatures, 0);
  win.setU32(H.deviceCount, deviceCount);
  if (backendPeerId !== null) win.setU16(H.backendPeerId, backendPeerId);
  win.fill(0x44, HEADER_SIZE - 0x44, 0);
  // Every slot too, not only the indexes: what the previous instance left unread is never processed,
  // also not when a frontend that has not seen the restart yet produces on from its old head
  // (docs/security.md, "A restarted backend").
  for (const f of [l.fifoD2V, l.fifoV2D]) win.fill(f.offset, FIFO_SLOTS + f.slots * l.slotSize, 0);
}

/**
 * The generation for this boot: one more than the previous boot's if the window already holds a
 * Bulkhead header (the shared memory survived a backend restart), else 1; never 0. The old value is
 * only ever incremented and shown back to the frontend, so a frontend that scribbled on it confuses
 * only itself.
 */
export function nextGeneration(win: GuestWindow): number {
  const previous = win.u32(H.magic) === WINDOW_MAGIC ? win.u32(H.backendGeneration) : 0;
  return ((previous + 1) >>> 0) || 1;
}

/** Publishes the backend state (READY after a fence, STOPPED on shutdown). */
export function setBackendState(win: GuestWindow, state: number): void {
  win.setU32(H.backendState, state);
}
