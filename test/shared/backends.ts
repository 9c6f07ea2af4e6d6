/**
 * The backends the shared suites run against, behind one interface:
 *
 *   sim     the bundle in quickjs-emscripten, in this process (frontend/sim.ts). Everything is
 *           synchronous: a doorbell runs the backend until it is idle.
 *   native  build/bulkhead-fw on a private ivshmem server (runtime/native/harness.mjs), across the
 *           process boundary. Everything is asynchronous: tests wait for answers and doorbells.
 *
 * Each runs on any transport (docs/transport.md): `onTransport(sim, 'mmio')` is the simulator with the
 * board's transport replaced; `sim` and `native` are virtio-msg. `b.peer()` is the transport's raw peer
 * (test/shared/raw-peer.ts), `b.msgPeer()` the virtio-msg one for behaviours of that wire only.
 *
 * A Backend gives the FrontendPort, the host side of every stream service, the backend's counters
 * (sim: `sim.stats()`; native: SIGUSR1 makes the firmware write `[fw] stats JSON` on stderr) and
 * its log. Simulator-only features (`step()`, `runtime.faults`, memory accounting) are reached
 * through `b.sim`, which is null on native: a suite that needs them says so and checks it.
 *
 * Each runtime comes as two kinds: `sim` / `native` (the drivers ask for split rings) and `simPacked` /
 * `nativePacked` (they ask for packed rings, VIRTIO_F_RING_PACKED); `b.frontend()` attaches the driver
 * model with the kind's ring format, so a suite written once runs with either (and `onTransport` keeps
 * the ring format).
 */
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BoardConfig, DeviceManifestEntry } from '../../firmware/hal';
import type { RingFormat } from '../../frontend/device';
import { Frontend } from '../../frontend/device';
import type { TransportKind, WindowLayout } from '../../frontend/layout';
import { readLayout } from '../../frontend/layout';
import type { FrontendPort } from '../../frontend/port';
import type { BackendStats, Sim } from '../../frontend/sim';
import { createSim } from '../../frontend/sim';
import type { NativeInstance } from '../../runtime/native/harness.mjs';
import { nativeBuilt, ROOT, startNative } from '../../runtime/native/harness.mjs';
import type { GpioLineState } from '../../runtime/native/gpio-control.mjs';
import { GpioControl } from '../../runtime/native/gpio-control.mjs';
import type { Peer } from './raw-peer';
import { BusPeer, RawPeer } from './raw-peer';

export type BackendName = 'sim' | 'native';
export type { TransportKind };
export const TRANSPORTS: readonly TransportKind[] = ['msg', 'regblock', 'mmio'];

export interface StartOptions {
  /** Board name, path or object (default host-sim). */
  board?: string | BoardConfig;
  /** Replaces the board's device manifest. */
  devices?: DeviceManifestEntry[];
  /** Adds or replaces services of the board (a stream with backing `memory` gets a host side either way). */
  services?: BoardConfig['services'];
}

/** The host end of a stream service (a console port). */
export interface StreamHost {
  /** Sends text or bytes towards the frontend (sim: the backend has run; native: the socket took them). */
  input(data: string | Uint8Array): Promise<void>;
  /**
   * Everything the frontend wrote so far, taken. With `expect`, first waits (bounded) until at least
   * as many bytes as `expect` has arrived; either way the backend is settled first, so bytes it
   * already wrote are included.
   */
  output(expect?: string): Promise<string>;
}

/** The host side of a gpio service: drive lines the frontend reads, see what it drives. */
export interface GpioHost {
  /** Drives `line` (a name or a number); sim: the backend has run; native: the backend acknowledged it. */
  set(line: string | number, value: number): Promise<void>;
  get(line: string | number): Promise<GpioLineState>;
  list(): Promise<GpioLineState[]>;
}

export interface Backend {
  readonly name: BackendName;
  readonly transport: TransportKind;
  /** The ring format `frontend()`'s drivers ask for. */
  readonly ring: RingFormat;
  /** The frontend driver model attached to this backend's port, asking for the kind's ring format. */
  frontend(): Promise<Frontend>;
  readonly port: FrontendPort;
  readonly layout: WindowLayout;
  /** The window (read it again after anything async: a simulator's heap may move). */
  readonly bytes: Uint8Array;
  /** The simulator, for simulator-only checks; null on native. */
  readonly sim: Sim | null;
  /** A raw peer of this backend's transport on its port. */
  peer(): Peer;
  /** The raw virtio-msg peer (throws on another transport: for behaviours of that wire only). */
  msgPeer(): RawPeer;
  /** The host side of stream service `name` (default console0). */
  console(name?: string): StreamHost;
  /** The host side of gpio service `name` (default gpio0): sim its API, native its control socket. */
  gpio(name?: string): GpioHost;
  /** The backend's counters as of now (call after a barrier: RawPeer requests and notifies are). */
  stats(): Promise<BackendStats>;
  /** The firmware's log messages so far. */
  logs(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface BackendKind {
  /** How test titles name it: `sim`, `native`, `sim/mmio`, `native/packed`, `sim/regblock/packed` … */
  readonly name: string;
  /** The same as `name`. */
  readonly label: string;
  readonly runtime: BackendName;
  readonly transport: TransportKind;
  readonly ring: RingFormat;
  start(opts?: StartOptions): Promise<Backend>;
}

/** `kind` with the board's transport replaced by `transport` (same ring format). */
export function onTransport(kind: BackendKind, transport: TransportKind): BackendKind {
  const make = kind.runtime === 'sim' ? simKind : nativeKind;
  return make(transport, kind.ring);
}

/** The raw peer of `transport` on `port`. */
function peerOf(transport: TransportKind, port: FrontendPort, name: string, timeoutMs: number): Peer {
  return transport === 'msg' ? new RawPeer(port, { name, timeoutMs }) : new BusPeer(port, transport, { name, timeoutMs });
}

function msgPeerOf(transport: TransportKind, port: FrontendPort, name: string, timeoutMs: number): RawPeer {
  if (transport !== 'msg') throw new Error(`[${name}] a virtio-msg peer on a ${transport} window`);
  return new RawPeer(port, { name, timeoutMs });
}

const kindName = (runtime: BackendName, transport: TransportKind, ring: RingFormat) =>
  [runtime, ...(transport === 'msg' ? [] : [transport]), ...(ring === 'split' ? [] : [ring])].join('/');

/** How long a native wait may take before the test fails (a sim never waits: its work is done on kick). */
export const NATIVE_TIMEOUT_MS = 5000;

function hostSim(): BoardConfig {
  return JSON.parse(readFileSync(join(ROOT, 'boards', 'host-sim.json'), 'utf8')) as BoardConfig;
}

const utf8 = new TextEncoder();

// ---- sim -------------------------------------------------------------------------------------------

function simKind(transport: TransportKind, ring: RingFormat = 'split'): BackendKind {
  const name = kindName('sim', transport, ring);
  return {
  name,
  label: name,
  runtime: 'sim',
  transport,
  ring,
  async start(opts = {}) {
    const s = await createSim({ board: opts.board, devices: opts.devices, services: opts.services, transport });
    return {
      name: 'sim',
      transport,
      ring,
      frontend: () => Frontend.attach(s.port, { ring }),
      port: s.port,
      layout: s.layout,
      get bytes() {
        return s.bytes;
      },
      sim: s,
      peer: () => peerOf(transport, s.port, name, 0),
      msgPeer: () => msgPeerOf(transport, s.port, name, 0),
      console(name = 'console0') {
        const c = s.console(name);
        return {
          input: async (data) => c.input(data),
          output: async () => c.output(),
        };
      },
      gpio(name = 'gpio0') {
        const g = s.gpio(name);
        return { set: async (l, v) => g.set(l, v), get: async (l) => g.get(l), list: async () => g.list() };
      },
      stats: async () => s.stats(),
      logs: async () => s.logs.map((l) => l.msg),
      stop: async () => s.dispose(),
    };
  },
  };
}

export const sim: BackendKind = simKind('msg');
export const simPacked: BackendKind = simKind('msg', 'packed');

// ---- native ----------------------------------------------------------------------------------------

/** Fails (never skips) when the native build is missing. */
export function requireNative(): void {
  if (!nativeBuilt()) throw new Error('[native] the native runtime is not built (build/bulkhead-fw, ivshmem server, port addon): run npm run setup:native');
}

/** One client on a unix-socket stream backing; collects what the firmware writes. */
class SocketStream {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private wake: (() => void) | null = null;

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.bytes += d.length;
      this.wake?.();
    });
    sock.on('error', () => {});
  }

  static open(path: string): Promise<SocketStream> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      sock.once('error', reject);
      sock.once('connect', () => resolve(new SocketStream(sock)));
    });
  }

  /** Waits until `n` bytes are buffered or `timeoutMs` passed. */
  async waitBytes(n: number, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.bytes < n && Date.now() < end) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, end - Date.now());
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
    }
  }

  take(): string {
    const s = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    this.bytes = 0;
    return s;
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.sock.write(data, (e) => (e ? reject(e) : resolve())));
  }
}

/** Reads the firmware's stderr line by line: log messages and `[fw] stats` answers. */
class FirmwareLog {
  private partial = '';
  readonly messages: string[] = [];
  private readonly stats: string[] = [];
  private wake: (() => void) | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly n: NativeInstance) {
    n.fw.stderr!.on('data', (d: Buffer) => this.feed(String(d)));
  }

  private feed(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('[fw] stats ')) this.stats.push(line.slice(11));
      else this.messages.push(line.replace(/^\[fw\] (?:error: |warn: |debug: )?/, ''));
    }
    if (lines.length) this.wake?.();
  }

  /** SIGUSR1 → one stats line. Serialised: signals of the same kind coalesce. */
  request(): Promise<BackendStats> {
    const next = this.chain.then(() => this.requestNow());
    this.chain = next.catch(() => {});
    return next;
  }

  private async requestNow(): Promise<BackendStats> {
    const seen = this.stats.length;
    if (this.n.fw.exitCode !== null || this.n.fw.signalCode !== null) throw new Error(`[native] firmware exited: ${this.n.stderr().trim()}`);
    this.n.fw.kill('SIGUSR1');
    const end = Date.now() + NATIVE_TIMEOUT_MS;
    while (this.stats.length === seen) {
      const left = end - Date.now();
      if (left <= 0 || this.n.fw.exitCode !== null) throw new Error(`[native] no stats line from the firmware within ${NATIVE_TIMEOUT_MS} ms (SIGUSR1); stderr: ${this.n.stderr().trim()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
    }
    // The stats line came after every earlier write of the firmware (its socket output too); let
    // the rest of this event-loop turn deliver those before anyone looks.
    await new Promise((r) => setImmediate(r));
    return JSON.parse(this.stats[this.stats.length - 1]!) as BackendStats;
  }
}

/** The board the native runtime gets: host-sim (or `board`) with the same overrides as the simulator. */
function nativeBoard(opts: StartOptions, transport: TransportKind): BoardConfig {
  const b = opts.board === undefined || opts.board === 'host-sim' ? hostSim() : typeof opts.board === 'string' ? (JSON.parse(readFileSync(opts.board, 'utf8')) as BoardConfig) : structuredClone(opts.board);
  if (opts.devices) b.devices = opts.devices;
  if (opts.services) b.services = { ...b.services, ...opts.services };
  b.transport = transport;
  return b;
}

function nativeKind(transport: TransportKind, ring: RingFormat = 'split'): BackendKind {
  const name = kindName('native', transport, ring);
  return {
  name,
  label: name,
  runtime: 'native',
  transport,
  ring,
  async start(opts = {}) {
    requireNative();
    const board = nativeBoard(opts, transport);
    const dir = mkdtempSync(join(tmpdir(), 'bulkhead-shared-'));
    // Every memory stream gets a unix socket the test holds the client end of.
    const sockets: Record<string, string> = {};
    for (const [name, svc] of Object.entries(board.services)) {
      if (svc.kind === 'stream' && (svc as { backing?: string }).backing === 'memory') sockets[name] = join(dir, `${name}.sock`);
    }
    // Every gpio service gets a control socket the test talks to.
    const controls: Record<string, string> = {};
    for (const [name, svc] of Object.entries(board.services)) if (svc.kind === 'gpio') controls[name] = join(dir, `${name}.ctl`);
    const services = Object.fromEntries([...Object.entries(sockets), ...Object.entries(controls)].map(([k, p]) => [k, `unix:${p}`]));
    let n: NativeInstance;
    try {
      n = await startNative({ board, services });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`[native] start failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const log = new FirmwareLog(n);
    const streams: Record<string, SocketStream> = {};
    const port = n.port!;
    try {
      for (const [name, path] of Object.entries(sockets)) streams[name] = await SocketStream.open(path);
      // The firmware accepts on its next loop turn: two PING round trips later it has (output
      // written before it accepted would be dropped, as docs/native.md says).
      if (Object.keys(sockets).length) await peerOf(transport, port, name, NATIVE_TIMEOUT_MS).barrier();
    } catch (e) {
      n.kill();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const layout = readLayout(port.bytes);
    const gpioClients: Record<string, Promise<GpioControl>> = {};
    const control = (name: string) => {
      if (!controls[name]) throw new Error(`[native] no gpio service ${name}`);
      return (gpioClients[name] ??= GpioControl.connect(controls[name]!));
    };
    return {
      name: 'native',
      transport,
      ring,
      frontend: () => Frontend.attach(port, { ring }),
      port,
      layout,
      bytes: port.bytes,
      sim: null,
      peer: () => peerOf(transport, port, name, NATIVE_TIMEOUT_MS),
      msgPeer: () => msgPeerOf(transport, port, name, NATIVE_TIMEOUT_MS),
      console(name = 'console0') {
        const s = streams[name];
        if (!s) throw new Error(`[native] stream ${name} has no host side (only streams with backing "memory" get one)`);
        return {
          input: (data) => s.write(data),
          async output(expect) {
            if (expect !== undefined) await s.waitBytes(utf8.encode(expect).length, NATIVE_TIMEOUT_MS);
            await log.request(); // settle: everything the firmware wrote before now has arrived
            return s.take();
          },
        };
      },
      gpio(name = 'gpio0') {
        return {
          set: async (l, v) => (await control(name)).set(l, v),
          get: async (l) => (await control(name)).get(l),
          list: async () => (await control(name)).list(),
        };
      },
      stats: () => log.request(),
      async logs() {
        await log.request();
        return [...log.messages];
      },
      async stop() {
        for (const s of Object.values(streams)) s.sock.destroy();
        for (const c of Object.values(gpioClients)) (await c.catch(() => null))?.close();
        try {
          const r = await n.stop();
          if (r.code !== 0) throw new Error(`[native] firmware exit ${r.code ?? r.signal} on SIGTERM: ${r.stderr.trim()}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  },
  };
}

export const native: BackendKind = nativeKind('msg');
export const nativePacked: BackendKind = nativeKind('msg', 'packed');

export const backends: Record<BackendName, BackendKind> = { sim, native };
