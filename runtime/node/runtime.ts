/**
 * The node runtime: hosts the firmware bundle in quickjs-emscripten and implements the Board HAL
 * (docs/hal.md) for tests, the simulator and benchmarks.
 *
 * The window is allocated in the WASM heap and wrapped as the bundle's ArrayBuffer without a copy, so
 * the host (the simulated frontend) and the firmware see the same bytes. Calls into the bundle run
 * under a watchdog and the context has a memory limit; a stopped call is reported to the firmware
 * through `bulkhead.onFault` and the runtime keeps serving.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime, QuickJSWASMModule } from 'quickjs-emscripten';
import { newQuickJSWASMModule, RELEASE_SYNC } from 'quickjs-emscripten';
import type { BoardConfig } from '../../firmware/hal';
import { GpioLines } from './gpio';
import { buildTargets, I2cBus } from './i2c';
import type { SwitchPort } from './switch';
import { flowHash, PACKET_F_MORE, VirtualSwitch } from './switch';
import type { HostVsock } from './vsock';
import { MemoryVsockHost } from './vsock';

const EFAULT = 14;
const EBADF = 9;
const ENOENT = 2;
const EIO = 5;
const EROFS = 30;
const ENETDOWN = 100;
const EINVAL = 22;
const EAGAIN = 11;

/** Requests one asynchronous storage handle takes at once in the node runtime (storageInfo's queueDepth). */
export const NODE_STORAGE_DEPTH = 64;
/** Window ranges one asynchronous request may carry (blk merges to at most seg_max). */
const MAX_STORAGE_RANGES = 256;

/** A request of an asynchronous storage handle in flight: its data moves through a private buffer. */
interface StorageRequest {
  /** Set by storageCancel: the request must not touch the window any more. */
  cancelled: boolean;
}

/** A byte stream backing (console). */
export interface HostStream {
  /** Takes output bytes; returns how many were accepted. */
  write(bytes: Uint8Array): number;
  /** Returns up to `max` pending input bytes (empty when none). */
  read(max: number): Uint8Array;
}

/** An in-memory stream: bounded input queue (excess counted as dropped), collected output. */
export class MemoryStream implements HostStream {
  private input: Uint8Array[] = [];
  private inputBytes = 0;
  private output: Uint8Array[] = [];
  /** Input bytes refused because the queue was full. */
  dropped = 0;
  constructor(readonly maxInput = 1 << 20) {}
  write(bytes: Uint8Array): number {
    this.output.push(bytes.slice());
    return bytes.length;
  }
  read(max: number): Uint8Array {
    const first = this.input[0];
    if (!first) return new Uint8Array(0);
    if (first.length <= max) {
      this.input.shift();
      this.inputBytes -= first.length;
      return first;
    }
    this.input[0] = first.subarray(max);
    this.inputBytes -= max;
    return first.subarray(0, max);
  }
  /** Queues input for the frontend; returns bytes accepted. */
  push(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.maxInput - this.inputBytes);
    if (n < bytes.length) this.dropped += bytes.length - n;
    if (n > 0) {
      this.input.push(bytes.slice(0, n));
      this.inputBytes += n;
    }
    return n;
  }
  /** Takes everything written so far. */
  takeOutput(): Uint8Array {
    const total = this.output.reduce((a, b) => a + b.length, 0);
    const out = new Uint8Array(total);
    let p = 0;
    for (const b of this.output) {
      out.set(b, p);
      p += b.length;
    }
    this.output = [];
    return out;
  }
}

/** A storage backing: a raw image file. */
export interface HostStorage {
  path: string;
  readOnly: boolean;
  /** `async`: storageSubmit/Complete/Cancel through node's asynchronous fs; `sync` (the node runtime's default): the synchronous calls only. */
  io?: 'sync' | 'async';
}

/** An open storage service. */
interface StorageHandle {
  fd: number;
  readOnly: boolean;
  size: number;
  async: boolean;
  inFlight: Map<number, StorageRequest>;
  /** Finished requests not yet taken: tag, result pairs. */
  done: number[];
  /** Dispose came while requests were in flight: the fd closes with the last one. */
  closing: boolean;
}

export interface NodeRuntimeOptions {
  /** Source of dist/firmware.js. */
  bundle: string;
  board: BoardConfig;
  /** The firmware raised a line towards the frontend. */
  onRaise(line: number): void;
  /** Log sink (default: errors and warnings to stderr). */
  log?(level: number, msg: string): void;
  /** Streams by service name (default: a MemoryStream per stream service). */
  streams?: Record<string, HostStream>;
  /** Storage by service name (default: the board's `path` and `readOnly`). */
  storage?: Record<string, HostStorage>;
  /** Entropy source (default: node:crypto). Tests may make it deterministic. */
  entropy?(dst: Uint8Array): void;
  /** Virtual switches by name, for `packet` services (default: one per name the board uses, private to this runtime). */
  switches?: Record<string, VirtualSwitch>;
  /** Host sides of `vsock` services by name (default: a MemoryVsockHost per vsock service). */
  vsock?: Record<string, HostVsock>;
  /**
   * Window contents at boot (default zeroes): the bytes a previous backend instance left, as a window
   * that survives a backend restart holds them (the firmware then counts this boot as a restart).
   */
  window?: Uint8Array;
  /**
   * A vsock host side had news outside a firmware call (a host program wrote, connected, closed): the
   * caller may run `onService` for `takePendingServices()` now. News during a call only marks the handle.
   */
  onServicePending?(): void;
  /**
   * Sees every HAL call and entry-point call: a trace recorder or replayer (runtime/node/trace.ts).
   * Without one nothing is wrapped (no cost); with one the firmware gets a window of its own that the
   * tap keeps in step with the shared one at every HAL call (docs/trace-format.md).
   */
  tap?: HalTap;
  /** `__hal.boardJson` verbatim (default: JSON.stringify(board)); a replay passes the recorded string. */
  boardJson?: string;
}

/** How an entry-point call ended: its value, or the fault that stopped it. */
export interface CallOutcome {
  value: number | string;
  fault?: { kind: string; detail: string };
}

/** What a tap gets from the runtime it is attached to. */
export interface TapHost {
  readonly ctx: QuickJSContext;
  /** `__hal.boardJson` as the bundle gets it. */
  readonly boardJson: string;
  /** The window the firmware sees (its own copy). */
  firmwareWindow(): Uint8Array;
  /** The window the frontend and the services see. */
  sharedWindow(): Uint8Array;
}

/** A hook at the HAL boundary (trace record and replay). */
export interface HalTap {
  /** Called once, before the bundle is evaluated. */
  attach(host: TapHost): void;
  /** A HAL call by the firmware; `impl` runs the real service (a replayer does not call it). */
  hal(name: string, args: QuickJSHandle[], impl: () => QuickJSHandle | number | undefined): QuickJSHandle | number | undefined;
  /** An entry-point call (`(load)` is the evaluation of the bundle). */
  call(name: string, args: (number | string)[], run: () => CallOutcome): CallOutcome;
  /** True when the running call must be stopped now (a replay diverged). */
  stopRequested(): boolean;
}

/**
 * The watchdog's clock: CPU time this process used, in ms. A call is stopped when it has *computed*
 * for longer than `limits.watchdogMs`, which is what catches a model that loops; wall time would also
 * stop a call that merely waited — for a core on a loaded machine (the fuzz campaign's one false
 * finding, docs/security.md) or for a slow host call.
 */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

let modulePromise: Promise<QuickJSWASMModule> | null = null;
/** The QuickJS WASM module (release, sync build), loaded once per process. */
export function quickjsModule(): Promise<QuickJSWASMModule> {
  modulePromise ??= newQuickJSWASMModule(RELEASE_SYNC);
  return modulePromise;
}

/** Entry points of the firmware, as `bulkhead.*` in the bundle. */
export type EntryPoint = 'start' | 'onInterrupt' | 'poll' | 'onTimer' | 'onService' | 'stop' | 'stats';

/**
 * The one place that reaches into quickjs-emscripten's protected members: the emscripten module
 * (for `_malloc` and `HEAPU8`) and the FFI (for `QTS_NewArrayBuffer`, which wraps memory we own as an
 * ArrayBuffer without copying; QuickJS frees it with the context). `alsoShared` allocates a second,
 * unwrapped window for the frontend and the services (a tap's firmware gets the first as its own).
 */
function aliasWindow(ctx: QuickJSContext, size: number, alsoShared = false): { handle: QuickJSHandle; ptr: number; sharedPtr: number; heap: () => Uint8Array } {
  const internals = ctx as unknown as {
    module: { _malloc(n: number): number; HEAPU8: Uint8Array };
    ffi: { QTS_NewArrayBuffer(ctx: unknown, ptr: number, len: number): unknown };
    ctx: { value: unknown };
    memory: { heapValueHandle(ptr: unknown): QuickJSHandle };
  };
  const ptr = internals.module._malloc(size);
  if (!ptr) throw new Error(`cannot allocate a ${size}-byte window in the WASM heap`);
  internals.module.HEAPU8.fill(0, ptr, ptr + size);
  let sharedPtr = ptr;
  if (alsoShared) {
    sharedPtr = internals.module._malloc(size);
    if (!sharedPtr) throw new Error(`cannot allocate a second ${size}-byte window in the WASM heap`);
    internals.module.HEAPU8.fill(0, sharedPtr, sharedPtr + size);
  }
  const handle = internals.memory.heapValueHandle(internals.ffi.QTS_NewArrayBuffer(internals.ctx.value, ptr, size));
  return { handle, ptr, sharedPtr, heap: () => internals.module.HEAPU8 };
}

/** The firmware running in quickjs-emscripten. */
export class NodeRuntime {
  /** Calls stopped by the watchdog or the memory limit. */
  faults: { kind: string; detail: string }[] = [];
  /** Lines raised by the firmware, per line number. */
  raised = new Map<number, number>();
  /** Host calls made by the firmware, per HAL function (for benchmarks). */
  readonly hostCalls: Record<string, number> = {};
  private readonly rt: QuickJSRuntime;
  private readonly ctx: QuickJSContext;
  private readonly entry: QuickJSHandle;
  private readonly winPtr: number;
  /** The firmware's window: the shared one, or with a tap its own copy. */
  private readonly fwPtr: number;
  private readonly heap: () => Uint8Array;
  private view: Uint8Array;
  private fwView: Uint8Array;
  private readonly tap: HalTap | undefined;
  private deadline = Infinity;
  /** WASM heap size above which a running call is stopped as a memory fault (see `call`). */
  private heapCeiling = Infinity;
  private heapTripped = false;
  private disposed = false;
  private depth = 0;
  readonly streams: Record<string, HostStream>;
  private readonly handles: { kind: string; name: string; storage?: StorageHandle; stream?: HostStream; port?: SwitchPort; vsock?: HostVsock; bus?: I2cBus; lines?: GpioLines }[] = [];
  /** Resolvers of `storageSettled()` waiting for the next asynchronous storage completion. */
  private storageWaiters: (() => void)[] = [];
  /** Host sides of the board's vsock services (runtime/node/vsock.ts). */
  readonly vsock: Record<string, HostVsock>;
  /** Virtual switches behind the board's packet services (runtime/node/switch.ts). */
  readonly switches: Record<string, VirtualSwitch>;
  /** Packet, vsock and gpio service handles with news since the last `takePendingServices()` (for `bulkhead.onService`). */
  private readonly pendingServices = new Set<number>();
  readonly windowSize: number;
  private readonly log: (level: number, msg: string) => void;

  private constructor(mod: QuickJSWASMModule, private readonly opts: NodeRuntimeOptions) {
    const board = opts.board;
    this.windowSize = board.window.size;
    this.log = opts.log ?? ((level, msg) => level <= 1 && process.stderr.write(`[fw] ${msg}\n`));
    this.streams = { ...(opts.streams ?? {}) };
    this.switches = { ...(opts.switches ?? {}) };
    this.vsock = { ...(opts.vsock ?? {}) };
    for (const [name, s] of Object.entries(board.services)) {
      if (s.kind === 'stream' && !this.streams[name]) this.streams[name] = new MemoryStream();
      if (s.kind === 'vsock' && !this.vsock[name]) this.vsock[name] = new MemoryVsockHost();
    }
    this.rt = mod.newRuntime();
    this.rt.setMemoryLimit(board.limits.memoryBytes);
    this.rt.setMaxStackSize(512 * 1024);
    // The watchdog, and a guard for what QuickJS's own limit does not count: typed-array and
    // ArrayBuffer storage comes from the WASM heap, so a model that allocates buffers grows the heap.
    this.tap = opts.tap;
    const tap = this.tap;
    this.rt.setInterruptHandler(() => {
      if (cpuMs() > this.deadline) return true;
      if (tap?.stopRequested()) return true;
      if (this.heap().byteLength > this.heapCeiling) {
        this.heapTripped = true;
        return true;
      }
      return false;
    });
    this.ctx = this.rt.newContext();
    const win = aliasWindow(this.ctx, this.windowSize, tap !== undefined);
    this.winPtr = win.sharedPtr;
    this.fwPtr = win.ptr;
    this.heap = win.heap;
    this.view = this.heap().subarray(this.winPtr, this.winPtr + this.windowSize);
    this.fwView = this.heap().subarray(this.fwPtr, this.fwPtr + this.windowSize);
    if (opts.window) this.view.set(opts.window.subarray(0, this.windowSize));
    this.installHal(win.handle, board);
    tap?.attach({ ctx: this.ctx, boardJson: opts.boardJson ?? JSON.stringify(board), firmwareWindow: () => this.firmwareWindow, sharedWindow: () => this.window });
    const harden = this.ctx.evalCode(
      // fence(): the WASM heap is touched by one thread only (firmware and simulated frontend take
      // turns), so program order is memory order and the barrier is a no-op — defined inside QuickJS,
      // because a host call costs ~3.5 µs and the firmware fences several times per request. With a
      // tap it stays a host call: a trace must hold every HAL call, whichever runtime recorded it.
      (tap ? '' : 'globalThis.__hal.fence = function fence() {};') +
        'delete ArrayBuffer.prototype.transfer; delete ArrayBuffer.prototype.transferToFixedLength; delete ArrayBuffer.prototype.resize; Object.freeze(globalThis.__hal);',
      'harden.js',
      { type: 'global' },
    );
    this.ctx.unwrapResult(harden).dispose();
    const load = (): CallOutcome => {
      this.deadline = cpuMs() + 10_000; // evaluation of the bundle: generous, still bounded
      const r = this.ctx.evalCode(opts.bundle, 'firmware.js', { type: 'global' });
      this.deadline = Infinity;
      if (r.error) {
        const err = this.ctx.dump(r.error);
        r.error.dispose();
        return { value: 0, fault: { kind: 'exception', detail: JSON.stringify(err) } };
      }
      r.value.dispose();
      return { value: 0 };
    };
    const loaded = tap ? tap.call('(load)', [], load) : load();
    if (loaded.fault) throw new Error(`firmware failed to load: ${loaded.fault.detail}`);
    this.entry = this.ctx.getProp(this.ctx.global, 'bulkhead');
    this.heapCeiling = this.heap().byteLength + board.limits.memoryBytes;
    if (this.ctx.typeof(this.entry) !== 'object') throw new Error('firmware did not define globalThis.bulkhead');
  }

  /** Loads the module (once per process) and boots the bundle (without calling start). */
  static async create(opts: NodeRuntimeOptions): Promise<NodeRuntime> {
    return new NodeRuntime(await quickjsModule(), opts);
  }

  /** The window as the host sees it (re-derived if the WASM memory grew). */
  get window(): Uint8Array {
    if (this.view.byteLength === 0 || this.view.buffer !== this.heap().buffer) {
      this.view = this.heap().subarray(this.winPtr, this.winPtr + this.windowSize);
    }
    return this.view;
  }

  /** The window as the firmware sees it: `window` itself, or with a tap the firmware's own copy. */
  get firmwareWindow(): Uint8Array {
    if (this.fwView.byteLength === 0 || this.fwView.buffer !== this.heap().buffer) {
      this.fwView = this.heap().subarray(this.fwPtr, this.fwPtr + this.windowSize);
    }
    return this.fwView;
  }

  private installHal(windowHandle: QuickJSHandle, board: BoardConfig): void {
    const ctx = this.ctx;
    const hal = ctx.newObject();
    const num = (h: QuickJSHandle | undefined) => (h ? ctx.getNumber(h) : 0);
    const inWindow = (off: number, len: number) => Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= this.windowSize;
    const tap = this.tap;
    const fn = (name: string, impl: (...a: QuickJSHandle[]) => QuickJSHandle | number | undefined) => {
      const calls = this.hostCalls;
      calls[name] = 0;
      // With a tap every HAL function goes through it, generically: a new service is recorded and
      // replayed without code of its own. The watchdog does not count the tap's own work.
      const f = tap
        ? ctx.newFunction(name, (...args) => {
            calls[name]!++;
            const t0 = cpuMs();
            const r = tap.hal(name, args, () => impl(...args));
            this.deadline += cpuMs() - t0;
            return typeof r === 'number' ? ctx.newNumber(r) : r;
          })
        : ctx.newFunction(name, (...args) => {
            calls[name]!++;
            const r = impl(...args);
            return typeof r === 'number' ? ctx.newNumber(r) : r;
          });
      ctx.setProp(hal, name, f);
      f.dispose();
    };
    ctx.setProp(hal, 'abi', ctx.newNumber(5));
    ctx.setProp(hal, 'window', windowHandle);
    windowHandle.dispose();
    const bj = ctx.newString(this.opts.boardJson ?? JSON.stringify(board));
    ctx.setProp(hal, 'boardJson', bj);
    bj.dispose();
    fn('raise', (line) => {
      const l = num(line);
      this.raised.set(l, (this.raised.get(l) ?? 0) + 1);
      this.opts.onRaise(l);
      return undefined;
    });
    fn('now', () => performance.now());
    fn('log', (level, msg) => {
      this.log(num(level), msg ? ctx.getString(msg) : '');
      return undefined;
    });
    fn('setTimer', () => undefined);
    if (tap) fn('fence', () => undefined);
    const openService = (kind: string, nameH: QuickJSHandle | undefined): number => {
      const name = nameH ? ctx.getString(nameH) : '';
      const svc = board.services[name];
      if (!svc || svc.kind !== kind) return -ENOENT;
      if (kind === 'storage') {
        const st = this.opts.storage?.[name] ?? { path: String(svc['path'] ?? ''), readOnly: svc['readOnly'] === true };
        const io = st.io ?? svc['io'] ?? 'sync';
        if (io !== 'sync' && io !== 'async') {
          this.log(0, `storage ${name}: io must be "sync" or "async", not ${JSON.stringify(io)}`);
          return -EINVAL;
        }
        // O_DIRECT needs aligned buffers, which node's Buffers are not: the node runtime serves `direct` buffered.
        if (svc['direct'] === true) this.log(1, `storage ${name}: direct is a native-runtime option; the node runtime serves the image through the page cache`);
        try {
          const fd = fs.openSync(st.path, st.readOnly ? 'r' : 'r+');
          const storage: StorageHandle = { fd, readOnly: st.readOnly, size: fs.fstatSync(fd).size, async: io === 'async', inFlight: new Map(), done: [], closing: false };
          this.handles.push({ kind, name, storage });
        } catch (e) {
          this.log(0, `storage ${name}: cannot open ${st.path}: ${(e as Error).message}`);
          return -ENOENT;
        }
      } else if (kind === 'stream') {
        this.handles.push({ kind, name, stream: this.streams[name]! });
      } else if (kind === 'i2c') {
        try {
          this.handles.push({ kind, name, bus: new I2cBus(buildTargets(name, svc['targets'])) });
        } catch (e) {
          this.log(0, (e as Error).message);
          return -EINVAL;
        }
      } else if (kind === 'gpio') {
        const lines = svc['lines'];
        if (!Array.isArray(lines) || !lines.every((l) => typeof l === 'string')) return -EINVAL;
        const h = this.handles.length;
        this.handles.push({ kind, name, lines: new GpioLines(lines as string[], () => this.pendingServices.add(h)) });
      } else if (kind === 'packet') {
        const h = this.handles.length;
        this.handles.push({ kind, name, port: this.switch(String(svc['switch'] ?? 'sw0')).attach(name, () => this.pendingServices.add(h)) });
      } else if (kind === 'vsock') {
        const h = this.handles.length;
        const v = this.vsock[name]!;
        v.onNews = () => {
          this.pendingServices.add(h);
          if (this.depth === 0) this.opts.onServicePending?.();
        };
        this.handles.push({ kind, name, vsock: v });
      } else this.handles.push({ kind, name });
      return this.handles.length - 1;
    };
    const handle = (h: QuickJSHandle | undefined, kind: string) => {
      const x = this.handles[num(h)];
      return x && x.kind === kind ? x : null;
    };
    fn('entropyOpen', (n) => openService('entropy', n));
    fn('entropyRead', (h, off, len) => {
      const o = num(off);
      const l = num(len);
      if (!handle(h, 'entropy')) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      const dst = this.window.subarray(o, o + l);
      if (this.opts.entropy) this.opts.entropy(dst);
      else randomFillSync(dst);
      return l;
    });
    fn('streamOpen', (n) => openService('stream', n));
    fn('streamWrite', (h, off, len) => {
      const s = handle(h, 'stream');
      const o = num(off);
      const l = num(len);
      if (!s) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      return s.stream!.write(this.window.subarray(o, o + l));
    });
    fn('streamRead', (h, off, len) => {
      const s = handle(h, 'stream');
      const o = num(off);
      const l = num(len);
      if (!s) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      const got = s.stream!.read(l);
      this.window.set(got, o);
      return got.length;
    });
    fn('storageOpen', (n) => openService('storage', n));
    fn('storageInfo', (h) => {
      const s = handle(h, 'storage')?.storage;
      const arr = ctx.newArray();
      const info = [s ? s.size : -EBADF, s?.readOnly ? 1 : 0, s?.async ? NODE_STORAGE_DEPTH : 0, 512];
      for (let i = 0; i < info.length; i++) ctx.setProp(arr, i, ctx.newNumber(info[i]!));
      return arr;
    });
    const propNum = (o: QuickJSHandle, key: number | string) => {
      const v = ctx.getProp(o, key);
      const n = ctx.typeof(v) === 'number' ? ctx.getNumber(v) : NaN;
      v.dispose();
      return n;
    };
    const storageOf = (h: QuickJSHandle | undefined) => handle(h, 'storage')?.storage ?? null;
    const fileRangeOk = (s: StorageHandle, f: number, l: number) => Number.isInteger(f) && Number.isInteger(l) && f >= 0 && l >= 0 && f + l <= s.size;
    const io = (write: boolean) => (h?: QuickJSHandle, fileOff?: QuickJSHandle, off?: QuickJSHandle, len?: QuickJSHandle) => {
      const s = storageOf(h);
      const f = num(fileOff);
      const o = num(off);
      const l = num(len);
      if (!s) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      if (write && s.readOnly) return -EROFS;
      if (!fileRangeOk(s, f, l)) return -EIO;
      try {
        const buf = this.window;
        const n = write ? fs.writeSync(s.fd, buf, o, l, f) : fs.readSync(s.fd, buf, o, l, f);
        return n === l ? 0 : -EIO;
      } catch {
        return -EIO;
      }
    };
    fn('storageRead', io(false));
    fn('storageWrite', io(true));
    fn('storageFlush', (h) => {
      const s = storageOf(h);
      if (!s) return -EBADF;
      if (s.readOnly) return 0;
      try {
        fs.fdatasyncSync(s.fd);
        return 0;
      } catch {
        return -EIO;
      }
    });
    // Node has no fallocate: discard and write-zeroes both write zeroes (reads return zeroes either way).
    const zero = (h?: QuickJSHandle, fileOff?: QuickJSHandle, len?: QuickJSHandle) => {
      const s = storageOf(h);
      const f = num(fileOff);
      const l = num(len);
      if (!s) return -EBADF;
      if (s.readOnly) return -EROFS;
      if (!fileRangeOk(s, f, l)) return -EIO;
      const chunk = new Uint8Array(Math.min(l, 1 << 20));
      try {
        for (let done = 0; done < l; ) {
          const n = Math.min(chunk.length, l - done);
          fs.writeSync(s.fd, chunk, 0, n, f + done);
          done += n;
        }
        return 0;
      } catch {
        return -EIO;
      }
    };
    fn('storageDiscard', zero);
    fn('storageWriteZeroes', zero);
    // Asynchronous storage (docs/hal.md): node's asynchronous fs (libuv's thread pool) completes into this
    // process's event loop. The window lives in the WASM heap, which may move when it grows, so data goes
    // through a private buffer: a write's is copied at submit, a read's into the window when it finishes,
    // unless storageCancel came first.
    fn('storageSubmit', (h, tagH, opH, fileOff, rangesH, nH) => {
      const hi = num(h);
      const s = storageOf(h);
      const tag = num(tagH);
      const op = num(opH);
      const f = num(fileOff);
      const n = num(nH);
      if (!s || !s.async) return -EBADF;
      if (!(Number.isInteger(tag) && tag >= 0 && tag <= 0x7fffffff) || s.inFlight.has(tag)) return -EINVAL;
      if (s.inFlight.size >= NODE_STORAGE_DEPTH) return -EAGAIN;
      if (op === 2) {
        const req: StorageRequest = { cancelled: false };
        s.inFlight.set(tag, req);
        if (s.readOnly) queueMicrotask(() => this.storageDone(hi, s, tag, 0));
        else fs.fdatasync(s.fd, (err) => this.storageDone(hi, s, tag, err ? -EIO : 0));
        return 0;
      }
      if (op !== 0 && op !== 1) return -EINVAL;
      if (!(Number.isInteger(n) && n >= 1 && n <= MAX_STORAGE_RANGES) || !rangesH) return -EINVAL;
      if (op === 1 && s.readOnly) return -EROFS;
      const ranges: number[] = [];
      let total = 0;
      for (let i = 0; i < 2 * n; i += 2) {
        const o = propNum(rangesH, i);
        const l = propNum(rangesH, i + 1);
        if (!inWindow(o, l)) return -EFAULT;
        ranges.push(o, l);
        total += l;
      }
      if (!fileRangeOk(s, f, total)) return -EIO;
      const buf = Buffer.allocUnsafe(total);
      const req: StorageRequest = { cancelled: false };
      s.inFlight.set(tag, req);
      if (op === 1) {
        const win = this.window;
        for (let i = 0, p = 0; i < ranges.length; p += ranges[i + 1]!, i += 2) buf.set(win.subarray(ranges[i]!, ranges[i]! + ranges[i + 1]!), p);
        fs.write(s.fd, buf, 0, total, f, (err, wrote) => this.storageDone(hi, s, tag, err || wrote !== total ? -EIO : 0));
      } else {
        fs.read(s.fd, buf, 0, total, f, (err, got) => {
          const ok = !err && got === total;
          if (ok && !req.cancelled && !this.disposed) {
            const win = this.window;
            for (let i = 0, p = 0; i < ranges.length; p += ranges[i + 1]!, i += 2) win.set(buf.subarray(p, p + ranges[i + 1]!), ranges[i]!);
          }
          this.storageDone(hi, s, tag, ok ? 0 : -EIO);
        });
      }
      return 0;
    });
    fn('storageComplete', (h, out) => {
      const s = storageOf(h);
      if (!s || !s.async) return -EBADF;
      if (!out) return -EINVAL;
      const cap = Math.floor(propNum(out, 'length') / 2);
      const k = Math.min(cap, s.done.length / 2);
      for (let i = 0; i < 2 * k; i++) {
        const v = ctx.newNumber(s.done[i]!);
        ctx.setProp(out, i, v);
        v.dispose();
      }
      s.done.splice(0, 2 * k);
      return k;
    });
    fn('storageCancel', (h, tagH) => {
      const s = storageOf(h);
      if (!s || !s.async) return -EBADF;
      const req = s.inFlight.get(num(tagH));
      if (!req) return -ENOENT;
      req.cancelled = true; // a read's data is not copied; a write's was copied at submit and may still land on the file
      return 0;
    });
    fn('packetOpen', (n) => openService('packet', n));
    // Packets (docs/hal.md): frames cross by window offset; the switch keeps them between ports.
    fn('packetSend', (h, off, len, flags, cs, co) => {
      const p = handle(h, 'packet')?.port;
      const o = num(off);
      const l = num(len);
      if (!p) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      return p.send(this.window.subarray(o, o + l), num(flags), num(cs), num(co));
    });
    // With `out` (a Uint32Array of ≥ 7 elements) the seven values go into it and the answer is 1; `k`
    // (default 0) peeks the frame k places behind the next one.
    fn('packetPeek', (h, out, k) => {
      const p = handle(h, 'packet')?.port;
      if (!p) return -EBADF;
      if (!p.linkUp) return -ENETDOWN;
      const f = p.peek(k === undefined || ctx.typeof(k) === 'undefined' ? 0 : num(k));
      if (!f) return 0;
      const d = f.data;
      const into = out !== undefined && ctx.typeof(out) === 'object';
      const arr = into ? out : ctx.newArray();
      const info = [d.length, f.flags, f.csumStart, f.csumOffset, (d[0]! << 8) | d[1]!, ((d[2]! << 24) | (d[3]! << 16) | (d[4]! << 8) | d[5]!) >>> 0, flowHash(d)];
      for (let i = 0; i < info.length; i++) {
        const v = ctx.newNumber(info[i]!);
        ctx.setProp(arr, i, v);
        v.dispose();
      }
      return into ? 1 : arr;
    });
    fn('packetRecv', (h, off, len, flags) => {
      const p = handle(h, 'packet')?.port;
      const o = num(off);
      const l = num(len);
      if (!p) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      return p.recv(this.window.subarray(o, o + l), (num(flags) & PACKET_F_MORE) !== 0);
    });
    fn('packetPromote', (h, k) => {
      const p = handle(h, 'packet')?.port;
      if (!p) return -EBADF;
      if (!p.linkUp) return -ENETDOWN;
      return p.promote(num(k)) ? 1 : 0;
    });
    fn('packetSetOffloads', (h, offloads) => {
      const p = handle(h, 'packet')?.port;
      if (!p) return -EBADF;
      p.acceptsPartialCsum = (num(offloads) & 1) !== 0;
      return 0;
    });
    // vsock (docs/hal.md): connection ids and buffering are the HostVsock's; bytes cross by window offset.
    const vs = (h: QuickJSHandle | undefined) => handle(h, 'vsock')?.vsock ?? null;
    fn('vsockOpen', (n) => openService('vsock', n));
    fn('vsockConnect', (h, port) => vs(h)?.connect(num(port)) ?? -EBADF);
    fn('vsockEstablished', (h, id, lp) => vs(h)?.established(num(id), num(lp)) ?? -EBADF);
    const vsIo = (send: boolean) => (h?: QuickJSHandle, id?: QuickJSHandle, off?: QuickJSHandle, len?: QuickJSHandle) => {
      const v = vs(h);
      const o = num(off);
      const l = num(len);
      if (!v) return -EBADF;
      if (!inWindow(o, l)) return -EFAULT;
      const bytes = this.window.subarray(o, o + l);
      return send ? v.send(num(id), bytes) : v.recv(num(id), bytes);
    };
    fn('vsockSend', vsIo(true));
    fn('vsockRecv', vsIo(false));
    fn('vsockShutdown', (h, id, how) => vs(h)?.shutdown(num(id), num(how)) ?? -EBADF);
    fn('vsockClose', (h, id) => vs(h)?.close(num(id)) ?? -EBADF);
    fn('vsockPoll', (h, out) => {
      const v = vs(h);
      if (!v) return -EBADF;
      let len = 0;
      if (out && ctx.typeof(out) === 'object') {
        const lh = ctx.getProp(out, 'length');
        len = ctx.typeof(lh) === 'number' ? ctx.getNumber(lh) : 0;
        lh.dispose();
      }
      const e = v.poll(Math.floor(len / 3));
      for (let i = 0; i < e.length; i++) {
        const x = ctx.newNumber(e[i]!);
        ctx.setProp(out!, i, x);
        x.dispose();
      }
      return e.length / 3;
    });
    fn('i2cOpen', (n) => openService('i2c', n));
    // The transfer entries are read out of the QuickJS array once, into host memory, before anything moves.
    fn('i2cTransfer', (h, msgs, entries) => {
      const bus = handle(h, 'i2c')?.bus;
      if (!bus) return -EBADF;
      const n = num(entries);
      if (!msgs || ctx.typeof(msgs) !== 'object' || !(Number.isInteger(n) && n >= 0 && n <= 256)) return -EINVAL;
      const words = new Array<number>(4 * n);
      for (let i = 0; i < 4 * n; i++) {
        const v = ctx.getProp(msgs, i);
        words[i] = ctx.typeof(v) === 'number' ? ctx.getNumber(v) : NaN;
        v.dispose();
      }
      if (words.some((w) => !(Number.isInteger(w) && w >= 0))) return -EINVAL;
      return bus.transfer(this.window, words, n);
    });
    fn('gpioOpen', (n) => openService('gpio', n));
    fn('gpioSetDirection', (h, line, d) => handle(h, 'gpio')?.lines!.setDirection(num(line), num(d)) ?? -EBADF);
    fn('gpioSetValue', (h, line, v) => handle(h, 'gpio')?.lines!.setValue(num(line), num(v)) ?? -EBADF);
    fn('gpioSample', (h, out) => {
      const lines = handle(h, 'gpio')?.lines;
      if (!lines) return -EBADF;
      if (!out || ctx.typeof(out) !== 'object') return -EINVAL;
      const len = ctx.getProp(out, 'length');
      const n = ctx.typeof(len) === 'number' ? ctx.getNumber(len) : 0;
      len.dispose();
      if (n < lines.count) return -EINVAL;
      return lines.sample((i, v) => {
        const x = ctx.newNumber(v);
        ctx.setProp(out, i, x);
        x.dispose();
      });
    });
    ctx.setProp(ctx.global, '__hal', hal);
    hal.dispose();
  }

  /**
   * Calls a firmware entry point under the watchdog. A call stopped by the watchdog or the memory
   * limit is recorded and reported to the firmware; the return value is then onFault's (1 if work
   * is left).
   */
  call(name: EntryPoint | 'onFault', ...args: (number | string)[]): number | string {
    if (this.disposed) throw new Error('runtime disposed');
    const out = this.tap ? this.tap.call(name, args, () => this.invoke(name, args)) : this.invoke(name, args);
    if (!out.fault) return out.value;
    this.faults.push({ kind: out.fault.kind, detail: out.fault.detail });
    if (name === 'onFault') return 0;
    // The firmware quarantines the device that was running and says whether work is left.
    return this.call('onFault', out.fault.kind, `${name}: ${out.fault.detail}`);
  }

  /** One call into the bundle under the watchdog: its value, or the fault that stopped it. */
  private invoke(name: string, args: (number | string)[]): CallOutcome {
    const ctx = this.ctx;
    const f = ctx.getProp(this.entry, name);
    const handles = args.map((a) => (typeof a === 'number' ? ctx.newNumber(a) : ctx.newString(a)));
    this.deadline = cpuMs() + this.opts.board.limits.watchdogMs;
    this.depth++;
    const r = ctx.callFunction(f, this.entry, ...handles);
    this.depth--;
    this.deadline = Infinity;
    f.dispose();
    for (const h of handles) h.dispose();
    if (r.error) {
      const err = ctx.dump(r.error) as { name?: string; message?: string } | string;
      r.error.dispose();
      let message = typeof err === 'object' && err ? `${err.name ?? 'Error'}: ${err.message ?? ''}` : String(err);
      let kind = /interrupted/i.test(message) ? 'watchdog' : /out of memory|memory/i.test(message) || err === null ? 'memory' : 'exception';
      // QuickJS polls the interrupt handler only every few thousand back-edges, so a model that
      // allocates big buffers can outrun it; a stop whose heap is past the ceiling is a memory fault.
      if (this.heapTripped || this.heap().byteLength > this.heapCeiling) {
        // Freed memory is reused by malloc but the heap never shrinks: measure the next episode
        // from here, so one fault does not condemn every later call.
        kind = 'memory';
        message = `WASM heap grew past the board's memory limit (${this.opts.board.limits.memoryBytes} bytes)`;
        this.heapTripped = false;
        this.heapCeiling = this.heap().byteLength + this.opts.board.limits.memoryBytes;
      }
      return { value: 0, fault: { kind, detail: message } };
    }
    const v = ctx.dump(r.value);
    r.value.dispose();
    return { value: typeof v === 'number' || typeof v === 'string' ? v : 0 };
  }

  /** True while a call into the firmware runs (host callbacks must then not call in again). */
  get inCall(): boolean {
    return this.depth > 0;
  }

  /** An asynchronous storage request finished: queue its completion and tell whoever waits (`onService(h)` is due). */
  private storageDone(h: number, s: StorageHandle, tag: number, result: number): void {
    const req = s.inFlight.get(tag);
    s.inFlight.delete(tag);
    if (s.closing) {
      if (s.inFlight.size === 0) fs.close(s.fd, () => {});
      return;
    }
    if (this.disposed) return;
    if (req) s.done.push(tag, result);
    this.pendingServices.add(h);
    const w = this.storageWaiters;
    this.storageWaiters = [];
    for (const resolve of w) resolve();
  }

  /** Asynchronous storage requests in flight (their completions have not arrived yet). */
  storageInFlight(): number {
    let n = 0;
    for (const x of this.handles) n += x.storage?.inFlight.size ?? 0;
    return n;
  }

  /** Resolves at the next asynchronous storage completion, or after `timeoutMs`. */
  storageSettled(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.storageWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The virtual switch `name` (created on first use). */
  switch(name: string): VirtualSwitch {
    return (this.switches[name] ??= new VirtualSwitch(name));
  }

  /** Packet and vsock service handles with news since the last call (the caller then runs `onService`). */
  takePendingServices(): number[] {
    if (this.pendingServices.size === 0) return [];
    const hs = [...this.pendingServices];
    this.pendingServices.clear();
    return hs;
  }

  /** The lines of gpio service `name` (the host side: drive inputs, see outputs). */
  gpio(name: string): GpioLines {
    const h = this.handles.find((x) => x.kind === 'gpio' && x.name === name);
    if (!h) throw new Error(`no open gpio service ${name}`);
    return h.lines!;
  }

  /** The bus of i2c service `name` (its targets). */
  i2c(name: string): I2cBus {
    const h = this.handles.find((x) => x.kind === 'i2c' && x.name === name);
    if (!h) throw new Error(`no open i2c service ${name}`);
    return h.bus!;
  }

  /** Service handle of a named stream (for `onService`). */
  serviceHandle(name: string): number {
    return this.handles.findIndex((h) => h.name === name);
  }

  /** Memory the QuickJS context uses (bytes), as QuickJS counts it. */
  memoryUsed(): number {
    const dump = this.rt.computeMemoryUsage();
    const v = this.ctx.dump(dump) as { memory_used_size?: number };
    dump.dispose();
    return v.memory_used_size ?? 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const h of this.handles) {
      for (const t of h.bus?.targets ?? []) (t as { close?(): void }).close?.();
      const s = h.storage;
      if (!s) continue;
      // A request still in libuv's pool would otherwise run on whatever file reuses the number.
      if (s.inFlight.size > 0) s.closing = true;
      else fs.closeSync(s.fd);
    }
    this.entry.dispose();
    this.ctx.dispose();
    this.rt.dispose();
  }
}
