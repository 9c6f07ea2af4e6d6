/**
 * virtio-console — device ID 3, virtio 1.3 §5.3.
 * Queues: 0 receiveq (port 0: host input → driver), 1 transmitq (port 0: driver output → host).
 * Features: VIRTIO_CONSOLE_F_SIZE (console size in config; the host may resize, we send EVENT_CONFIG).
 * Config layout (§5.3.4): le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr — 12 bytes.
 * Not supported: VIRTIO_CONSOLE_F_MULTIPORT (one port only; max_nr_ports reads 1) and
 * VIRTIO_CONSOLE_F_EMERG_WRITE (emerg_wr is not writable).
 * Nothing is lost: output the stream cannot take yet stays in the chain until it can; input waits in
 * the stream until the driver posts a receive buffer.
 */
import type { Logger } from '../hal';
import type { StreamService } from '../services';
import { VIRTIO_ID_CONSOLE } from '../virtio';
import type { DescriptorChain, SplitQueue } from '../virtqueue/split';
import { VirtioDevice } from './device';

export const VIRTIO_CONSOLE_F_SIZE = 1n << 0n;
export const CONSOLE_CONFIG_SIZE = 12;
const RECEIVEQ = 0;
const TRANSMITQ = 1;

export interface ConsoleOptions {
  stream: StreamService;
  log: Logger;
  cols?: number;
  rows?: number;
}

/** Parses nothing from the guest: console data is opaque bytes. The config is ours. */
export function encodeConsoleConfig(cols: number, rows: number): Uint8Array {
  const b = new Uint8Array(CONSOLE_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint16(0, cols, true);
  v.setUint16(2, rows, true);
  v.setUint32(4, 1, true);
  return b;
}

export class ConsoleDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_CONSOLE;
  readonly name = 'console';
  readonly numQueues = 2;
  readonly features = VIRTIO_CONSOLE_F_SIZE;
  readonly configSize = CONSOLE_CONFIG_SIZE;
  private readonly stream: StreamService;
  private cols: number;
  private rows: number;
  /** Receive buffers popped but not yet filled (at most the queue size: they are in flight). */
  private rxHeld: DescriptorChain[] = [];
  /** A transmit chain the stream could not take whole yet, and how much of it went out. */
  private txHeld: { chain: DescriptorChain; sent: number } | null = null;
  private txBytes = 0;
  private rxBytes = 0;
  private rxEmpty = 0;

  constructor(opts: ConsoleOptions) {
    super(opts.log);
    this.stream = opts.stream;
    this.cols = opts.cols ?? 80;
    this.rows = opts.rows ?? 25;
  }

  readConfig(): Uint8Array {
    return encodeConsoleConfig(this.cols, this.rows);
  }

  /** The host terminal changed size: update the config and tell the driver. */
  resize(cols: number, rows: number): void {
    this.cols = cols & 0xffff;
    this.rows = rows & 0xffff;
    this.ctx?.configChanged();
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    if (i === RECEIVEQ) return this.receive(q, budget);
    if (i === TRANSMITQ) return this.transmit(q, budget);
    return false;
  }

  override onService(budget: number): boolean {
    const rxq = this.ctx?.queue(RECEIVEQ);
    const txq = this.ctx?.queue(TRANSMITQ);
    let more = false;
    if (txq) more = this.transmit(txq, budget) || more;
    if (rxq) more = this.receive(rxq, budget) || more;
    return more;
  }

  /** Host input into driver buffers: fill held buffers first, then pop more while input lasts. */
  private receive(q: SplitQueue, budget: number): boolean {
    for (let n = 0; n < budget; n++) {
      let chain = this.rxHeld.shift();
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
      const r = w.regions(w.remaining);
      let got = 0;
      for (let k = 0; k < r.length; k += 2) {
        const n1 = this.stream.read(r[k]!, r[k + 1]!);
        if (n1 <= 0) break;
        got += n1;
        if (n1 < r[k + 1]!) break;
      }
      if (got === 0) {
        this.rxHeld.unshift(chain); // no input now: keep the buffer for later
        return false;
      }
      this.rxBytes += got;
      q.pushUsed(chain, got);
    }
    return true;
  }

  /** Driver output to the host; a stream that would block keeps the chain until it has room. */
  private transmit(q: SplitQueue, budget: number): boolean {
    for (let n = 0; n < budget; n++) {
      let held = this.txHeld;
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
      const r = rd.regions(rd.remaining);
      for (let k = 0; k < r.length; k += 2) {
        const put = this.stream.write(r[k]!, r[k + 1]!);
        if (put > 0) held.sent += put;
        if (put < r[k + 1]!) {
          this.txHeld = held; // stream full (or failing): try again when it reports room
          return false;
        }
      }
      this.txHeld = null;
      this.txBytes += held.sent;
      q.pushUsed(held.chain, 0);
    }
    return true;
  }

  override queueReset(i: number): void {
    if (i === RECEIVEQ) this.rxHeld = [];
    if (i === TRANSMITQ) this.txHeld = null;
  }

  override reset(): void {
    super.reset();
    this.rxHeld = [];
    this.txHeld = null;
  }

  override counters(): Record<string, number> {
    return { txBytes: this.txBytes, rxBytes: this.rxBytes, rxEmptyBuffers: this.rxEmpty };
  }
}
