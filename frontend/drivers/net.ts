/**
 * Frontend driver model for virtio-net (virtio 1.3 §5.1): one queue pair (transmitq1/receiveq1) plus the
 * control queue, MAC and link status from the config space, MRG_RXBUF reassembly, checksum offload on
 * transmit (NEEDS_CSUM) and the control commands for receive filtering and multiqueue.
 */
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import {
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_CTRL_MAC_ADDR,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_RX_EXTRA,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
} from '../../firmware/devices/net';
import type { DriverDevice } from '../device';
import type { DriverQueue } from '../vring';

const HDR = 12;

/** A received frame and the header fields that came with it. */
export interface NetFrame {
  data: Uint8Array;
  flags: number;
  csumStart: number;
  csumOffset: number;
  numBuffers: number;
}

export interface NetDriverOptions {
  /** Feature bits wanted (default: everything the model handles, without MQ). */
  features?: bigint;
  /** Queue size of every queue (default 256). */
  queueSize?: number;
  /** Receive buffer size including the header (default 1526: one 1500-MTU frame; smaller with MRG_RXBUF makes sense). */
  rxBufferSize?: number;
}

export class NetDriver {
  private rx!: DriverQueue<number>;
  private tx!: DriverQueue<number>;
  private ctrlq: DriverQueue<number> | null = null;
  private rxBufs: number[] = [];
  private rxBufSize = 1526;
  private txBufs: number[] = [];
  private txFree: number[] = [];
  private txBufSize = 0;
  private partial: { parts: Uint8Array[]; left: number; hdr: DataView } | null = null;
  private ctrlBuf = 0;
  /** MAC address and MTU read from the config space at open. */
  mac: Uint8Array = new Uint8Array(6);
  mtu = 1500;
  readonly counters = { txFrames: 0, rxFrames: 0, txFull: 0 };

  private constructor(readonly dev: DriverDevice) {}

  /** Negotiates, sets up receiveq1/transmitq1 (and the control queue), posts receive buffers, DRIVER_OK. */
  static async open(dev: DriverDevice, opts: NetDriverOptions = {}): Promise<NetDriver> {
    const d = new NetDriver(dev);
    const wanted =
      opts.features ??
      VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_MTU | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_RX_EXTRA | VIRTIO_NET_F_CTRL_MAC_ADDR;
    const f = await dev.negotiate(wanted | VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX);
    const size = opts.queueSize ?? 256;
    const { data } = await dev.getConfig(0, 12);
    const v = new DataView(data.buffer);
    d.mac = data.slice(0, 6);
    if (f & VIRTIO_NET_F_MTU) d.mtu = v.getUint16(10, true);
    const pairs = f & VIRTIO_NET_F_MQ ? v.getUint16(8, true) : 1;
    d.rx = await dev.setupQueue(0, size);
    d.tx = await dev.setupQueue(1, size);
    if (f & VIRTIO_NET_F_CTRL_VQ) {
      d.ctrlq = await dev.setupQueue(2 * pairs, 16);
      d.ctrlBuf = dev.allocOwned(512);
    }
    d.rxBufSize = opts.rxBufferSize ?? 1526;
    for (let i = 0; i < size; i++) {
      const off = dev.allocOwned(d.rxBufSize);
      d.rxBufs[i] = off;
      d.rx.add([], [{ off, len: d.rxBufSize }], i);
    }
    d.txBufSize = HDR + d.mtu + 32; // a little beyond the largest legal frame, so tests can send oversized ones
    for (let i = 0; i < size; i++) {
      d.txBufs[i] = dev.allocOwned(d.txBufSize);
      d.txFree.push(i);
    }
    await dev.driverOk();
    await d.rx.kick();
    return d;
  }

  private get bytes(): Uint8Array {
    return this.dev.bus.port.bytes;
  }

  /** Link state from the config STATUS field (up when STATUS was not negotiated, §5.1.4). */
  async linkUp(): Promise<boolean> {
    if (!(this.dev.features & VIRTIO_NET_F_STATUS)) return true;
    const { data } = await this.dev.getConfig(6, 2);
    return (data[0]! & 1) === 1;
  }

  /** Re-reads the MAC from the config space. */
  async readMac(): Promise<Uint8Array> {
    this.mac = (await this.dev.getConfig(0, 6)).data;
    return this.mac;
  }

  private reapTx(): void {
    this.tx.reap();
    for (const [i] of this.tx.done) this.txFree.push(i);
    this.tx.done.clear();
  }

  /**
   * Queues one frame for transmit (header + frame bounced into a pool buffer); no doorbell until `flush`.
   * `csum` asks for checksum offload (NEEDS_CSUM, needs VIRTIO_NET_F_CSUM). Returns false when the ring is full.
   */
  queue(frame: Uint8Array, csum?: { start: number; offset: number }, raw?: Uint8Array): boolean {
    if (this.txFree.length === 0) this.reapTx();
    const i = this.txFree.pop();
    if (i === undefined) {
      this.counters.txFull++;
      return false;
    }
    const off = this.txBufs[i]!;
    const b = this.bytes;
    const hdr = raw ?? new Uint8Array(HDR);
    if (!raw && csum) {
      const v = new DataView(hdr.buffer);
      hdr[0] = 1;
      v.setUint16(6, csum.start, true);
      v.setUint16(8, csum.offset, true);
    }
    if (hdr.length + frame.length > this.txBufSize) throw new Error(`frame of ${frame.length} bytes exceeds the transmit buffer`);
    b.set(hdr, off);
    b.set(frame, off + hdr.length);
    this.tx.add([{ off, len: hdr.length + frame.length }], [], i);
    this.counters.txFrames++;
    return true;
  }

  /** Rings the device for queued frames (and reaps completed ones). */
  async flush(): Promise<void> {
    await this.tx.kick();
    this.reapTx();
  }

  /** Sends frames (waiting for ring space as needed). */
  async send(frames: Uint8Array[], csum?: { start: number; offset: number }): Promise<void> {
    for (const f of frames) {
      while (!this.queue(f, csum)) {
        await this.flush();
        if (this.txFree.length === 0) await this.dev.bus.until(() => (this.reapTx(), this.txFree.length > 0), 5000, () => 'net: transmit ring stays full');
      }
    }
    await this.flush();
  }

  /** Collects received frames (reassembling MRG_RXBUF ones) and re-posts the buffers. */
  async receive(): Promise<NetFrame[]> {
    this.dev.bus.poll();
    this.rx.reap();
    const out: NetFrame[] = [];
    const b = this.bytes;
    for (const [i, len] of this.rx.done) {
      const off = this.rxBufs[i]!;
      if (this.partial) {
        this.partial.parts.push(b.slice(off, off + len));
        if (--this.partial.left === 0) this.finish(out);
      } else {
        const hdr = new DataView(b.slice(off, off + HDR).buffer);
        const n = hdr.getUint16(10, true);
        this.partial = { parts: [b.slice(off + HDR, off + len)], left: n - 1, hdr };
        if (this.partial.left <= 0) this.finish(out);
      }
      this.rx.add([], [{ off, len: this.rxBufSize }], i);
    }
    const reposted = this.rx.done.size > 0;
    this.rx.done.clear();
    if (reposted) await this.rx.kick();
    this.counters.rxFrames += out.length;
    return out;
  }

  private finish(out: NetFrame[]): void {
    const p = this.partial!;
    this.partial = null;
    const total = p.parts.reduce((a, x) => a + x.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const x of p.parts) {
      data.set(x, at);
      at += x.length;
    }
    out.push({ data, flags: p.hdr.getUint8(0), csumStart: p.hdr.getUint16(6, true), csumOffset: p.hdr.getUint16(8, true), numBuffers: p.hdr.getUint16(10, true) });
  }

  /** Sends a control command (§5.1.6.5); returns the ack (0 VIRTIO_NET_OK, 1 VIRTIO_NET_ERR). */
  async ctrl(cls: number, cmd: number, data: Uint8Array = new Uint8Array(0)): Promise<number> {
    const q = this.ctrlq;
    if (!q) throw new Error('net: VIRTIO_NET_F_CTRL_VQ not negotiated');
    const n = 2 + data.length;
    if (n + 1 > 512) throw new Error('net: control command too long for the model');
    const b = this.bytes;
    b[this.ctrlBuf] = cls;
    b[this.ctrlBuf + 1] = cmd;
    b.set(data, this.ctrlBuf + 2);
    b[this.ctrlBuf + n] = 0xff;
    q.add([{ off: this.ctrlBuf, len: n }], [{ off: this.ctrlBuf + n, len: 1 }], 1);
    await q.kick();
    const used = await q.complete(1);
    return used >= 1 ? b[this.ctrlBuf + n]! : -1;
  }

  /** VIRTIO_NET_CTRL_RX_* (promisc 0, allmulti 1, alluni 2, nomulti 3, nouni 4, nobcast 5). */
  rxMode(cmd: number, on: boolean): Promise<number> {
    return this.ctrl(0, cmd, Uint8Array.of(on ? 1 : 0));
  }

  /** VIRTIO_NET_CTRL_MAC_TABLE_SET with unicast and multicast tables. */
  setMacTable(uni: Uint8Array[], multi: Uint8Array[]): Promise<number> {
    const d = new Uint8Array(8 + 6 * (uni.length + multi.length));
    const v = new DataView(d.buffer);
    v.setUint32(0, uni.length, true);
    uni.forEach((m, i) => d.set(m, 4 + 6 * i));
    const at = 4 + 6 * uni.length;
    v.setUint32(at, multi.length, true);
    multi.forEach((m, i) => d.set(m, at + 4 + 6 * i));
    return this.ctrl(1, 0, d);
  }
}
