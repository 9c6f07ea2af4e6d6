/**
 * virtio-console — device ID 3, virtio 1.3 §5.3.
 * Queues: 0 receiveq(port 0), 1 transmitq(port 0); with VIRTIO_CONSOLE_F_MULTIPORT also 2 control
 * receiveq (device → driver control messages), 3 control transmitq (driver → device), and for port
 * n ≥ 1: 2+2n receiveq(port n), 3+2n transmitq(port n) (§5.3.2).
 * Features: VIRTIO_CONSOLE_F_SIZE (cols/rows in config; a resize sends EVENT_CONFIG);
 * VIRTIO_CONSOLE_F_MULTIPORT, offered only when the manifest gives more than one port.
 * Config layout (§5.3.4): le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr — 12 bytes.
 * Each port is backed by its own byte-stream service; port 0 is the console port (CONSOLE_PORT), the
 * others are named (PORT_NAME) and appear in Linux as /dev/vport*.
 * Not supported: VIRTIO_CONSOLE_F_EMERG_WRITE (emerg_wr is not writable); hot-unplug (DEVICE_REMOVE):
 * the ports are those of the manifest.
 * Nothing is lost: output the stream cannot take yet stays in its chain until it can; input waits in
 * the stream until the driver posts a receive buffer.
 */
import type { Logger } from '../hal';
import type { StreamService } from '../services';
import { VIRTIO_ID_CONSOLE } from '../virtio';
import type { DescriptorChain } from '../virtqueue/chain';
import { CHAIN_RANGES } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';
import { VirtioDevice } from './device';

export const VIRTIO_CONSOLE_F_SIZE = 1n << 0n;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1n << 1n;
export const CONSOLE_CONFIG_SIZE = 12;

/** Control events (§5.3.6.2). */
export const VIRTIO_CONSOLE_DEVICE_READY = 0;
export const VIRTIO_CONSOLE_DEVICE_ADD = 1;
export const VIRTIO_CONSOLE_DEVICE_REMOVE = 2;
export const VIRTIO_CONSOLE_PORT_READY = 3;
export const VIRTIO_CONSOLE_CONSOLE_PORT = 4;
export const VIRTIO_CONSOLE_RESIZE = 5;
export const VIRTIO_CONSOLE_PORT_OPEN = 6;
export const VIRTIO_CONSOLE_PORT_NAME = 7;

/** Ports a device may have (queues: 2 + 2 × ports). */
export const CONSOLE_MAX_PORTS = 16;
/** Control message header: le32 id, le16 event, le16 value. */
export const CONTROL_HEADER = 8;
/** Longest port name we send (PORT_NAME carries it after the header). */
export const CONSOLE_MAX_NAME = 64;

export interface ConsolePortOptions {
  stream: StreamService;
  /** Name for PORT_NAME (ports ≥ 1); port 0 is the console. */
  name?: string;
}

export interface ConsoleOptions {
  /** Port 0 (the console). */
  stream: StreamService;
  log: Logger;
  cols?: number;
  rows?: number;
  /** Ports 1.. (enables VIRTIO_CONSOLE_F_MULTIPORT). */
  extraPorts?: ConsolePortOptions[];
}

/** The config space is ours; nothing in it is parsed from the guest. */
export function encodeConsoleConfig(cols: number, rows: number, maxPorts: number): Uint8Array {
  const b = new Uint8Array(CONSOLE_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint16(0, cols, true);
  v.setUint16(2, rows, true);
  v.setUint32(4, maxPorts, true);
  return b;
}

/** A control message: header and optional payload (PORT_NAME). */
export function encodeControl(id: number, event: number, value: number, data?: Uint8Array): Uint8Array {
  const b = new Uint8Array(CONTROL_HEADER + (data?.length ?? 0));
  const v = new DataView(b.buffer);
  v.setUint32(0, id, true);
  v.setUint16(4, event, true);
  v.setUint16(6, value, true);
  if (data) b.set(data, CONTROL_HEADER);
  return b;
}

/** Parses a driver control message header from its private copy; null if too short. */
export function parseControl(b: Uint8Array): { id: number; event: number; value: number } | null {
  if (b.length < CONTROL_HEADER) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { id: v.getUint32(0, true), event: v.getUint16(4, true), value: v.getUint16(6, true) };
}

/** Port names come from the board and are printable ASCII (checked when the device is built). */
function asciiBytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0x7f);
}

/** One port's data path state. */
class Port {
  /** Receive buffers popped but not yet filled (at most the queue size: they are in flight). */
  rxHeld: DescriptorChain[] = [];
  /** A transmit chain the stream could not take whole yet, and how much of it went out. */
  txHeld: { chain: DescriptorChain; sent: number } | null = null;
  txBytes = 0;
  rxBytes = 0;
  guestOpen = false;
  constructor(
    readonly id: number,
    readonly stream: StreamService,
    readonly name: string | undefined,
  ) {}
  reset(): void {
    this.rxHeld = [];
    this.txHeld = null;
    this.guestOpen = false;
  }
}

export class ConsoleDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly name = 'console';
  readonly numQueues: number;
  readonly features: bigint;
  readonly configSize = CONSOLE_CONFIG_SIZE;
  private readonly ports: Port[];
  private cols: number;
  private rows: number;
  private multiport = false;
  /** Control messages waiting for a control receive buffer (bounded by CONTROL_BACKLOG). */
  private controlOut: Uint8Array[] = [];
  private readonly controlBacklog: number;
  private rxEmpty = 0;
  private controlBad = 0;
  private controlDropped = 0;

  constructor(opts: ConsoleOptions) {
    super(opts.log);
    const extra = opts.extraPorts ?? [];
    if (extra.length + 1 > CONSOLE_MAX_PORTS) throw new Error(`console: at most ${CONSOLE_MAX_PORTS} ports`);
    for (const p of extra) {
      if (p.name !== undefined && !/^[\x21-\x7e]{1,64}$/.test(p.name)) throw new Error(`console: port name ${JSON.stringify(p.name)} must be 1..64 printable ASCII characters`);
    }
    this.ports = [new Port(0, opts.stream, undefined), ...extra.map((p, i) => new Port(i + 1, p.stream, p.name?.slice(0, CONSOLE_MAX_NAME)))];
    this.numQueues = this.ports.length > 1 ? 2 + 2 * this.ports.length : 2;
    this.features = VIRTIO_CONSOLE_F_SIZE | (this.ports.length > 1 ? VIRTIO_CONSOLE_F_MULTIPORT : 0n);
    // Per port: DEVICE_ADD, CONSOLE_PORT or PORT_NAME, PORT_OPEN, RESIZE; plus slack for a repeated handshake.
    this.controlBacklog = 4 * this.ports.length + 4;
    this.cols = opts.cols ?? 80;
    this.rows = opts.rows ?? 25;
  }

  readConfig(): Uint8Array {
    return encodeConsoleConfig(this.cols, this.rows, this.ports.length);
  }

  override activate(ctx: import('./device').DeviceContext): void {
    super.activate(ctx);
    this.multiport = (ctx.features & VIRTIO_CONSOLE_F_MULTIPORT) !== 0n;
  }

  /** The host terminal changed size: update the config and tell the driver. */
  resize(cols: number, rows: number): void {
    this.cols = cols & 0xffff;
    this.rows = rows & 0xffff;
    this.ctx?.configChanged();
  }

  /** Queue index → [port, rx?] for data queues, or null for the control queues. */
  private portOf(i: number): { port: Port; rx: boolean } | null {
    if (i < 2) return { port: this.ports[0]!, rx: i === 0 };
    if (!this.multiport || i < 4) return null;
    const port = this.ports[(i - 2) >> 1];
    return port ? { port, rx: i % 2 === 0 } : null;
  }

  private rxQueue(p: Port): number {
    return p.id === 0 ? 0 : 2 + 2 * p.id;
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    if (this.multiport && i === 2) return this.flushControl(q, budget);
    if (this.multiport && i === 3) return this.controlIn(q, budget);
    const pq = this.portOf(i);
    if (!pq) return false;
    return pq.rx ? this.receive(pq.port, q, budget) : this.transmit(pq.port, q, budget);
  }

  override onService(budget: number): boolean {
    let more = false;
    const live = this.multiport ? this.ports : [this.ports[0]!];
    for (const p of live) {
      const txq = this.ctx?.queue(this.rxQueue(p) + 1);
      const rxq = this.ctx?.queue(this.rxQueue(p));
      if (txq) more = this.transmit(p, txq, budget) || more;
      if (rxq) more = this.receive(p, rxq, budget) || more;
    }
    return more;
  }

  // ---- control queues (MULTIPORT) ----------------------------------------------------------------

  private sendControl(msg: Uint8Array): void {
    if (this.controlOut.length >= this.controlBacklog) {
      this.controlDropped++; // only a driver repeating its handshake gets here
      return;
    }
    this.controlOut.push(msg);
    this.ctx?.kick(2);
  }

  /** Driver → device control messages (§5.3.6.2). */
  private controlIn(q: Virtqueue, budget: number): boolean {
    return this.drain(q, budget, (chain) => {
      const rd = chain.reader();
      const msg = parseControl(rd.read(Math.min(rd.remaining, CONTROL_HEADER)));
      if (!msg) {
        this.controlBad++;
        return 0;
      }
      const port = this.ports[msg.id];
      switch (msg.event) {
        case VIRTIO_CONSOLE_DEVICE_READY:
          if (msg.value !== 1) break;
          for (const p of this.ports) this.sendControl(encodeControl(p.id, VIRTIO_CONSOLE_DEVICE_ADD, 0));
          break;
        case VIRTIO_CONSOLE_PORT_READY:
          if (!port) {
            this.controlBad++;
            break;
          }
          if (msg.value !== 1) break;
          if (port.id === 0) this.sendControl(encodeControl(0, VIRTIO_CONSOLE_CONSOLE_PORT, 1));
          else if (port.name) this.sendControl(encodeControl(port.id, VIRTIO_CONSOLE_PORT_NAME, 0, asciiBytes(port.name)));
          this.sendControl(encodeControl(port.id, VIRTIO_CONSOLE_PORT_OPEN, 1)); // the host side is always open
          break;
        case VIRTIO_CONSOLE_PORT_OPEN:
          if (!port) {
            this.controlBad++;
            break;
          }
          port.guestOpen = msg.value === 1;
          break;
        default:
          this.controlBad++;
      }
      return 0;
    });
  }

  /** Device → driver control messages into the driver's control receive buffers. */
  private flushControl(q: Virtqueue, budget: number): boolean {
    for (let n = 0; n < budget && this.controlOut.length > 0; n++) {
      const chain = q.pop();
      if (!chain) return false;
      const msg = this.controlOut.shift()!;
      const w = chain.writer();
      if (w.remaining < msg.length) {
        this.controlBad++; // a control buffer too small for the message: it cannot be delivered
        q.pushUsed(chain, 0);
        continue;
      }
      w.write(msg);
      q.pushUsed(chain, w.written);
    }
    return this.controlOut.length > 0 && q.hasAvailable();
  }

  // ---- data queues ----------------------------------------------------------------------------

  /** Host input into driver buffers: fill held buffers first, then pop more while input lasts. */
  private receive(p: Port, q: Virtqueue, budget: number): boolean {
    for (let n = 0; n < budget; n++) {
      let chain = p.rxHeld.shift();
      if (!chain) {
        const popped = q.pop();
        if (!popped) return q.armAvailEvent();
        chain = popped;
      }
      if (chain.writableBytes === 0) {
        // A receive buffer with no room (a driver bug): hand it back empty rather than hold it
        // forever in front of the usable ones.
        this.rxEmpty++;
        q.pushUsed(chain, 0);
        continue;
      }
      const w = chain.writer();
      const nr = w.take(w.remaining);
      const r = CHAIN_RANGES;
      let got = 0;
      for (let k = 0; k < 2 * nr; k += 2) {
        const n1 = p.stream.read(r[k]!, r[k + 1]!);
        if (n1 <= 0) break;
        got += n1;
        if (n1 < r[k + 1]!) break;
      }
      if (got === 0) {
        p.rxHeld.unshift(chain); // no input now: keep the buffer for later
        return false;
      }
      p.rxBytes += got;
      q.pushUsed(chain, got);
    }
    return true;
  }

  /** Driver output to the host; a stream that would block keeps the chain until it has room. */
  private transmit(p: Port, q: Virtqueue, budget: number): boolean {
    for (let n = 0; n < budget; n++) {
      let held = p.txHeld;
      if (!held) {
        const chain = q.pop();
        if (!chain) {
          if (q.armAvailEvent()) continue;
          return false;
        }
        held = { chain, sent: 0 };
      }
      const rd = held.chain.reader();
      rd.skip(held.sent);
      const nr = rd.take(rd.remaining);
      const r = CHAIN_RANGES;
      for (let k = 0; k < 2 * nr; k += 2) {
        const put = p.stream.write(r[k]!, r[k + 1]!);
        if (put > 0) held.sent += put;
        if (put < r[k + 1]!) {
          p.txHeld = held; // stream full (or failing): try again when it reports room
          return false;
        }
      }
      p.txHeld = null;
      p.txBytes += held.sent;
      q.pushUsed(held.chain, 0);
    }
    return true;
  }

  override queueReset(i: number): void {
    if (this.multiport && i === 2) this.controlOut = [];
    const pq = this.portOf(i);
    if (!pq) return;
    if (pq.rx) pq.port.rxHeld = [];
    else pq.port.txHeld = null;
  }

  override reset(): void {
    super.reset();
    this.multiport = false;
    this.controlOut = [];
    for (const p of this.ports) p.reset();
  }

  override counters(): Record<string, number> {
    const c: Record<string, number> = { txBytes: 0, rxBytes: 0, rxEmptyBuffers: this.rxEmpty };
    for (const p of this.ports) {
      c['txBytes']! += p.txBytes;
      c['rxBytes']! += p.rxBytes;
    }
    if (this.ports.length > 1) {
      c['controlBad'] = this.controlBad;
      c['controlDropped'] = this.controlDropped;
      c['portsOpen'] = this.ports.filter((p) => p.guestOpen).length;
    }
    return c;
  }
}
