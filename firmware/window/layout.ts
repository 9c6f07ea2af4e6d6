/**
 * Window layout version 1 (docs/window-layout.md). The backend computes it from its board definition
 * and writes the header itself at boot; it never reads layout fields back from the window. What lies
 * between the header page and the pool depends on the board's transport: the two virtio-msg FIFOs
 * (`msg`), the device directory and one register block per device (`regblock`), or the access-record
 * ring (`mmio`).
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
  /** TRANSPORT_IDS value (0, virtio-msg, in every window written before the field existed). */
  transport: 0x44,
  /** Offset and size of the transport's own area (regblock: the device directory; mmio: the record ring; 0 for msg). */
  transportArea: 0x48,
  transportAreaSize: 0x4c,
} as const;

/** The transports a board can name (docs/transport.md). */
export type TransportKind = 'msg' | 'regblock' | 'mmio';
export const TRANSPORT_IDS: Readonly<Record<TransportKind, number>> = { msg: 0, regblock: 1, mmio: 2 };
export const TRANSPORT_KINDS: readonly TransportKind[] = ['msg', 'regblock', 'mmio'];

/** regblock: one page of device directory, then one page per device's register block. */
export const REGBLOCK_STRIDE = 4096;
/** mmio: the record ring's control block (head at +0, tail at +64) before its 16-byte records. */
export const RECORD_SLOTS_OFFSET = 128;
export const RECORD_SIZE = 16;

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
  /** The virtio-msg FIFOs (msg only: slot size and slot counts 0 otherwise). */
  slotSize: number;
  fifoD2V: FifoLayout;
  fifoV2D: FifoLayout;
  poolOffset: number;
  poolSize: number;
  transport: TransportKind;
  /** The transport's own area (regblock: directory + blocks; mmio: the record ring, exactly its slots); 0 for msg. */
  areaOffset: number;
  areaSize: number;
}

/** What the layout needs to know about a board beyond its window. */
export interface LayoutOptions {
  transport?: TransportKind;
  /** regblock: the devices, one register block each. */
  devices?: number;
  /** mmio: access-record slots, a power of two. */
  recordSlots?: number;
}

const alignUp = (v: number, a: number) => Math.ceil(v / a) * a;

/** Computes the layout for a board's window (throws a plain Error for an impossible board). */
export function computeLayout(windowSize: number, fifoSlots: number, opts: LayoutOptions = {}): WindowLayout {
  const transport = opts.transport ?? 'msg';
  if (!TRANSPORT_KINDS.includes(transport)) throw new Error(`board transport must be one of ${TRANSPORT_KINDS.join(', ')}, got ${String(transport)}`);
  let fifos = { slotSize: 0, fifoD2V: { offset: 0, slots: 0 }, fifoV2D: { offset: 0, slots: 0 } };
  let areaOffset = 0;
  let areaSize = 0;
  let what: string;
  if (transport === 'msg') {
    if (!Number.isInteger(fifoSlots) || fifoSlots < 2 || fifoSlots > 4096 || (fifoSlots & (fifoSlots - 1)) !== 0) {
      throw new Error(`board window.fifoSlots must be a power of two in 2..4096, got ${fifoSlots}`);
    }
    const fifoBytes = alignUp(FIFO_SLOTS + fifoSlots * SLOT_SIZE, HEADER_PAGE);
    fifos = { slotSize: SLOT_SIZE, fifoD2V: { offset: HEADER_PAGE, slots: fifoSlots }, fifoV2D: { offset: HEADER_PAGE + fifoBytes, slots: fifoSlots } };
    what = `${fifoSlots}-slot FIFOs`;
  } else if (transport === 'regblock') {
    const n = opts.devices ?? 0;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`a regblock board needs 1..64 devices, got ${n}`);
    areaOffset = HEADER_PAGE;
    areaSize = HEADER_PAGE + n * REGBLOCK_STRIDE;
    what = `${n} register blocks`;
  } else {
    const slots = opts.recordSlots ?? 64;
    if (!Number.isInteger(slots) || slots < 2 || slots > 4096 || (slots & (slots - 1)) !== 0) {
      throw new Error(`board window.recordSlots must be a power of two in 2..4096, got ${slots}`);
    }
    areaOffset = HEADER_PAGE;
    areaSize = RECORD_SLOTS_OFFSET + slots * RECORD_SIZE;
    what = `a ${slots}-record ring`;
  }
  const pool = transport === 'msg' ? fifos.fifoV2D.offset + (fifos.fifoV2D.offset - fifos.fifoD2V.offset) : alignUp(areaOffset + areaSize, HEADER_PAGE);
  if (!Number.isInteger(windowSize) || windowSize < pool + 64 * 1024 || windowSize > 0xffff_f000) {
    throw new Error(`board window.size ${windowSize} too small for ${what} plus a 64 KiB pool (or above 4 GiB)`);
  }
  return { windowSize, ...fifos, poolOffset: pool, poolSize: windowSize - pool, transport, areaOffset, areaSize };
}

/**
 * Writes the header (state BOOTING); the transport initialises its own area next (`Transport.boot()`:
 * the FIFO control blocks, the register blocks, the record ring). `backendPeerId` null leaves the
 * field as the runtime wrote it (the native runtime learns its ivshmem peer id before boot).
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
  win.setU32(H.transport, TRANSPORT_IDS[l.transport]);
  win.setU32(H.transportArea, l.areaOffset);
  win.setU32(H.transportAreaSize, l.areaSize);
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
