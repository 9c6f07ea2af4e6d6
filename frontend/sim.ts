/**
 * `bulkhead/sim`: the firmware bundle running in the node runtime (quickjs-emscripten) on a board,
 * with the frontend side exposed raw — window bytes, FIFO messages, lines, counters — so that the
 * frontend driver model and hostile tests can drive it. Everything is synchronous on the backend
 * side: a doorbell runs the backend until it is idle (or one pass at a time with `step()`); only an
 * asynchronous storage service (`io: "async"`) finishes later, and the port's `wait()` then waits for it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { BoardConfig, DeviceManifestEntry } from '../firmware/hal';
import { DEVICE_NEEDS_RESET } from '../firmware/virtio';
import type { HostStorage, HostStream } from '../runtime/node/runtime';
import type { HostVsock } from '../runtime/node/vsock';
import { MemoryVsockHost } from '../runtime/node/vsock';
import { MemoryStream, NodeRuntime } from '../runtime/node/runtime';
import { TraceRecorder } from '../runtime/node/trace';
import type { Frame } from '../runtime/node/switch';
import { FrontendBus } from './bus';
import type { FrontendOptions } from './device';
import { Frontend } from './device';
import type { TransportKind, WindowLayout } from './layout';
import { fifoPush, fifoTakeAll } from './fifo';
import { readLayout } from './layout';
import type { FrontendPort } from './port';

const here = dirname(fileURLToPath(import.meta.url));
/** The project root (this file lives in frontend/ as a source, in dist/ when bundled). */
export const PROJECT_ROOT = resolve(here, '..');

/** Loads a board by name (`host-sim`), path, or object. */
export function loadBoard(board: string | BoardConfig = 'host-sim'): BoardConfig {
  if (typeof board !== 'string') return structuredClone(board);
  const path = board.endsWith('.json') ? (isAbsolute(board) ? board : resolve(board)) : join(PROJECT_ROOT, 'boards', `${board}.json`);
  return JSON.parse(readFileSync(path, 'utf8')) as BoardConfig;
}

export interface SimOptions {
  /** Board name, path or object (default `host-sim`). */
  board?: string | BoardConfig;
  /** Replace the board's transport (docs/transport.md): `msg`, `regblock` or `mmio`. */
  transport?: TransportKind;
  /** Replace the board's device manifest. */
  devices?: DeviceManifestEntry[];
  /** Add or replace services of the board. */
  services?: BoardConfig['services'];
  /** Firmware source (default: dist/firmware.js built by `npm run build`). */
  bundle?: string;
  /** Log sink (default: warnings and errors are collected in `sim.logs`, not printed). */
  log?: (level: number, msg: string) => void;
  streams?: Record<string, HostStream>;
  storage?: Record<string, HostStorage>;
  entropy?: (dst: Uint8Array) => void;
  /** Host sides of vsock services (default: a MemoryVsockHost each, reached with `sim.vsock(name)`). */
  vsock?: Record<string, HostVsock>;
  /** Backend passes one doorbell may run before `kick()` gives up (default 100000). */
  maxPasses?: number;
  /**
   * The window's bytes when the firmware boots (default: zero): what a previous backend instance left,
   * for a restart on the same shared memory (docs/security.md, "A restarted backend"), e.g.
   * `previousSim.bytes`. The runtime puts it in place before the firmware starts.
   */
  window?: Uint8Array;
  /**
   * Record everything that enters the firmware into this `.bhtrace` file (docs/trace-format.md);
   * `dispose()` closes it. `bulkhead replay FILE` re-runs it on either runtime.
   */
  record?: string;
}

/** Backend counters: bus-wide and per device. */
export interface BackendStats {
  bus: Record<string, number>;
  devices: {
    devNum: number;
    type: string;
    status: number;
    needsReset: boolean;
    lastViolation: string;
    counters: Record<string, number>;
    queues: { size: number; enabled: boolean; live: boolean; inFlight: number }[];
  }[];
}

export class Sim {
  /** Lines raised towards the frontend, and doorbells the frontend rang. */
  readonly lines = { toFrontend: 0, fromFrontend: 0 };
  /** Backend passes run (each a call into the firmware). */
  passes = 0;
  readonly layout: WindowLayout;
  private pendingRaise = false;

  private constructor(
    /** Log lines of the firmware (level, message), unless a `log` option took them. */
    readonly logs: { level: number; msg: string }[],
    readonly runtime: NodeRuntime,
    readonly board: BoardConfig,
    private readonly maxPasses: number,
    /** The trace being recorded (`record` option), closed by `dispose()`. */
    readonly recorder: TraceRecorder | null = null,
  ) {
    runtime.call('start');
    this.layout = readLayout(this.bytes);
  }

  /** @internal */
  static async create(opts: SimOptions = {}): Promise<Sim> {
    const board = loadBoard(opts.board);
    if (opts.devices) board.devices = opts.devices;
    if (opts.services) board.services = { ...board.services, ...opts.services };
    if (opts.transport) board.transport = opts.transport;
    const bundle = opts.bundle ?? readFileSync(join(PROJECT_ROOT, 'dist', 'firmware.js'), 'utf8');
    let sim: Sim | null = null;
    const logs: { level: number; msg: string }[] = [];
    const recorder = opts.record ? await TraceRecorder.create({ path: opts.record, bundle }) : null;
    const runtime = await NodeRuntime.create({
      tap: recorder ?? undefined,
      bundle,
      board,
      onRaise: () => sim?.raised(),
      log: opts.log ?? ((level, msg) => level <= 2 && logs.push({ level, msg })),
      streams: opts.streams,
      storage: opts.storage,
      entropy: opts.entropy,
      vsock: opts.vsock,
      window: opts.window,
      onServicePending: () => sim?.runServices(),
    });
    if (opts.window) {
      if (opts.window.length !== runtime.window.length) {
        runtime.dispose();
        throw new Error(`window option has ${opts.window.length} bytes, board ${board.name}'s window ${runtime.window.length}`);
      }
    }
    sim = new Sim(logs, runtime, board, opts.maxPasses ?? 100_000, recorder);
    return sim;
  }

  private raised(): void {
    this.lines.toFrontend++;
    this.pendingRaise = true;
  }

  /** The window as the frontend sees it (the same bytes the firmware sees). */
  get bytes(): Uint8Array {
    return this.runtime.window;
  }


  /** Writes one raw message into the driver→device FIFO (no doorbell); false when it is full. Transport msg only. */
  send(msg: Uint8Array): boolean {
    this.msgOnly('send');
    return fifoPush(this.bytes, this.layout.fifoD2V, this.layout.slotSize, msg);
  }

  /** Takes every raw message from the device→driver FIFO (no doorbell, even if it was full). Transport msg only. */
  receive(): Uint8Array[] {
    this.msgOnly('receive');
    return fifoTakeAll(this.bytes, this.layout.fifoV2D, this.layout.slotSize).messages;
  }

  private msgOnly(what: string): void {
    if (this.layout.transport !== 'msg') throw new Error(`sim.${what}: raw virtio-msg FIFO access on a ${this.layout.transport} window (use the transport's driver side: frontend/regblock.ts, frontend/mmio.ts)`);
  }

  /** Rings the backend's doorbell and runs it until idle. */
  kick(): void {
    this.lines.fromFrontend++;
    let more = this.runtime.call('onInterrupt', this.board.lines.fromFrontend) === 1;
    this.passes++;
    for (let n = 0; more; n++) {
      if (n >= this.maxPasses) throw new Error(`backend still busy after ${this.maxPasses} passes for one doorbell`);
      more = this.step();
    }
    this.runServices();
  }

  /** Rings the backend's doorbell without running it (pair with `step()` to interleave writes). */
  ring(): void {
    this.lines.fromFrontend++;
  }

  /** Runs one backend pass; returns true if the backend has work left. */
  step(): boolean {
    this.passes++;
    return this.runtime.call('poll') === 1;
  }

  /** Tells the firmware a stream service has input and runs it until idle. */
  serviceReady(name: string): void {
    const h = this.runtime.serviceHandle(name);
    if (h < 0) throw new Error(`no open service ${name}`);
    let more = this.runtime.call('onService', h) === 1;
    for (let n = 0; more; n++) {
      if (n >= this.maxPasses) throw new Error(`backend still busy after ${this.maxPasses} passes`);
      more = this.step();
    }
    this.runServices();
  }

  /**
   * Runs `onService` for every packet port the switch delivered to, every storage with completions and
   * every vsock service with news, every gpio service whose lines the host moved, until the backend is idle (a MemoryVsockHost's host-side actions run
   * this by themselves).
   */
  runServices(): void {
    if (this.runtime.inCall) return;
    for (let n = 0; ; n++) {
      const hs = this.runtime.takePendingServices();
      if (hs.length === 0) return;
      for (const h of hs) {
        let more = this.runtime.call('onService', h) === 1;
        for (; more; n++) {
          if (n >= this.maxPasses) throw new Error(`backend still busy after ${this.maxPasses} passes delivering frames`);
          more = this.step();
        }
      }
    }
  }

  /**
   * A host test port `name` on virtual switch `sw` (docs/net.md): inject frames towards the devices (the
   * backend runs until idle), capture frames the switch sent to it, set a device port's link state.
   * With `guestCsum`, captured frames keep NEEDS_CSUM instead of being completed by the switch.
   */
  net(opts: { name?: string; sw?: string; guestCsum?: boolean } = {}) {
    const sw = this.runtime.switch(opts.sw ?? 'sw0');
    const name = opts.name ?? 'host0';
    const port = sw.port(name) ?? sw.attach(name);
    port.acceptsPartialCsum = opts.guestCsum === true;
    return {
      switch: sw,
      port,
      /** Sends a frame into the switch from this port; returns the flow hash or −errno. */
      inject: (data: Uint8Array, meta: { flags?: number; csumStart?: number; csumOffset?: number } = {}): number => {
        const r = port.send(data, meta.flags ?? 0, meta.csumStart ?? 0, meta.csumOffset ?? 0);
        this.runServices();
        return r;
      },
      /** Takes every frame queued towards this port. */
      capture: (): Frame[] => {
        const out: Frame[] = [];
        for (let f = port.peek(); f; f = port.peek()) {
          const data = new Uint8Array(f.data.length);
          port.recv(data, false);
          out.push({ data, flags: f.flags, csumStart: f.csumStart, csumOffset: f.csumOffset });
        }
        return out;
      },
      /** Sets the link of the switch port named `service` (a device's packet service) and runs the backend. */
      setLink: (service: string, up: boolean): void => {
        const p = sw.port(service);
        if (!p) throw new Error(`switch ${sw.name} has no port ${service}`);
        p.setLink(up);
        this.runServices();
      },
    };
  }

  /**
   * The host side of gpio service `name` (default `gpio0`): drive a line the frontend reads (the backend
   * runs until idle, so an interrupt it causes has been delivered), see what the frontend drives.
   */
  gpio(name = 'gpio0') {
    const lines = this.runtime.gpio(name);
    const line = (l: string | number): number => {
      const i = lines.find(l);
      if (i < 0) throw new Error(`gpio ${name} has no line ${String(l)} (lines: ${lines.names.map((n, k) => n || k).join(' ')})`);
      return i;
    };
    return {
      lines,
      /** Drives line `l` (a name or a number) to `value` and runs the backend. */
      set: (l: string | number, value: number): void => {
        lines.hostSet(line(l), value);
        this.runServices();
      },
      /** Line `l` as the host sees it: direction, level, the driver's output value, the host's input. */
      get: (l: string | number) => lines.state(line(l)),
      list: () => lines.list(),
    };
  }

  /** The backend's counters. */
  stats(): BackendStats {
    const faults = this.runtime.faults.length;
    const r = this.runtime.call('stats');
    if (typeof r !== 'string') {
      const f = this.runtime.faults.slice(faults).map((x) => `${x.kind}: ${x.detail}`).join('; ');
      throw new Error(`stats() gave no answer (${f || `it returned ${String(r)}`})`);
    }
    return JSON.parse(r) as BackendStats;
  }

  /** Device status of `devNum` as the backend holds it. */
  deviceStatus(devNum: number): number {
    return this.stats().devices[devNum]!.status;
  }

  /** True when the backend marked `devNum` DEVICE_NEEDS_RESET. */
  needsReset(devNum: number): boolean {
    return (this.deviceStatus(devNum) & DEVICE_NEEDS_RESET) !== 0;
  }

  /**
   * The host side of vsock service `name` (default `vsock0`): host programs listening on host ports and
   * host clients connecting to guest ports (runtime/node/vsock.ts). What they do runs the backend.
   */
  vsock(name = 'vsock0'): MemoryVsockHost {
    const v = this.runtime.vsock[name];
    if (!(v instanceof MemoryVsockHost)) throw new Error(`vsock service ${name} is not a memory host (services: ${Object.keys(this.runtime.vsock).join(', ') || 'none'})`);
    return v;
  }

  /** The host side of a console stream (default: the board's `console0`). */
  console(name = 'console0') {
    const s = this.runtime.streams[name];
    if (!(s instanceof MemoryStream)) throw new Error(`stream ${name} is not a memory stream`);
    return {
      /** Sends text or bytes towards the frontend. */
      input: (data: string | Uint8Array) => {
        s.push(typeof data === 'string' ? new TextEncoder().encode(data) : data);
        this.serviceReady(name);
      },
      /** Everything the frontend wrote so far. */
      output: () => new TextDecoder().decode(s.takeOutput()),
    };
  }

  /** A FrontendPort onto this simulator (for the frontend driver model). */
  get port(): FrontendPort {
    const sim = this;
    return {
      get bytes() {
        return sim.bytes;
      },
      kick: () => sim.kick(),
      // The backend runs on every doorbell until idle; only asynchronous storage finishes later, so a wait
      // with nothing raised waits for its next completion and lets the firmware take it (onService).
      wait: async (timeoutMs: number) => {
        if (!sim.pendingRaise && sim.runtime.storageInFlight() > 0) {
          await sim.runtime.storageSettled(timeoutMs);
          sim.runServices();
        }
        const r = sim.pendingRaise;
        sim.pendingRaise = false;
        return r;
      },
      close: () => {},
    };
  }

  /** Attaches the frontend driver model (`opts.ring`: the ring format its drivers ask for). */
  frontend(opts: FrontendOptions = {}): Promise<Frontend> {
    return Frontend.attach(this.port, opts);
  }

  dispose(): void {
    this.recorder?.close();
    this.runtime.dispose();
  }
}

/** Creates a simulator: the firmware on the node runtime, booted and ready (DESIGN §7). */
export function createSim(options: SimOptions = {}): Promise<Sim> {
  return Sim.create(options);
}

/** For tests that need a bus without the Frontend wrapper. */
export function rawBus(sim: Sim): FrontendBus {
  return new FrontendBus(sim.port);
}
