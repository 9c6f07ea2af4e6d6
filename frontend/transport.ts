/**
 * What the frontend driver model needs from a transport: discovery, the status handshake, features,
 * config access, queue setup, notifications both ways. Each transport of docs/transport.md has a
 * driver side behind this interface — `FrontendBus` (msg, bus.ts), `RegBlockBus` (regblock,
 * regblock.ts), `MmioBus` (mmio, mmio.ts) — so the drivers (drivers/*.ts), the vrings and every shared
 * test suite run unchanged over any of them. `attachTransport` picks the one the window header names.
 */
import type { WindowLayout } from './layout';
import type { FrontendPort } from './port';

/** What discovery tells about a device (virtio-msg GET_DEVICE_INFO; the other transports fill what they have). */
export interface DeviceInfo {
  deviceId: number;
  vendorId: number;
  numFeatureBits: number;
  /** Bytes of config space (0: the transport does not say, e.g. virtio-mmio). */
  configSize: number;
  /** Virtqueues (0: the transport does not say, e.g. virtio-mmio: the driver knows its device). */
  maxQueues: number;
}

/** A notification from the device: used buffers (`queue` -1: any of its queues) or a configuration change. */
export type DriverEvent =
  | { devNum: number; kind: 'used'; queue: number }
  | { devNum: number; kind: 'config'; status?: number; generation?: number };

/** Counters every driver transport keeps: doorbells rung, requests/writes sent, notifications seen, waits. */
export interface DriverCounters {
  kicks: number;
  sent: number;
  received: number;
  events: number;
  waits: number;
}

export interface DriverTransport {
  readonly kind: 'msg' | 'regblock' | 'mmio';
  readonly port: FrontendPort;
  readonly layout: WindowLayout;
  readonly counters: DriverCounters;
  /** Called for every notification `poll()` finds. */
  onEvent: (e: DriverEvent) => void;
  /** The devices the backend offers, by device number. */
  discover(): Promise<{ devNum: number; info: DeviceInfo }[]>;
  /** Collects what the backend sent (answers, notifications); returns how many things arrived. */
  poll(): number;
  /** Polls and waits for doorbells until `cond()` holds; throws `what()` on timeout. */
  until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void>;
  /** Rings the backend. */
  kick(): void;
  getStatus(dev: number): Promise<number>;
  /** Writes the status; the status the device answered with where the transport says it (virtio-msg), else null. */
  setStatus(dev: number, status: number): Promise<number | null>;
  deviceFeatures(dev: number): Promise<bigint>;
  setDriverFeatures(dev: number, features: bigint): Promise<void>;
  getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }>;
  /** False when the device refused the write (stale generation, read-only field). */
  setConfig(dev: number, generation: number, offset: number, data: Uint8Array): Promise<boolean>;
  /** Configures queue `index` at the given window offsets; false when the device refused it. */
  setupQueue(dev: number, index: number, size: number, desc: number, avail: number, used: number): Promise<boolean>;
  /** Stops using queue `index` (virtio-msg RESET_VQUEUE; QueueReady / queue_enable = 0). */
  deleteQueue(dev: number, index: number): Promise<void>;
  /** An available-buffer notification for queue `index`; with `defer` no doorbell yet (the caller kicks). */
  notify(dev: number, index: number, defer?: boolean): Promise<void>;
}

/**
 * The wait of a transport whose notifications arrive synchronously: `poll()`, test `cond()`, else wait
 * for the backend's doorbell; throws `what()` when `timeoutMs` passed.
 */
export async function pollUntil(t: { poll(): number; readonly port: FrontendPort; readonly counters: DriverCounters }, cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    t.poll();
    if (cond()) return;
    const left = end - Date.now();
    if (left <= 0) throw new Error(what());
    t.counters.waits++;
    await t.port.wait(left);
  }
}
