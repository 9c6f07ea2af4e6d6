/**
 * virtio-vsock — device ID 19, virtio 1.3 §5.10.
 * Queues: 0 rx (device → driver packets), 1 tx (driver → device packets), 2 event
 * (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET).
 * Features: VIRTIO_VSOCK_F_STREAM, and VIRTIO_VSOCK_F_NO_IMPLIED_STREAM (§5.10.3.2: a device SHOULD
 * offer it). A driver that negotiates neither (Linux 6.1 knows only SEQPACKET) gets streams (§5.10.3).
 * Config layout (§5.10.4): le64 guest_cid — 8 bytes, the manifest's `guestCid`.
 * Host side: a VsockService (docs/hal.md): a guest connection to host port P reaches the host program
 * behind P (native: the unix socket `<uds>_P`, Firecracker's convention), host clients reach a
 * listening guest port through the runtime (`CONNECT P\n` on `<uds>`). The host is CID 2.
 * Not supported: SOCK_SEQPACKET (VIRTIO_VSOCK_F_SEQPACKET is not offered; a packet of another type is
 * answered with RST, §5.10.6.4); a timeout for a guest that never answers a clean shutdown (its
 * connection keeps its slot until the guest resets it or the device).
 *
 * Flow control (§5.10.6.3): the guest may have at most VSOCK_BUF_ALLOC bytes of a connection that
 * the host has not yet taken; the runtime buffers what the host connection cannot take at once
 * (VSOCK_HOST_BUFFER ≥ VSOCK_BUF_ALLOC), so a tx packet is always completed at once and one slow
 * host program never holds up the tx queue. fwd_cnt counts bytes the host took. Towards the guest,
 * host bytes are read straight into an rx buffer only while the guest's credit allows; what the
 * guest cannot take stays in the host connection. Nothing is dropped or duplicated either way.
 *
 * Everything the device holds is bounded by its constants: VSOCK_MAX_CONNECTIONS connection records
 * (each owes the driver at most one packet of each kind, as flags), VSOCK_RST_BACKLOG replies to
 * packets of unknown connections (tx processing pauses while it is full, §5.10.6.1), one held rx
 * buffer and one pending event. Nothing depends on a length or credit value the guest wrote.
 *
 * Hostile input, per packet (§5.10.6): a packet of unknown type or op, for an unknown connection or
 * destination, or a RW whose `len` is more than its payload, is answered with RST; a packet whose
 * src_cid is not the guest's is dropped (the driver MUST use guest_cid, §5.10.6.4); a guest that sends
 * beyond its credit, or whose fwd_cnt claims more than the device sent, has that connection reset.
 * Structural faults make the device NEEDS_RESET: a tx chain shorter than a header, an rx buffer
 * that cannot hold one, an event buffer shorter than an event.
 */
import type { Logger } from '../hal';
import type { VsockService } from '../services';
import {
  ECONNRESET,
  EMFILE,
  EPIPE,
  ESHUTDOWN,
  VSOCK_EV_ACCEPT,
  VSOCK_EV_HUP,
  VSOCK_EV_READABLE,
  VSOCK_EV_WRITABLE,
  VSOCK_HOST_BUFFER,
  VSOCK_HOST_CONNECTIONS,
  VSOCK_SHUT_RD,
  VSOCK_SHUT_WR,
} from '../services';
import { GuestProtocolError } from '../errors';
import {
  VIRTIO_ID_VSOCK,
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
} from '../virtio';
import type { DescriptorChain } from '../virtqueue/chain';
import { CHAIN_RANGES } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';
import type { DeviceContext } from './device';
import { VirtioDevice } from './device';

export const VSOCK_CONFIG_SIZE = 8;
/** Connections at once (the runtime's connection ids are the table's indexes). */
export const VSOCK_MAX_CONNECTIONS = VSOCK_HOST_CONNECTIONS;
/** Receive buffer space the device advertises per connection (buf_alloc), within what the runtime buffers. */
export const VSOCK_BUF_ALLOC = VSOCK_HOST_BUFFER;
/** Payload bytes per packet towards the driver at most (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const VSOCK_MAX_PKT_PAYLOAD = 64 * 1024;
/** RST replies to packets of unknown connections waiting for an rx buffer; tx pauses while it is full. */
export const VSOCK_RST_BACKLOG = 16;
/** First host port of host-initiated connections (Firecracker's local port range). */
export const VSOCK_LOCAL_PORT_FIRST = 2 ** 30;

const RX = 0;
const TX = 1;
const EVT = 2;
const HDR = VIRTIO_VSOCK_HDR_SIZE;
const HDR_WORDS = HDR >>> 2;

/** Header words (little-endian le32 fields of `struct virtio_vsock_hdr`, §5.10.6). */
const W_SRC_CID = 0;
const W_SRC_CID_HI = 1;
const W_DST_CID = 2;
const W_DST_CID_HI = 3;
const W_SRC_PORT = 4;
const W_DST_PORT = 5;
const W_LEN = 6;
const W_TYPE_OP = 7; // le16 type, le16 op
const W_FLAGS = 8;
const W_BUF_ALLOC = 9;
const W_FWD_CNT = 10;

/** The fields of one packet header. */
export interface VsockHeader {
  srcCid: number;
  dstCid: number;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** Encodes a header (CIDs below 2^32: their upper halves are zero, §5.10.6). */
export function encodeVsockHeader(h: VsockHeader): Uint8Array {
  const b = new Uint8Array(HDR);
  const v = new DataView(b.buffer);
  v.setUint32(0, h.srcCid >>> 0, true);
  v.setUint32(8, h.dstCid >>> 0, true);
  v.setUint32(16, h.srcPort >>> 0, true);
  v.setUint32(20, h.dstPort >>> 0, true);
  v.setUint32(24, h.len >>> 0, true);
  v.setUint16(28, h.type, true);
  v.setUint16(30, h.op, true);
  v.setUint32(32, h.flags >>> 0, true);
  v.setUint32(36, h.bufAlloc >>> 0, true);
  v.setUint32(40, h.fwdCnt >>> 0, true);
  return b;
}

/** Parses a header from a private copy of at least 44 bytes; a CID with a non-zero upper half reads as NaN. */
export function parseVsockHeader(b: Uint8Array): VsockHeader {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const cid = (at: number) => (v.getUint32(at + 4, true) === 0 ? v.getUint32(at, true) : NaN);
  return {
    srcCid: cid(0),
    dstCid: cid(8),
    srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    bufAlloc: v.getUint32(36, true),
    fwdCnt: v.getUint32(40, true),
  };
}

/** A reserved CID cannot be the guest's (§5.10.4): 0, 1, 2 (the host), 0xffffffff, anything ≥ 2^32. */
export function validGuestCid(cid: number): boolean {
  return Number.isInteger(cid) && cid > VMADDR_CID_HOST && cid < 0xffffffff;
}

/** Connection states. */
const CONNECTING = 1; // host-initiated: REQUEST owed or sent, waiting for the guest's RESPONSE
const ESTABLISHED = 2;
const CLOSING = 3; // the guest shut both directions: bytes for the host drain, then RST
const RESETTING = 4; // owes the guest an RST, then the runtime connection is closed and the slot freed

/** What a connection owes the driver (one packet of each kind at most). */
const OWE_REQUEST = 1;
const OWE_RESPONSE = 2;
const OWE_SHUTDOWN = 4;
const OWE_CREDIT = 8;
const OWE_RST = 16;

/** One connection; its index in the table is the runtime's connection id. */
class Conn {
  owe = 0;
  /** SHUTDOWN flags owed, and flags already told the guest. */
  shutdownOwed = 0;
  shutdownSent = 0;
  /** Host → guest: the guest's credit (§5.10.6.3) and the bytes sent to it. */
  peerBufAlloc = 0;
  peerFwdCnt = 0;
  txCnt = 0;
  hostReadable = false;
  hostHup = false;
  /** Guest → host: bytes taken from the guest, bytes the host took, the fwd_cnt last told the guest. */
  rxCnt = 0;
  fwdCnt = 0;
  advFwdCnt = 0;
  /** SHUTDOWN flags the guest sent (permanent, §5.10.6.5). */
  guestShut = 0;
  /** In the ready list. */
  queued = false;
  constructor(
    readonly id: number,
    readonly hostPort: number,
    readonly guestPort: number,
    public state: number,
  ) {}
}

export interface VsockOptions {
  service: VsockService;
  log: Logger;
  /** The guest's context ID (config guest_cid). */
  guestCid: number;
  /**
   * This backend boot follows another one on the same window (a restart): the driver's connections
   * to the previous instance are gone, so the first time the device goes live it sends
   * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (docs/vsock.md, "Backend restart").
   */
  transportResetOnStart?: boolean;
}

export class VsockDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_VSOCK;
  readonly name = 'vsock';
  readonly numQueues = 3;
  readonly features = VIRTIO_VSOCK_F_STREAM | VIRTIO_VSOCK_F_NO_IMPLIED_STREAM;
  readonly configSize = VSOCK_CONFIG_SIZE;
  private readonly svc: VsockService;
  private readonly guestCid: number;
  private readonly conns: (Conn | null)[] = new Array<Conn | null>(VSOCK_MAX_CONNECTIONS).fill(null);
  /** Connections that owe the driver a packet or have host data it has credit for; each once. */
  private ready: Conn[] = [];
  /** RST replies to packets of unknown connections: [srcCid, srcPort, dstPort, type] each. */
  private rstBacklog: number[][] = [];
  /** An rx buffer popped when there was nothing to put in it after all. */
  private rxHeld: DescriptorChain | null = null;
  /** The boot owes the driver a TRANSPORT_RESET (restart) until one went out. */
  private resetOwed: boolean;
  private needPoll = false;
  private txPaused = false;
  private nextLocalPort = VSOCK_LOCAL_PORT_FIRST;
  private last: Conn | null = null;
  /** Scratch: the header read from a tx chain, the header written into an rx buffer, the host's poll answer. */
  private readonly hin = new Uint32Array(HDR_WORDS);
  private readonly hout = new Uint32Array(HDR_WORDS);
  private readonly events = new Uint32Array(3 * VSOCK_MAX_CONNECTIONS);
  private readonly c: Record<string, number> = {};

  constructor(opts: VsockOptions) {
    super(opts.log);
    if (!validGuestCid(opts.guestCid)) throw new Error(`vsock: guestCid ${String(opts.guestCid)} is reserved or out of range (3..0xfffffffe, virtio §5.10.4)`);
    this.svc = opts.service;
    this.guestCid = opts.guestCid;
    this.resetOwed = opts.transportResetOnStart === true;
  }

  private count(name: string, n = 1): void {
    this.c[name] = (this.c[name] ?? 0) + n;
  }

  readConfig(): Uint8Array {
    const b = new Uint8Array(VSOCK_CONFIG_SIZE);
    new DataView(b.buffer).setUint32(0, this.guestCid, true); // upper 32 bits zero (§5.10.4)
    return b;
  }

  /** §5.10.3: NO_IMPLIED_STREAM without STREAM would leave no socket type (SEQPACKET is not offered). */
  override acceptFeatures(f: bigint): boolean {
    return !((f & VIRTIO_VSOCK_F_NO_IMPLIED_STREAM) !== 0n && (f & VIRTIO_VSOCK_F_STREAM) === 0n);
  }

  override activate(ctx: DeviceContext): void {
    super.activate(ctx);
    this.needPoll = true; // host clients may have connected while the driver was not live
    ctx.kick(RX);
    if (this.resetOwed) ctx.kick(EVT);
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    if (this.needPoll) this.pollHost();
    this.deliverEvent(); // before anything else the new incarnation does (docs/vsock.md, "Backend restart")
    if (i === TX) {
      const more = this.drainTx(q, budget);
      return this.fillRx(budget) || more;
    }
    if (i === RX) return this.fillRx(budget);
    return false;
  }

  override onService(budget: number): boolean {
    this.pollHost();
    let more = this.fillRx(budget);
    if (this.txPaused && this.rstBacklog.length < VSOCK_RST_BACKLOG) {
      this.txPaused = false;
      this.ctx?.kick(TX);
    }
    return more;
  }

  // ---- host events --------------------------------------------------------------------------

  /** Takes the runtime's connection news (at most one entry per connection per call). */
  private pollHost(): void {
    this.needPoll = false;
    const ev = this.events;
    for (let round = 0; round < 2; round++) {
      const n = this.svc.poll(ev);
      if (n <= 0) return;
      for (let k = 0; k < 3 * n; k += 3) this.hostEvent(ev[k]!, ev[k + 1]!, ev[k + 2]!);
      if (n < VSOCK_MAX_CONNECTIONS) return;
    }
  }

  private hostEvent(id: number, flags: number, value: number): void {
    if (!(id < VSOCK_MAX_CONNECTIONS)) throw new Error(`vsock: runtime reported connection id ${id} ≥ ${VSOCK_MAX_CONNECTIONS}`);
    if (flags & VSOCK_EV_ACCEPT) {
      if (this.conns[id]) throw new Error(`vsock: runtime reused connection id ${id} while it is open`);
      const c = new Conn(id, this.allocLocalPort(), value >>> 0, CONNECTING);
      this.conns[id] = c;
      this.owe(c, OWE_REQUEST);
      this.count('hostConnects');
      return;
    }
    const c = this.conns[id];
    if (!c) return; // news of a connection closed meanwhile
    if (flags & VSOCK_EV_WRITABLE) this.forwarded(c, value);
    if (flags & VSOCK_EV_HUP) {
      c.hostHup = true;
      if (c.state === CONNECTING) {
        // the host client gave up before the guest answered
        if (c.owe & OWE_REQUEST) this.free(c);
        else this.resetConn(c, 'hostGaveUp');
        return;
      }
      if (c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE) this.oweShutdown(c, VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND);
      else c.hostReadable = true; // what it wrote before closing, then EOF
    }
    if (flags & VSOCK_EV_READABLE) c.hostReadable = true;
    this.enqueue(c);
  }

  /** The host took bytes: fwd_cnt moves; the guest hears of it before it runs out of credit. */
  private forwarded(c: Conn, pending: number): void {
    c.fwdCnt = (c.rxCnt - pending) >>> 0;
    if (c.state === CLOSING) {
      if (pending === 0) this.resetConn(c, null); // clean close: every byte reached the host, then RST
      return;
    }
    if (c.state !== ESTABLISHED || c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_SEND || c.fwdCnt === c.advFwdCnt) return;
    const perceivedFree = VSOCK_BUF_ALLOC - ((c.rxCnt - c.advFwdCnt) >>> 0);
    if (perceivedFree <= VSOCK_BUF_ALLOC / 2) this.owe(c, OWE_CREDIT);
  }

  private allocLocalPort(): number {
    for (;;) {
      const p = this.nextLocalPort;
      this.nextLocalPort = p >= 0xfffffffe ? VSOCK_LOCAL_PORT_FIRST : p + 1;
      if (!this.conns.some((c) => c !== null && c.hostPort === p)) return p;
    }
  }

  // ---- connection bookkeeping ----------------------------------------------------------------

  private find(hostPort: number, guestPort: number): Conn | null {
    const l = this.last;
    if (l && l.hostPort === hostPort && l.guestPort === guestPort && this.conns[l.id] === l) return l;
    for (let i = 0; i < VSOCK_MAX_CONNECTIONS; i++) {
      const c = this.conns[i]!;
      if (c !== null && c.hostPort === hostPort && c.guestPort === guestPort) {
        this.last = c;
        return c;
      }
    }
    return null;
  }

  private owe(c: Conn, what: number): void {
    c.owe |= what;
    this.enqueue(c);
  }

  private oweShutdown(c: Conn, flags: number): void {
    const f = flags & ~c.shutdownSent;
    if (f === 0) return;
    c.shutdownOwed |= f;
    this.owe(c, OWE_SHUTDOWN);
  }

  /** Host bytes can go to the guest: the connection is open both ways and the guest has credit. */
  private canSendData(c: Conn): boolean {
    return c.state === ESTABLISHED && c.hostReadable && (c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE) === 0 && (c.shutdownSent & VIRTIO_VSOCK_SHUTDOWN_F_SEND) === 0 && this.credit(c) > 0;
  }

  /** peer_free of §5.10.6.3, never negative: a guest that shrank its buffer below what is in flight has none. */
  private credit(c: Conn): number {
    const inFlight = (c.txCnt - c.peerFwdCnt) >>> 0;
    return c.peerBufAlloc > inFlight ? c.peerBufAlloc - inFlight : 0;
  }

  private enqueue(c: Conn): void {
    if (c.queued || this.conns[c.id] !== c) return;
    if (c.owe === 0 && !this.canSendData(c)) return;
    c.queued = true;
    this.ready.push(c);
    this.ctx?.kick(RX);
  }

  /** Resets a connection: the guest is owed an RST, the host side is closed once it went out. */
  private resetConn(c: Conn, why: string | null): void {
    if (why) this.count(`rst.${why}`);
    this.svc.shutdown(c.id, VSOCK_SHUT_RD); // nothing more from the host on this connection
    c.state = RESETTING;
    c.hostReadable = false;
    c.owe = OWE_RST;
    this.enqueue(c);
  }

  private free(c: Conn): void {
    this.svc.close(c.id);
    this.conns[c.id] = null;
    c.queued = false;
    c.owe = 0;
    if (this.last === c) this.last = null;
    const k = this.ready.indexOf(c);
    if (k >= 0) this.ready.splice(k, 1);
  }

  /** An RST for a packet of no connection (never for an RST, §5.10.6.5); tx pauses while the backlog is full. */
  private rstReply(why: string, h: Uint32Array): void {
    if ((h[W_TYPE_OP]! >>> 16) === VIRTIO_VSOCK_OP_RST) {
      this.count('rstIgnored');
      return;
    }
    this.count(`rst.${why}`);
    if (this.rstBacklog.length >= VSOCK_RST_BACKLOG) throw new Error('vsock: RST backlog overflow'); // drainTx checks first
    this.rstBacklog.push([h[W_DST_CID]!, h[W_DST_PORT]!, h[W_SRC_PORT]!, h[W_TYPE_OP]! & 0xffff]);
    this.ctx?.kick(RX);
  }

  // ---- driver → device (tx) ------------------------------------------------------------------

  private drainTx(q: Virtqueue, budget: number): boolean {
    for (let n = 0; n < budget; n++) {
      if (this.rstBacklog.length >= VSOCK_RST_BACKLOG) {
        // §5.10.6.1: the replies we hold for unknown connections are used up until the driver gives rx
        // buffers; its further packets wait in the ring (onService/fillRx resumes us).
        if (!this.txPaused) this.count('txPaused');
        this.txPaused = true;
        return false;
      }
      const chain = q.pop();
      if (!chain) {
        if (q.armAvailEvent()) continue;
        return false;
      }
      this.handleTx(chain);
      q.pushUsed(chain, 0);
    }
    return true;
  }

  private handleTx(chain: DescriptorChain): void {
    if (chain.readableBytes < HDR) {
      throw new GuestProtocolError('VSOCK_SHORT_HEADER', 'virtio §5.10.6.4', `tx chain ${chain.headIndex}: ${chain.readableBytes} readable bytes, a packet header is ${HDR}`);
    }
    const h = this.hin;
    const nr = chain.readHead(h, HDR); // the one fetch of the header; the payload ranges are in CHAIN_RANGES
    const payload = chain.readableBytes - HDR;
    this.count('txPackets');
    if (h[W_SRC_CID]! !== this.guestCid || h[W_SRC_CID_HI]! !== 0) {
      this.count('drop.spoofedSource'); // §5.10.6.4: the driver MUST use guest_cid as source
      return;
    }
    const type = h[W_TYPE_OP]! & 0xffff;
    const op = h[W_TYPE_OP]! >>> 16;
    if (type !== VIRTIO_VSOCK_TYPE_STREAM) return this.rstReply('unknownType', h); // §5.10.6.4 MUST
    if (h[W_DST_CID]! !== VMADDR_CID_HOST || h[W_DST_CID_HI]! !== 0) return this.rstReply('unknownDestination', h);
    if (op < VIRTIO_VSOCK_OP_REQUEST || op > VIRTIO_VSOCK_OP_CREDIT_REQUEST) return this.rstReply('unknownOp', h);
    const hostPort = h[W_DST_PORT]!;
    const guestPort = h[W_SRC_PORT]!;
    const c = this.find(hostPort, guestPort);
    if (op === VIRTIO_VSOCK_OP_REQUEST) return this.request(c, h, hostPort, guestPort);
    if (!c) return this.rstReply('noConnection', h);
    if (op === VIRTIO_VSOCK_OP_RST) {
      this.count('rstReceived');
      return this.free(c);
    }
    if (c.state === RESETTING) return; // it is being reset; the RST is on its way
    if (op === VIRTIO_VSOCK_OP_RESPONSE && c.state === CONNECTING) {
      // The counters start where the guest's do: its first fwd_cnt is the base of the bytes we send it.
      c.peerFwdCnt = h[W_FWD_CNT]!;
      c.txCnt = c.peerFwdCnt;
    }
    if (!this.takeCredit(c, h)) return this.resetConn(c, 'creditLie');
    switch (op) {
      case VIRTIO_VSOCK_OP_RESPONSE:
        if (c.state !== CONNECTING || c.owe & OWE_REQUEST) return this.resetConn(c, 'unexpectedResponse');
        c.state = ESTABLISHED;
        if (this.svc.established(c.id, c.hostPort) < 0) return this.resetConn(c, 'hostGaveUp');
        this.count('connections');
        this.enqueue(c); // the host client may have written already
        return;
      case VIRTIO_VSOCK_OP_RW:
        return this.rw(c, h[W_LEN]!, payload, nr);
      case VIRTIO_VSOCK_OP_SHUTDOWN:
        return this.guestShutdown(c, h[W_FLAGS]!);
      case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        this.count('creditRequests');
        if (c.state !== CONNECTING) this.owe(c, OWE_CREDIT);
        return;
      case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        this.enqueue(c); // takeCredit took the news; host data may flow again
        return;
    }
  }

  /** buf_alloc/fwd_cnt of a packet of `c` (§5.10.6.3); false when fwd_cnt claims more than was sent. */
  private takeCredit(c: Conn, h: Uint32Array): boolean {
    const fwd = h[W_FWD_CNT]!;
    if (((fwd - c.peerFwdCnt) >>> 0) > ((c.txCnt - c.peerFwdCnt) >>> 0)) return false;
    c.peerFwdCnt = fwd;
    c.peerBufAlloc = h[W_BUF_ALLOC]!;
    return true;
  }

  private request(c: Conn | null, h: Uint32Array, hostPort: number, guestPort: number): void {
    if (c) {
      // §5.10.6.5: a tuple is not reused before the old connection is gone; the guest did.
      this.resetConn(c, 'tupleReused');
      return;
    }
    const id = this.svc.connect(hostPort);
    if (id < 0) return this.rstReply(id === -EMFILE ? 'noRoom' : 'refused', h);
    if (!(id < VSOCK_MAX_CONNECTIONS) || this.conns[id]) {
      this.svc.close(id);
      throw new Error(`vsock: runtime gave connection id ${id}, which is out of range or in use`);
    }
    const n = new Conn(id, hostPort, guestPort, ESTABLISHED);
    // The counters start where the guest's do: its first fwd_cnt is the base of the bytes we send it.
    n.peerFwdCnt = h[W_FWD_CNT]!;
    n.txCnt = n.peerFwdCnt;
    n.peerBufAlloc = h[W_BUF_ALLOC]!;
    this.conns[id] = n;
    this.count('connections');
    this.count('guestConnects');
    this.owe(n, OWE_RESPONSE);
  }

  /** Guest data for the host: within its credit, all of it goes to the runtime (which buffers what the host cannot take yet). */
  private rw(c: Conn, len: number, payload: number, nr: number): void {
    if (c.state !== ESTABLISHED || c.guestShut & VIRTIO_VSOCK_SHUTDOWN_F_SEND) return this.resetConn(c, 'dataAfterShutdown');
    if (len > payload) return this.resetConn(c, 'badLength');
    if (len === 0) return;
    if (((c.rxCnt - c.fwdCnt) >>> 0) + len > VSOCK_BUF_ALLOC) return this.resetConn(c, 'creditOverrun');
    const r = CHAIN_RANGES;
    let left = len;
    let pending = 0;
    for (let k = 0; left > 0 && k < 2 * nr; k += 2) {
      const l = r[k + 1]! < left ? r[k + 1]! : left;
      const p = this.svc.send(c.id, r[k]!, l);
      if (p < 0) return this.resetConn(c, p === -EPIPE ? 'hostClosed' : 'hostError');
      pending = p;
      left -= l;
    }
    c.rxCnt = (c.rxCnt + len) >>> 0;
    this.count('bytesToHost', len);
    if (pending > 0) this.count('hostLagged'); // the host program did not take it all: the runtime holds the rest
    // The guest used the last of the space it knows of: it waits for a credit update (its credit ran out).
    if (((c.rxCnt - c.advFwdCnt) >>> 0) === VSOCK_BUF_ALLOC) this.count('guestOutOfCredit');
    this.forwarded(c, pending);
  }

  private guestShutdown(c: Conn, flags: number): void {
    this.count('shutdownsReceived');
    if (c.state === CONNECTING) return this.resetConn(c, 'unexpectedShutdown');
    const f = flags & (VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND) & ~c.guestShut;
    c.guestShut |= f;
    if (f & VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE) this.svc.shutdown(c.id, VSOCK_SHUT_RD);
    if (f & VIRTIO_VSOCK_SHUTDOWN_F_SEND) this.svc.shutdown(c.id, VSOCK_SHUT_WR); // after what it buffered
    if (c.guestShut === (VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND) && c.state === ESTABLISHED) {
      // Clean disconnect (§5.10.6.5): answer with RST once every byte of the guest reached the host.
      c.state = CLOSING;
      if (c.rxCnt === c.fwdCnt) this.resetConn(c, null);
    }
  }

  // ---- device → driver (rx) ------------------------------------------------------------------

  /** Fills rx buffers with what is owed: RST replies first, then the ready connections round-robin. */
  private fillRx(budget: number): boolean {
    const q = this.ctx?.queue(RX);
    if (!q) return false;
    for (let n = 0; n < budget; n++) {
      if (this.rstBacklog.length === 0 && this.ready.length === 0) return false;
      let chain = this.rxHeld;
      this.rxHeld = null;
      if (!chain) chain = q.pop() ?? (q.armAvailEvent() ? q.pop() : null);
      if (!chain) {
        this.count('rxWaits'); // the driver has not given buffers yet; what is owed waits (bounded)
        return false;
      }
      if (chain.writableBytes < HDR) {
        throw new GuestProtocolError('VSOCK_RX_BUFFER_SHORT', 'virtio §5.10.6.4', `rx chain ${chain.headIndex}: ${chain.writableBytes} writable bytes, a packet header is ${HDR}`);
      }
      const rst = this.rstBacklog.shift();
      if (rst) {
        this.writePacket(chain, q, rst[0]!, rst[1]!, rst[2]!, rst[3]!, VIRTIO_VSOCK_OP_RST, 0, 0, 0, 0);
        if (this.txPaused && this.rstBacklog.length < VSOCK_RST_BACKLOG) {
          this.txPaused = false;
          this.ctx?.kick(TX);
        }
        continue;
      }
      const c = this.ready.shift()!;
      c.queued = false;
      // Nothing after all (the host had no data, which clears its readiness): keep the buffer. Each such
      // turn takes one connection off the ready list, so the loop ends.
      if (!this.sendOne(c, chain, q)) this.rxHeld = chain;
      if (this.conns[c.id] === c) this.enqueue(c); // more to send: to the back of the line
    }
    return true;
  }

  /** Puts the most urgent packet `c` owes into `chain`; false when it had nothing to send after all. */
  private sendOne(c: Conn, chain: DescriptorChain, q: Virtqueue): boolean {
    if (c.owe & OWE_RST) {
      this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_RST, 0, 0);
      this.count('rstSent');
      this.free(c);
      return true;
    }
    if (c.owe & OWE_REQUEST) {
      c.owe &= ~OWE_REQUEST;
      this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
      return true;
    }
    if (c.owe & OWE_RESPONSE) {
      c.owe &= ~OWE_RESPONSE;
      this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
      return true;
    }
    if (this.canSendData(c) && this.sendData(c, chain, q)) return true;
    if (c.owe & OWE_SHUTDOWN) {
      const f = c.shutdownOwed;
      c.owe &= ~OWE_SHUTDOWN;
      c.shutdownOwed = 0;
      c.shutdownSent |= f;
      this.count('shutdownsSent');
      this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_SHUTDOWN, f, 0);
      return true;
    }
    if (c.owe & OWE_CREDIT) {
      this.count('creditUpdates');
      this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
      return true;
    }
    return false;
  }

  /** Reads host bytes straight into the buffer's payload part (at most the guest's credit) and sends them as RW. */
  private sendData(c: Conn, chain: DescriptorChain, q: Virtqueue): boolean {
    const w = chain.writer();
    const credit = this.credit(c);
    let max = w.remaining - HDR;
    if (max === 0) {
      // An rx buffer with room for a header only (Linux posts 44 + 4096): it carries the credit instead.
      this.count('rxBuffersWithoutPayloadRoom');
      this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
      return true;
    }
    if (max > credit) max = credit;
    if (max > VSOCK_MAX_PKT_PAYLOAD) max = VSOCK_MAX_PKT_PAYLOAD;
    w.take(HDR);
    const nr = w.take(max);
    const r = CHAIN_RANGES;
    let got = 0;
    let end = 0;
    for (let k = 0; k < 2 * nr; k += 2) {
      const n = this.svc.recv(c.id, r[k]!, r[k + 1]!);
      if (n > 0) got += n;
      if (n !== r[k + 1]!) {
        end = n < 0 ? n : 0;
        if (n === 0) c.hostReadable = false; // nothing more now: the runtime reports the next bytes
        break;
      }
    }
    if (end < 0) {
      c.hostReadable = false;
      if (end === -ESHUTDOWN || end === -ECONNRESET) {
        // EOF: the host sends no more; a host that closed entirely (HUP) or failed receives no more either
        const both = c.hostHup || end === -ECONNRESET;
        this.oweShutdown(c, VIRTIO_VSOCK_SHUTDOWN_F_SEND | (both ? VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE : 0));
      } else {
        this.count('hostErrors');
        this.resetConn(c, 'hostError');
      }
    }
    if (got === 0) return false;
    c.txCnt = (c.txCnt + got) >>> 0;
    this.count('bytesToGuest', got);
    if (this.credit(c) === 0 && c.hostReadable) this.count('guestCreditWaits'); // the guest's buffer is full: the host waits
    this.writeConnPacket(chain, q, c, VIRTIO_VSOCK_OP_RW, 0, got);
    return true;
  }

  private writeConnPacket(chain: DescriptorChain, q: Virtqueue, c: Conn, op: number, flags: number, len: number): void {
    c.owe &= ~OWE_CREDIT; // every packet carries the credit (§5.10.6.3)
    c.advFwdCnt = c.fwdCnt;
    this.writePacket(chain, q, VMADDR_CID_HOST, c.hostPort, c.guestPort, VIRTIO_VSOCK_TYPE_STREAM, op, flags, len, VSOCK_BUF_ALLOC, c.fwdCnt);
  }

  /** Writes the header at the start of `chain` (the payload, if any, is already after it) and completes it. */
  private writePacket(chain: DescriptorChain, q: Virtqueue, srcCid: number, srcPort: number, dstPort: number, type: number, op: number, flags: number, len: number, bufAlloc: number, fwdCnt: number): void {
    const h = this.hout;
    h[W_SRC_CID] = srcCid;
    h[W_SRC_CID_HI] = 0;
    h[W_DST_CID] = this.guestCid;
    h[W_DST_CID_HI] = 0;
    h[W_SRC_PORT] = srcPort;
    h[W_DST_PORT] = dstPort;
    h[W_LEN] = len;
    h[W_TYPE_OP] = (type | (op << 16)) >>> 0;
    h[W_FLAGS] = flags;
    h[W_BUF_ALLOC] = bufAlloc;
    h[W_FWD_CNT] = fwdCnt;
    chain.writer().writeWords(h, HDR);
    q.pushUsed(chain, HDR + len);
    this.count('rxPackets');
  }

  // ---- event queue ---------------------------------------------------------------------------

  /** Sends the owed TRANSPORT_RESET when the driver has an event buffer; until then it stays owed (one flag). */
  private deliverEvent(): void {
    if (!this.resetOwed) return;
    const q = this.ctx?.queue(EVT);
    if (!q) return;
    const chain = q.pop();
    if (!chain) {
      q.armAvailEvent();
      return;
    }
    const w = chain.writer();
    if (w.remaining < 4) {
      throw new GuestProtocolError('VSOCK_EVENT_BUFFER_SHORT', 'virtio §5.10.6.7', `event chain ${chain.headIndex}: ${w.remaining} writable bytes, an event is 4`);
    }
    w.write(Uint8Array.of(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0));
    q.pushUsed(chain, 4);
    this.resetOwed = false;
    this.count('transportResets');
    // The driver now drops every connected socket without a word (Linux's virtio_vsock_reset_sock
    // sends nothing): connections made before the event reached it must go on this side too.
    this.dropConnections('droppedByTransportReset');
  }

  /** Forgets every connection and closes its host end (device reset, TRANSPORT_RESET). */
  private dropConnections(counter: string | null): void {
    for (const c of this.conns) {
      if (!c) continue;
      this.svc.close(c.id);
      if (counter) this.count(counter);
    }
    this.conns.fill(null);
    this.ready = [];
    this.last = null;
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  override queueReset(i: number): void {
    if (i === RX) this.rxHeld = null;
  }

  /** Device reset: every connection is gone (the host ends are closed); a TRANSPORT_RESET still owed stays owed. */
  override reset(): void {
    super.reset();
    this.dropConnections(null);
    this.rstBacklog = [];
    this.rxHeld = null;
    this.txPaused = false;
  }

  override counters(): Record<string, number> {
    let open = 0;
    for (const c of this.conns) if (c) open++;
    return { ...this.c, open, transportResetOwed: this.resetOwed ? 1 : 0 };
  }
}
