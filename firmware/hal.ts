/**
 * The Board HAL as the bundle sees it (docs/hal.md). The runtime defines `globalThis.__hal` before
 * evaluating the bundle; main.ts takes it once. Devices never import this: their backing services
 * arrive through their options object.
 */

/** What a runtime provides (ABI 5). Errors are negative errno values. */
export interface Hal {
  readonly abi: number;
  readonly window: ArrayBuffer;
  readonly boardJson: string;
  /** ivshmem peer id of the backend when the runtime knows it. */
  readonly peerId?: number;
  raise(line: number): void;
  fence(): void;
  now(): number;
  log(level: number, msg: string): void;
  setTimer(ms: number): void;
  storageOpen(name: string): number;
  /** [sizeBytes, readOnly ? 1 : 0, queueDepth, blockSize]: queueDepth 0 = synchronous only (ABI ≤ 2 answers the first two). */
  storageInfo(h: number): number[];
  storageRead(h: number, fileOffset: number, winOffset: number, len: number): number;
  storageWrite(h: number, fileOffset: number, winOffset: number, len: number): number;
  storageFlush(h: number): number;
  storageDiscard(h: number, fileOffset: number, len: number): number;
  storageWriteZeroes(h: number, fileOffset: number, len: number): number;
  /**
   * ABI 3, asynchronous storage: starts request `tag` (STORAGE_OP_*) over the `n` (winOffset, len) pairs of
   * `ranges` (READ/WRITE; the file range starts at `fileOffset`); 0 or −errno. Its result comes later
   * through `storageComplete`, after the runtime called `bulkhead.onService(h)`.
   */
  storageSubmit?(h: number, tag: number, op: number, fileOffset: number, ranges: Uint32Array, n: number): number;
  /** Takes finished requests: (tag, result) pairs into `out`; returns how many pairs. */
  storageComplete?(h: number, out: Int32Array): number;
  /** After it returns, request `tag` no longer touches the window; its completion is still reported once. 0, or −ENOENT when it had finished. */
  storageCancel?(h: number, tag: number): number;
  streamOpen(name: string): number;
  streamWrite(h: number, winOffset: number, len: number): number;
  streamRead(h: number, winOffset: number, maxLen: number): number;
  entropyOpen(name: string): number;
  entropyRead(h: number, winOffset: number, len: number): number;
  packetOpen(name: string): number;
  packetSend(h: number, winOffset: number, len: number, flags: number, csumStart: number, csumOffset: number): number;
  /**
   * 0 (no frame), −errno (−ENETDOWN: link down), or [len, flags, csumStart, csumOffset, dstMacHi16, dstMacLo32, flowHash]
   * of the frame `k` places behind the next one (default 0); with `out` the values go into it and the answer is 1.
   */
  packetPeek(h: number, out?: Uint32Array, k?: number): number | number[];
  /** Moves the frame `k` places behind the next one to the front (the frames it passes keep their order): 1, 0 (none), −errno. */
  packetPromote(h: number, k: number): number;
  packetRecv(h: number, winOffset: number, maxLen: number, flags: number): number;
  packetSetOffloads(h: number, offloads: number): number;
  /** ABI 4, virtio-vsock host side (services.ts VsockService): the same functions with the handle first. */
  vsockOpen(name: string): number;
  vsockConnect(h: number, port: number): number;
  vsockEstablished(h: number, id: number, localPort: number): number;
  vsockSend(h: number, id: number, winOffset: number, len: number): number;
  vsockRecv(h: number, id: number, winOffset: number, maxLen: number): number;
  vsockShutdown(h: number, id: number, how: number): number;
  vsockClose(h: number, id: number): number;
  vsockPoll(h: number, out: Uint32Array): number;
  /** ABI 5: an I2C bus and its targets (docs/i2c.md). */
  i2cOpen(name: string): number;
  /** One I2C transaction of `entries` entries of `msgs` (services.ts I2cBusService): messages completed, or −errno. */
  i2cTransfer(h: number, msgs: Uint32Array, entries: number): number;
  gpioOpen(name: string): number;
  gpioSetDirection(h: number, line: number, direction: number): number;
  gpioSetValue(h: number, line: number, value: number): number;
  /** Every line's level and edges since the last sample into `out` (services.ts GpioService); the number of lines. */
  gpioSample(h: number, out: Uint32Array): number;
}

export const LOG_ERROR = 0;
export const LOG_WARN = 1;
export const LOG_INFO = 2;
export const LOG_DEBUG = 3;

/** A logger bound to a prefix. */
export type Logger = (level: number, msg: string) => void;

/** Board definition (boards/*.json), the device manifest included. */
export interface BoardConfig {
  name: string;
  id: number;
  /** The transport (docs/transport.md): virtio-msg FIFOs (default), register blocks, or trapped MMIO records. */
  transport?: 'msg' | 'regblock' | 'mmio';
  /** `fifoSlots`: msg's FIFOs; `recordSlots`: mmio's access-record ring (default 64). */
  window: { size: number; fifoSlots?: number; recordSlots?: number };
  lines: { toFrontend: number; fromFrontend: number };
  limits: { memoryBytes: number; watchdogMs: number; budgetPerQueue: number };
  /** Runtime tuning the firmware does not read: `busyPollUs` (native runtime, docs/native.md "Busy polling"). */
  runtime?: { busyPollUs?: number };
  services: Record<string, { kind: string; [k: string]: unknown }>;
  devices: DeviceManifestEntry[];
}

/** One device of the capability manifest. */
export interface DeviceManifestEntry {
  type: string;
  service?: string;
  [option: string]: unknown;
}
