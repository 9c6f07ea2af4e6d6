/**
 * Frontend driver model for virtio-vsock (virtio 1.3 §5.10), after Linux's vmw_vsock_virtio_transport
 * (6.1): rx buffers of a 44-byte header descriptor and a 4096-byte payload descriptor, tx packets of
 * a header and up to 64 KiB of payload, eight 4-byte event buffers; stream sockets with the credit
 * rules of virtio_transport_common (a packet carries buf_alloc/fwd_cnt; a CREDIT_UPDATE goes out when
 * the reader freed space the device does not know of and less than 64 KiB of it appears free), connect
 * from either side, SHUTDOWN/RST as Linux answers them, and TRANSPORT_RESET resetting every connected
 * socket and re-reading guest_cid while listeners stay. It checks what a driver can: a device that
 * sends beyond the credit it was given is counted (`creditOverruns`), never trusted silently.
 */
import { encodeVsockHeader, parseVsockHeader } from '../../firmware/devices/vsock';
import type { VsockHeader } from '../../firmware/devices/vsock';
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_VSOCK_EVENT_TRANSPORT_RESET,
  VIRTIO_VSOCK_F_NO_IMPLIED_STREAM,
  VIRTIO_VSOCK_F_STREAM,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_CREDIT_REQUEST,
  VIRTIO_VSOCK_OP_CREDIT_UPDATE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_OP_RESPONSE,
  VIRTIO_VSOCK_OP_RST,
  VIRTIO_VSOCK_OP_RW,
  VIRTIO_VSOCK_OP_SHUTDOWN,
  VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE,
  VIRTIO_VSOCK_SHUTDOWN_F_SEND,
  VIRTIO_VSOCK_TYPE_STREAM,
  VMADDR_CID_HOST,
} from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { DriverQueue } from '../vring';

const HDR = VIRTIO_VSOCK_HDR_SIZE;
/** Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE and VIRTIO_VSOCK_DEFAULT_BUF_SIZE. */
export const VSOCK_DRIVER_MAX_PKT = 64 * 1024;
export const VSOCK_DRIVER_BUF_ALLOC = 256 * 1024;
const SHUT_BOTH = VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND;

export interface VsockDriverOptions {
  /** Entries of each queue (default 128). */
  queueSize?: number;
  /** Payload bytes of each rx buffer (default 4096, Linux's VIRTIO_VSOCK_DEFAULT_RX_BUF_SIZE). */
  rxBufferSize?: number;
  /** Tx packets in flight at once (default 8, each a header and a 64 KiB payload buffer). */
  txSlots?: number;
  /** Receive buffer space per socket the driver advertises (default 256 KiB). */
  bufAlloc?: number;
  /** Event buffers posted (default 8, as Linux). */
  eventBuffers?: number;
  /** Features asked for (default VERSION_1 | ACCESS_PLATFORM | EVENT_IDX | VIRTIO_VSOCK_F_STREAM). */
  features?: bigint;
}

type Packet = Omit<VsockHeader, 'srcCid' | 'len'> & { data?: Uint8Array };

/** Bytes as a queue of chunks: what a socket received, and what its application wrote and is not sent yet. */
class Chunks {
  private chunks: Uint8Array[] = [];
  bytes = 0;
  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.bytes += b.length;
  }
  /** Takes the first `n` (≤ bytes) bytes. */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let p = 0; p < n; ) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - p);
      out.set(c.subarray(0, k), p);
      p += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.bytes -= n;
    return out;
  }
}

/** A stream socket of the model. */
export class VsockSocket {
  /** `connecting` (REQUEST sent), `connected`, `closed` (RST, reset, or a finished close). */
  state: 'connecting' | 'connected' | 'closed' = 'connecting';
  /** Why it closed, as errno names: ECONNREFUSED (the connect was refused), ECONNRESET. */
  error: string | null = null;
  /** SHUTDOWN flags the device sent (the host will not receive / send). */
  peerShutdown = 0;
  /** Bytes received in total, and bytes the application wrote in total. */
  received = 0;
  written = 0;
  /** @internal credit state (§5.10.6.3) */
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  txCnt = 0;
  fwdCnt = 0;
  lastFwdCnt = 0;
  shutSent = 0;
  private readonly rxq = new Chunks();
  /** @internal bytes the application wrote that are not packets yet */
  readonly txq = new Chunks();
  /** @internal SHUTDOWNs waiting for the data before them: (bytes written before it, flags) pairs */
  shutAfter: number[] = [];

  constructor(
    private readonly drv: VsockDriver,
    readonly localPort: number,
    readonly peerCid: number,
    readonly peerPort: number,
  ) {}

  /** Bytes the device may still send us before it must wait (our buf_alloc minus what is queued). */
  get credit(): number {
    return Math.max(0, this.peerBufAlloc - ((this.txCnt - this.peerFwdCnt) >>> 0));
  }

  /** Queues bytes for sending (packets go out as credit allows, on `drv.pump()`); returns their count. */
  send(data: Uint8Array | string): number {
    const b = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    if (this.state !== 'connected' || this.shutSent & VIRTIO_VSOCK_SHUTDOWN_F_SEND) throw new Error(`vsock ${this.localPort}→${this.peerPort}: not connected for sending (${this.state}${this.error ? `, ${this.error}` : ''})`);
    this.txq.push(b.slice());
    this.written += b.length;
    return b.length;
  }

  /** Sends bytes and waits until all of them left as packets (credit permitting). */
  async write(data: Uint8Array | string, timeoutMs = 5000): Promise<void> {
    this.send(data);
    await this.drv.until(() => this.txPending === 0 || this.state === 'closed', timeoutMs, () => `vsock ${this.localPort}→${this.peerPort}: ${this.txPending} bytes not sent within ${timeoutMs} ms (credit ${this.credit})`);
    if (this.txPending) throw new Error(`vsock ${this.localPort}→${this.peerPort}: closed with ${this.txPending} bytes unsent (${this.error})`);
  }

  /** Bytes received so far that the application has not read. */
  get rxQueued(): number {
    return this.rxq.bytes;
  }

  /** Bytes the application wrote that did not leave as packets yet. */
  get txPending(): number {
    return this.txq.bytes;
  }

  /** Takes up to `max` received bytes (the freed space may send a CREDIT_UPDATE, as Linux). */
  read(max = Infinity): Uint8Array {
    const n = Math.min(max, this.rxQueued);
    const out = this.rxq.take(n);
    this.fwdCnt = (this.fwdCnt + n) >>> 0;
    if (n > 0) this.drv.consumed(this);
    return out;
  }

  /** Waits for `n` bytes (or fewer if the peer shut down or reset first) and takes them. */
  async readExactly(n: number, timeoutMs = 5000): Promise<Uint8Array> {
    await this.drv.until(() => this.rxQueued >= n || this.state === 'closed' || (this.peerShutdown & VIRTIO_VSOCK_SHUTDOWN_F_SEND) !== 0, timeoutMs, () => `vsock ${this.localPort}→${this.peerPort}: ${this.rxQueued} of ${n} bytes within ${timeoutMs} ms`);
    return this.read(n);
  }

  /** Half-close: SHUTDOWN with `flags` (VIRTIO_VSOCK_SHUTDOWN_F_*), after the bytes queued before it. */
  shutdown(flags: number): void {
    const f = flags & SHUT_BOTH & ~this.shutSent;
    if (!f || this.state !== 'connected') return;
    this.shutSent |= f;
    this.drv.queueShutdown(this, f);
  }

  /** Asks the device for its credit (CREDIT_REQUEST); the answer is a CREDIT_UPDATE. */
  creditRequest(): void {
    this.drv.queueControl(this, VIRTIO_VSOCK_OP_CREDIT_REQUEST);
  }

  /** Clean close (§5.10.6.5): SHUTDOWN both ways and wait for the device's RST; RST ourselves on timeout. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.state === 'closed') return;
    this.shutdown(SHUT_BOTH);
    try {
      await this.drv.until(() => this.state === 'closed', timeoutMs, () => 'no RST');
    } catch {
      this.drv.reset(this);
    }
  }

  /** @internal */
  deliver(data: Uint8Array): void {
    this.rxq.push(data);
    this.received += data.length;
  }
}

/** Guest sockets listening on a port; device connections to it wait in `pending`. */
export class VsockListener {
  readonly pending: VsockSocket[] = [];
  constructor(
    private readonly drv: VsockDriver,
    readonly port: number,
  ) {}

  /** The next connection to this port (waits for one). */
  async accept(timeoutMs = 5000): Promise<VsockSocket> {
    await this.drv.until(() => this.pending.length > 0, timeoutMs, () => `vsock: no connection to port ${this.port} within ${timeoutMs} ms`);
    return this.pending.shift()!;
  }
}

export class VsockDriver {
  /** guest_cid read from the config space (again after a TRANSPORT_RESET). */
  guestCid = 0;
  readonly counters = { rxPackets: 0, txPackets: 0, transportResets: 0, rstReceived: 0, rstSent: 0, creditUpdatesSent: 0, creditOverruns: 0, droppedPackets: 0, shortRxBuffers: 0 };
  private rx!: DriverQueue<number>;
  private tx!: DriverQueue<number>;
  private evq!: DriverQueue<number>;
  private rxBufs: { hdr: number; data: number }[] = [];
  private rxSize = 4096;
  private txSlots: { hdr: number; data: number }[] = [];
  private txFree: number[] = [];
  private evBufs: number[] = [];
  private readonly bufAlloc: number;
  private readonly sockets = new Map<string, VsockSocket>();
  private readonly listeners = new Map<number, VsockListener>();
  /** Control packets waiting for a tx slot (replies first, as Linux's send_pkt_list). */
  private readonly control: Packet[] = [];
  private nextPort = 49152;
  private rr = 0;

  private constructor(
    readonly dev: DriverDevice,
    opts: VsockDriverOptions,
  ) {
    this.bufAlloc = opts.bufAlloc ?? VSOCK_DRIVER_BUF_ALLOC;
  }

  /** Negotiates, reads guest_cid, sets up rx/tx/event queues, posts rx and event buffers, DRIVER_OK. */
  static async open(dev: DriverDevice, opts: VsockDriverOptions = {}): Promise<VsockDriver> {
    const d = new VsockDriver(dev, opts);
    await dev.negotiate(opts.features ?? VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX | VIRTIO_VSOCK_F_STREAM);
    await d.readCid();
    const size = opts.queueSize ?? 128;
    d.rx = await dev.setupQueue(0, size);
    d.tx = await dev.setupQueue(1, size);
    d.evq = await dev.setupQueue(2, Math.max(8, opts.eventBuffers ?? 8));
    await dev.driverOk();
    // Linux's virtio_vsock_vqs_start: rx buffers until the ring is full, then the event buffers.
    d.rxSize = opts.rxBufferSize ?? 4096;
    for (let i = 0; i < size >> 1; i++) {
      d.rxBufs[i] = { hdr: dev.allocOwned(HDR, 4), data: dev.allocOwned(d.rxSize) };
      d.postRx(i);
    }
    for (let i = 0; i < (opts.txSlots ?? 8); i++) {
      d.txSlots[i] = { hdr: dev.allocOwned(HDR, 4), data: dev.allocOwned(VSOCK_DRIVER_MAX_PKT) };
      d.txFree.push(i);
    }
    await d.rx.kick();
    await d.postEventBuffers(opts.eventBuffers ?? 8);
    return d;
  }

  /** Posts `n` more event buffers (4 bytes each) and kicks the event queue. */
  async postEventBuffers(n: number): Promise<void> {
    for (let k = 0; k < n; k++) {
      const i = this.evBufs.length;
      this.evBufs[i] = this.dev.allocOwned(4, 4);
      this.evq.add([], [{ off: this.evBufs[i]!, len: 4 }], i);
    }
    await this.evq.kick();
  }

  /** The features the device offered and the driver took. */
  get features(): bigint {
    return this.dev.features;
  }

  private async readCid(): Promise<void> {
    const { data } = await this.dev.getConfig(0, 8);
    this.guestCid = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
  }

  private get bytes(): Uint8Array {
    return this.dev.bus.port.bytes;
  }

  private postRx(i: number): void {
    const b = this.rxBufs[i]!;
    this.rx.add([], [{ off: b.hdr, len: HDR }, { off: b.data, len: this.rxSize }], i);
  }

  private key(localPort: number, peerPort: number): string {
    return `${localPort}:${peerPort}`;
  }

  /** Connects to `port` on `cid` (default the host); resolves once connected, throws with the errno on refusal. */
  async connect(port: number, opts: { cid?: number; localPort?: number; timeoutMs?: number } = {}): Promise<VsockSocket> {
    const local = opts.localPort ?? this.nextPort++;
    const s = new VsockSocket(this, local, opts.cid ?? VMADDR_CID_HOST, port >>> 0);
    this.sockets.set(this.key(local, s.peerPort), s);
    this.control.push(this.packet(s, VIRTIO_VSOCK_OP_REQUEST));
    await this.until(() => s.state !== 'connecting', opts.timeoutMs ?? 5000, () => `vsock connect to port ${port}: no answer`);
    if (s.state !== 'connected') throw new Error(`vsock connect to port ${port}: ${s.error}`);
    return s;
  }

  /** Listens on guest port `port`: REQUESTs to it are answered with RESPONSE (as a Linux listener). */
  listen(port: number): VsockListener {
    const l = new VsockListener(this, port >>> 0);
    this.listeners.set(l.port, l);
    return l;
  }

  /** The socket of a local/peer port pair, if any. */
  socket(localPort: number, peerPort: number): VsockSocket | undefined {
    return this.sockets.get(this.key(localPort, peerPort));
  }

  private packet(s: VsockSocket, op: number, flags = 0, data?: Uint8Array): Packet {
    return { dstCid: s.peerCid, srcPort: s.localPort, dstPort: s.peerPort, type: VIRTIO_VSOCK_TYPE_STREAM, op, flags, bufAlloc: this.bufAlloc, fwdCnt: s.fwdCnt, data };
  }

  /** @internal the application read: Linux sends a CREDIT_UPDATE when less than one max packet of space seems free */
  consumed(s: VsockSocket): void {
    if (this.bufAlloc - ((s.fwdCnt - s.lastFwdCnt) >>> 0) < VSOCK_DRIVER_MAX_PKT && s.state === 'connected') {
      this.control.push(this.packet(s, VIRTIO_VSOCK_OP_CREDIT_UPDATE));
      this.counters.creditUpdatesSent++;
    }
  }

  /** @internal a SHUTDOWN after the data written so far */
  queueShutdown(s: VsockSocket, flags: number): void {
    s.shutAfter.push(s.written, flags);
  }

  /** @internal */
  queueControl(s: VsockSocket, op: number): void {
    this.control.push(this.packet(s, op));
  }

  /** @internal forcibly disconnects (RST) */
  reset(s: VsockSocket): void {
    if (s.state === 'closed') return;
    this.control.push(this.packet(s, VIRTIO_VSOCK_OP_RST));
    this.counters.rstSent++;
    this.closeSocket(s, null);
  }

  private closeSocket(s: VsockSocket, error: string | null): void {
    s.state = 'closed';
    if (error && !s.error) s.error = error;
    this.sockets.delete(this.key(s.localPort, s.peerPort));
  }

  /**
   * Processes what the device completed (rx packets, events, tx buffers), re-posts buffers, sends what
   * credit and tx slots allow, and kicks the queues that have news.
   */
  async pump(): Promise<void> {
    this.dev.bus.poll();
    this.tx.reap();
    for (const [slot] of this.tx.done) this.txFree.push(slot);
    this.tx.done.clear();
    this.rx.reap();
    const got = [...this.rx.done];
    this.rx.done.clear();
    for (const [i, len] of got) {
      const b = this.rxBufs[i]!;
      if (len < HDR || len > HDR + this.rxSize) {
        this.counters.droppedPackets++; // Linux drops short/long packets
      } else {
        const h = parseVsockHeader(this.bytes.subarray(b.hdr, b.hdr + HDR));
        const data = this.bytes.slice(b.data, b.data + Math.min(h.len, len - HDR));
        this.receive(h, data);
      }
      this.postRx(i);
    }
    this.evq.reap();
    const evs = [...this.evq.done];
    this.evq.done.clear();
    for (const [i, len] of evs) {
      if (len === 4 && new DataView(this.bytes.buffer, this.bytes.byteOffset + this.evBufs[i]!).getUint32(0, true) === VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) await this.transportReset();
      this.evq.add([], [{ off: this.evBufs[i]!, len: 4 }], i);
    }
    this.flushSockets();
    this.flushTx();
    if (got.length) await this.rx.kick();
    if (evs.length) await this.evq.kick();
    await this.tx.kick();
  }

  /** Pumps until `cond()` holds; throws `what()` after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      await this.pump();
      if (cond()) return;
      const left = end - Date.now();
      if (left <= 0) throw new Error(what());
      await this.dev.bus.port.wait(Math.min(left, 20));
    }
  }

  /** VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (§5.10.6.7): guest_cid again, connected sockets reset, listeners kept. */
  private async transportReset(): Promise<void> {
    this.counters.transportResets++;
    await this.readCid();
    for (const s of [...this.sockets.values()]) this.closeSocket(s, 'ECONNRESET');
  }

  private reply(h: VsockHeader, op: number): void {
    this.control.push({ dstCid: h.srcCid, srcPort: h.dstPort, dstPort: h.srcPort, type: h.type, op, flags: 0, bufAlloc: 0, fwdCnt: 0 });
    if (op === VIRTIO_VSOCK_OP_RST) this.counters.rstSent++;
  }

  /** virtio_transport_recv_pkt, the parts a stream socket needs. */
  private receive(h: VsockHeader, data: Uint8Array): void {
    this.counters.rxPackets++;
    if (h.dstCid !== this.guestCid || h.type !== VIRTIO_VSOCK_TYPE_STREAM) {
      if (h.op !== VIRTIO_VSOCK_OP_RST) this.reply(h, VIRTIO_VSOCK_OP_RST);
      return;
    }
    const s = this.sockets.get(this.key(h.dstPort, h.srcPort));
    if (!s) {
      const l = this.listeners.get(h.dstPort);
      if (h.op === VIRTIO_VSOCK_OP_REQUEST && l) {
        const n = new VsockSocket(this, h.dstPort, h.srcCid, h.srcPort);
        n.state = 'connected';
        n.peerBufAlloc = h.bufAlloc;
        n.peerFwdCnt = h.fwdCnt;
        n.txCnt = h.fwdCnt;
        this.sockets.set(this.key(n.localPort, n.peerPort), n);
        this.control.push(this.packet(n, VIRTIO_VSOCK_OP_RESPONSE));
        l.pending.push(n);
      } else if (h.op !== VIRTIO_VSOCK_OP_RST) this.reply(h, VIRTIO_VSOCK_OP_RST);
      return;
    }
    s.peerBufAlloc = h.bufAlloc;
    s.peerFwdCnt = h.fwdCnt;
    switch (h.op) {
      case VIRTIO_VSOCK_OP_RESPONSE:
        if (s.state === 'connecting') {
          s.state = 'connected';
          s.txCnt = h.fwdCnt;
        } else this.reset(s);
        return;
      case VIRTIO_VSOCK_OP_RST:
        this.counters.rstReceived++;
        // The RST that ends a clean close (either side shut both ways) is no error.
        if (s.state === 'connecting') this.closeSocket(s, 'ECONNREFUSED');
        else this.closeSocket(s, s.shutSent === SHUT_BOTH || s.peerShutdown === SHUT_BOTH ? null : 'ECONNRESET');
        return;
      case VIRTIO_VSOCK_OP_RW:
        if (s.state !== 'connected') return this.reset(s);
        if (s.rxQueued + data.length > this.bufAlloc) this.counters.creditOverruns++;
        if (data.length) s.deliver(data);
        return;
      case VIRTIO_VSOCK_OP_SHUTDOWN:
        s.peerShutdown |= h.flags & SHUT_BOTH;
        // Linux: a peer that shut both ways with nothing left to read is answered with RST at once.
        if (s.peerShutdown === SHUT_BOTH && s.rxQueued === 0) {
          this.control.push(this.packet(s, VIRTIO_VSOCK_OP_RST));
          this.counters.rstSent++;
          this.closeSocket(s, null);
        }
        return;
      case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        this.control.push(this.packet(s, VIRTIO_VSOCK_OP_CREDIT_UPDATE));
        this.counters.creditUpdatesSent++;
        return;
      case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        return;
      default:
        this.reset(s);
    }
  }

  /** Turns queued application bytes into RW packets as credit allows (round-robin over sockets); SHUTDOWNs after their data. */
  private flushSockets(): void {
    const all = [...this.sockets.values()];
    for (let k = 0; k < all.length; k++) {
      const s = all[(this.rr + k) % all.length]!;
      for (;;) {
        if (s.shutAfter.length && s.shutAfter[0]! <= s.written - s.txPending) {
          const flags = s.shutAfter[1]!;
          s.shutAfter.splice(0, 2);
          this.control.push(this.packet(s, VIRTIO_VSOCK_OP_SHUTDOWN, flags));
          continue;
        }
        if (s.txPending === 0 || s.state !== 'connected') break;
        const n = Math.min(s.txPending, VSOCK_DRIVER_MAX_PKT, s.credit);
        if (n === 0) break;
        const data = s.txq.take(n);
        s.txCnt = (s.txCnt + n) >>> 0;
        this.control.push(this.packet(s, VIRTIO_VSOCK_OP_RW, 0, data));
      }
    }
    this.rr++;
  }

  /** Puts queued packets into free tx slots (each packet records the socket's fwd_cnt as it leaves). */
  private flushTx(): void {
    while (this.control.length && this.txFree.length) {
      const p = this.control.shift()!;
      const slot = this.txFree.pop()!;
      const t = this.txSlots[slot]!;
      const s = this.sockets.get(this.key(p.srcPort, p.dstPort));
      if (s && p.bufAlloc) {
        p.fwdCnt = s.fwdCnt;
        s.lastFwdCnt = s.fwdCnt;
      }
      const len = p.data?.length ?? 0;
      this.bytes.set(encodeVsockHeader({ ...p, srcCid: this.guestCid, len }), t.hdr);
      if (len) this.bytes.set(p.data!, t.data);
      this.tx.add(len ? [{ off: t.hdr, len: HDR }, { off: t.data, len }] : [{ off: t.hdr, len: HDR }], [], slot);
      this.counters.txPackets++;
    }
  }
}

/** Features the model asks for by default, for tests that negotiate by hand. */
export const VSOCK_DRIVER_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX | VIRTIO_VSOCK_F_STREAM | VIRTIO_VSOCK_F_NO_IMPLIED_STREAM;
