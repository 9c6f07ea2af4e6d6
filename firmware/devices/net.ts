/**
 * virtio-net — device ID 1, virtio 1.3 §5.1.
 * Queues: receiveq1, transmitq1, …, receiveqN, transmitqN (N = `queuePairs`, 1 unless MQ is offered), then
 * controlq — at index 2N with VIRTIO_NET_F_MQ negotiated, at index 2 without (§5.1.2).
 * Features: CSUM, GUEST_CSUM, MTU, MAC, MRG_RXBUF, STATUS, CTRL_VQ, CTRL_RX, CTRL_RX_EXTRA, CTRL_MAC_ADDR,
 * and MQ when the board gives more than one queue pair.
 * Config layout (§5.1.4): u8 mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu — 12 bytes.
 * Header: struct virtio_net_hdr, 12 bytes (VERSION_1 is always negotiated on this transport; 10 bytes only
 * for a legacy driver without MRG_RXBUF, which the transport refuses).
 * Checksums: a transmitted NEEDS_CSUM frame travels with its csum_start/csum_offset; the packet service
 * completes it before delivery to a port whose driver did not negotiate GUEST_CSUM (flags 0 there) and
 * passes it unchanged, NEEDS_CSUM set, to one that did. Frames whose checksum the service completed or
 * that arrived DATA_VALID are reported DATA_VALID to a GUEST_CSUM driver.
 * Not supported (not offered): TSO/UFO/USO in either direction (no segmentation or coalescing in the
 * switch, so an offered GSO could not be honoured end to end; gso_type other than NONE is dropped),
 * CTRL_VLAN, GUEST_ANNOUNCE, CTRL_GUEST_OFFLOADS, NOTF_COAL, RSS/HASH_REPORT, SPEED_DUPLEX.
 * Bad input: a transmitted frame shorter than the header or an Ethernet header, longer than MTU + 18
 * (Ethernet + VLAN tag), with csum_start/csum_offset or hdr_len past the frame, NEEDS_CSUM without CSUM,
 * or any gso_type other than NONE is dropped and counted (`txDropped.*`), never trusted. A control
 * command of the wrong length, unknown class or command, or a MAC table beyond NET_MAC_TABLE_ENTRIES is
 * answered VIRTIO_NET_ERR. A receive buffer smaller than the header is a driver MUST violation
 * (§5.1.6.3.1): DEVICE_NEEDS_RESET.
 */
import { GuestProtocolError } from '../errors';
import type { Logger } from '../hal';
import type { PacketService } from '../services';
import { ENETDOWN, PACKET_F_DATA_VALID, PACKET_F_MORE, PACKET_F_NEEDS_CSUM } from '../services';
import { VIRTIO_F_VERSION_1, VIRTIO_ID_NET } from '../virtio';
import type { DescriptorChain } from '../virtqueue/chain';
import { CHAIN_RANGES } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';
import { VirtioDevice } from './device';

/** Feature bits (virtio 1.3 §5.1.3). */
export const VIRTIO_NET_F_CSUM = 1n << 0n;
export const VIRTIO_NET_F_GUEST_CSUM = 1n << 1n;
export const VIRTIO_NET_F_MTU = 1n << 3n;
export const VIRTIO_NET_F_MAC = 1n << 5n;
export const VIRTIO_NET_F_MRG_RXBUF = 1n << 15n;
export const VIRTIO_NET_F_STATUS = 1n << 16n;
export const VIRTIO_NET_F_CTRL_VQ = 1n << 17n;
export const VIRTIO_NET_F_CTRL_RX = 1n << 18n;
export const VIRTIO_NET_F_CTRL_RX_EXTRA = 1n << 20n;
export const VIRTIO_NET_F_MQ = 1n << 22n;
export const VIRTIO_NET_F_CTRL_MAC_ADDR = 1n << 23n;
export const VIRTIO_NET_F_HASH_REPORT = 1n << 57n;

/** Config status bits (§5.1.4). */
export const VIRTIO_NET_S_LINK_UP = 1;

/** virtio_net_hdr (§5.1.6). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;

/** Control virtqueue (§5.1.6.5). */
export const VIRTIO_NET_OK = 0;
export const VIRTIO_NET_ERR = 1;
export const VIRTIO_NET_CTRL_RX = 0;
export const VIRTIO_NET_CTRL_RX_PROMISC = 0;
export const VIRTIO_NET_CTRL_RX_ALLMULTI = 1;
export const VIRTIO_NET_CTRL_RX_ALLUNI = 2;
export const VIRTIO_NET_CTRL_RX_NOMULTI = 3;
export const VIRTIO_NET_CTRL_RX_NOUNI = 4;
export const VIRTIO_NET_CTRL_RX_NOBCAST = 5;
export const VIRTIO_NET_CTRL_MAC = 1;
export const VIRTIO_NET_CTRL_MAC_TABLE_SET = 0;
export const VIRTIO_NET_CTRL_MAC_ADDR_SET = 1;
export const VIRTIO_NET_CTRL_MQ = 4;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET = 0;

export const NET_CONFIG_SIZE = 12;
export const ETH_HLEN = 14;
/** A VLAN tag the MTU does not count. */
export const VLAN_HLEN = 4;
/** Largest MTU the device offers (no GSO: one frame is one packet). */
export const NET_MAX_MTU = 9000;
/** Unicast + multicast addresses one MAC_TABLE_SET may carry; more is VIRTIO_NET_ERR. */
export const NET_MAC_TABLE_ENTRIES = 64;
/** Largest control command read (class, command, a full MAC table set): bounds the one fetch. */
export const NET_CTRL_MAX_BYTES = 2 + 8 + 6 * NET_MAC_TABLE_ENTRIES;
/** Queue pairs at most (the config field allows 0x8000; each pair costs two queues of state). */
export const NET_MAX_QUEUE_PAIRS = 16;
/** Frames a receive pass passes over, at most, while their receive queues have no buffers (multiqueue only). */
export const NET_RX_LOOKAHEAD = 64;
/** Flow → transmit queue entries remembered for receive steering (hash-indexed, overwritten). */
const FLOW_TABLE_SIZE = 256;

/** Size of struct virtio_net_hdr for the negotiated features (§5.1.6). */
export function netHdrSize(features: bigint): number {
  if (features & VIRTIO_NET_F_HASH_REPORT) return 20;
  return features & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF) ? 12 : 10;
}

/** A transmit header as it was read once from the chain. */
export interface NetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Decodes the first 10 bytes of a virtio_net_hdr (num_buffers is unused on transmit, §5.1.6.2) into `h`. */
export function parseNetHdr(b: Uint8Array, h: NetHdr): void {
  h.flags = b[0]!;
  h.gsoType = b[1]!;
  h.hdrLen = b[2]! | (b[3]! << 8);
  h.gsoSize = b[4]! | (b[5]! << 8);
  h.csumStart = b[6]! | (b[7]! << 8);
  h.csumOffset = b[8]! | (b[9]! << 8);
}

/**
 * Checks a transmit header against its frame (§5.1.6.2, §5.1.6.2.2); returns the drop reason, or '' if the
 * frame may go out. Unknown flag bits are ignored (device MUST), known ones are never trusted blindly.
 */
export function checkTxHeader(h: NetHdr, frameLen: number, maxFrame: number, csumNegotiated: boolean): string {
  if (frameLen < ETH_HLEN) return 'short';
  if (frameLen > maxFrame) return 'long';
  if (h.gsoType !== VIRTIO_NET_HDR_GSO_NONE) return 'gsoType';
  if (h.hdrLen > frameLen) return 'hdrLen';
  if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    if (!csumNegotiated) return 'csumNotNegotiated';
    if (h.csumStart < ETH_HLEN || h.csumStart + h.csumOffset + 2 > frameLen) return 'csumOffset';
  }
  return '';
}

/** Parses a MAC address "52:54:00:12:34:56". */
export function parseMac(s: string): Uint8Array | null {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(s);
  return m ? new Uint8Array(m.slice(1).map((x) => parseInt(x, 16))) : null;
}

/** Parses VIRTIO_NET_CTRL_MAC_TABLE_SET data (§5.1.6.5.2): two tables; null when lengths disagree or too many entries. */
export function parseMacTables(d: Uint8Array): { uni: number[]; multi: number[] } | null {
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  if (d.length < 8) return null;
  const nUni = v.getUint32(0, true);
  if (nUni > NET_MAC_TABLE_ENTRIES || 4 + 6 * nUni + 4 > d.length) return null;
  const at = 4 + 6 * nUni;
  const nMulti = v.getUint32(at, true);
  if (nUni + nMulti > NET_MAC_TABLE_ENTRIES || at + 4 + 6 * nMulti !== d.length) return null;
  const read = (off: number, n: number) => Array.from({ length: n }, (_, i) => macNumber(d, off + 6 * i));
  return { uni: read(4, nUni), multi: read(at + 4, nMulti) };
}

function macNumber(b: Uint8Array, at: number): number {
  return ((b[at]! << 8) | b[at + 1]!) * 0x100000000 + (((b[at + 2]! << 24) | (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!) >>> 0);
}

export interface NetOptions {
  port: PacketService;
  log: Logger;
  mac: Uint8Array;
  /** Default 1500. */
  mtu?: number;
  /** Queue pairs (default 1; more offers VIRTIO_NET_F_MQ). */
  queuePairs?: number;
}

/** Receive filter state (§5.1.6.5.1, §5.1.6.5.2); reset puts it back to promiscuous, as QEMU does. */
interface RxFilter {
  promisc: boolean;
  allmulti: boolean;
  alluni: boolean;
  nomulti: boolean;
  nouni: boolean;
  nobcast: boolean;
  uni: Set<number>;
  multi: Set<number>;
}

const defaultFilter = (): RxFilter => ({ promisc: true, allmulti: false, alluni: false, nomulti: false, nouni: false, nobcast: false, uni: new Set(), multi: new Set() });

export class NetDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_NET;
  readonly name = 'net';
  readonly numQueues: number;
  readonly features: bigint;
  readonly configSize = NET_CONFIG_SIZE;
  private readonly port: PacketService;
  private readonly initialMac: Uint8Array;
  private mac: Uint8Array;
  /** `mac` as the packet service's destination words (high 16 bits, low 32), kept with it by `setMac`;
   * `macHi` is -1 for a multicast address, which no unicast destination can equal. */
  private macHi = 0;
  private macLo = 0;
  private readonly mtu: number;
  private readonly maxPairs: number;
  private linkUp = true;
  private filter = defaultFilter();
  private curPairs = 1;
  private hdrSize = 12;
  private mrg = false;
  private guestCsum = false;
  /** VIRTIO_NET_F_CSUM negotiated (cached at DRIVER_OK: no BigInt test per frame). */
  private csum = false;
  /** Largest frame accepted for transmit: MTU plus an Ethernet header and a VLAN tag. */
  private readonly maxFrame: number;
  /** The private copy of a transmit header (one fetch, reused) and its parsed fields. */
  private readonly hdrInWords = new Uint32Array(5);
  private readonly hdrIn = new Uint8Array(this.hdrInWords.buffer);
  private readonly txHdr: NetHdr = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  /** The queue pair being served by drainTx. */
  private txPair = 0;
  // Per-frame counters as numeric fields; `c` keeps the rest (and the drop reasons).
  private txFrames = 0;
  private txBytes = 0;
  private rxFrames = 0;
  private rxBytes = 0;
  private ctrlIndex = 2;
  /** Receive buffers popped for a frame that did not fit yet (MRG_RXBUF), per receive queue. */
  private rxHeld: DescriptorChain[][];
  private readonly flowTable = new Uint8Array(FLOW_TABLE_SIZE);
  /** The receive header being built (bytes, and the same memory as words for zeroing and writing). */
  private readonly hdrOutWords = new Uint32Array(3);
  private readonly hdrOut = new Uint8Array(this.hdrOutWords.buffer);
  /** What the packet service's peek says of the next frame (reused: no array per frame). */
  private readonly rxInfo = new Uint32Array(7);
  private readonly c: Record<string, number> = { rxFiltered: 0, rxDroppedTooBig: 0, ctrlOk: 0, ctrlErr: 0, linkChanges: 0 };

  constructor(opts: NetOptions) {
    super(opts.log);
    this.port = opts.port;
    if (opts.mac.length !== 6) throw new Error('net: a MAC address is 6 bytes');
    this.initialMac = opts.mac.slice();
    this.mac = this.setMac(opts.mac);
    this.mtu = opts.mtu ?? 1500;
    if (!(Number.isInteger(this.mtu) && this.mtu >= 68 && this.mtu <= NET_MAX_MTU)) throw new Error(`net: mtu ${this.mtu} outside 68..${NET_MAX_MTU}`);
    this.maxFrame = this.mtu + ETH_HLEN + VLAN_HLEN;
    this.maxPairs = opts.queuePairs ?? 1;
    if (!(Number.isInteger(this.maxPairs) && this.maxPairs >= 1 && this.maxPairs <= NET_MAX_QUEUE_PAIRS)) throw new Error(`net: queuePairs ${this.maxPairs} outside 1..${NET_MAX_QUEUE_PAIRS}`);
    this.numQueues = 2 * this.maxPairs + 1;
    this.rxHeld = Array.from({ length: this.maxPairs }, () => []);
    this.features =
      VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_MTU | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_STATUS |
      VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_RX_EXTRA | VIRTIO_NET_F_CTRL_MAC_ADDR | (this.maxPairs > 1 ? VIRTIO_NET_F_MQ : 0n);
  }

  readConfig(): Uint8Array {
    const b = new Uint8Array(NET_CONFIG_SIZE);
    const v = new DataView(b.buffer);
    b.set(this.mac, 0);
    v.setUint16(6, this.linkUp ? VIRTIO_NET_S_LINK_UP : 0, true);
    v.setUint16(8, this.maxPairs, true);
    v.setUint16(10, this.mtu, true);
    return b;
  }

  /** §5.1.3.1: the control features need the control queue. */
  override acceptFeatures(f: bigint): boolean {
    const needCtrl = VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_RX_EXTRA | VIRTIO_NET_F_MQ | VIRTIO_NET_F_CTRL_MAC_ADDR;
    return !(f & needCtrl) || (f & VIRTIO_NET_F_CTRL_VQ) !== 0n;
  }

  override activate(ctx: Parameters<VirtioDevice['activate']>[0]): void {
    super.activate(ctx);
    const f = ctx.features;
    this.hdrSize = netHdrSize(f);
    this.mrg = (f & VIRTIO_NET_F_MRG_RXBUF) !== 0n;
    this.guestCsum = (f & VIRTIO_NET_F_GUEST_CSUM) !== 0n;
    this.csum = (f & VIRTIO_NET_F_CSUM) !== 0n;
    this.ctrlIndex = f & VIRTIO_NET_F_MQ ? 2 * this.maxPairs : 2;
    this.port.setOffloads(this.guestCsum ? 1 : 0);
  }

  processQueue(i: number, budget: number): boolean {
    const ctx = this.ctx;
    if (!ctx) return false;
    const q = ctx.queue(i);
    if (!q) return false;
    if (i === this.ctrlIndex) return this.drain(q, budget, (chain) => this.control(chain));
    if (i >= 2 * (ctx.features & VIRTIO_NET_F_MQ ? this.maxPairs : 1)) return false;
    if (i % 2 === 1) {
      this.txPair = (i - 1) / 2;
      return this.drainTx(q, budget);
    }
    return this.receive(budget);
  }

  override onService(budget: number): boolean {
    const more = this.receive(budget);
    if (more) this.ctx?.kick(0); // continue from the queue loop: the transport re-runs kicked queues
    return more;
  }

  // ---- transmit ---------------------------------------------------------------------------------

  private drop(dir: 'tx' | 'ctrl', why: string): void {
    const k = `${dir}Dropped.${why}`;
    this.c[k] = (this.c[k] ?? 0) + 1;
  }

  /**
   * Transmits up to `budget` chains of `q` (VirtioDevice.drain with the per-chain handler inline: the
   * per-packet path). Each chain: header read once, checked, frame handed to the packet service by window
   * ranges, chain returned with 0 bytes written.
   */
  private drainTx(q: Virtqueue, budget: number): boolean {
    const hdrSize = this.hdrSize;
    const words = this.hdrInWords;
    const maxFrame = this.maxFrame;
    const regions = CHAIN_RANGES;
    const port = this.port;
    // Fixed while this runs (the link changes in receive, the pairs by control commands): fetched once.
    const linkUp = this.linkUp;
    const steering = this.curPairs > 1;
    // The frame counters in locals, added to the device's once, whichever way this returns or throws.
    let frames = 0;
    let bytes = 0;
    try {
      for (let n = 0; ; ) {
        const chain = n < budget ? q.pop() : null;
        if (!chain) {
          if (n >= budget) return true;
          if (!q.armAvailEvent()) return false;
          continue;
        }
        n++;
        const total = chain.readableBytes;
        if (total < hdrSize) this.drop('tx', 'shortHeader');
        else {
          const nr = chain.readHead(words, hdrSize);
          // The header's fields from the private copy (parseNetHdr's layout, read as words).
          const w0 = words[0]!;
          const w1 = words[1]!;
          const hflags = w0 & 0xff;
          const gsoType = (w0 >>> 8) & 0xff;
          const hdrLen = w0 >>> 16;
          const frameLen = total - hdrSize;
          let why = '';
          // checkTxHeader's answer without a call when nothing is wrong and NEEDS_CSUM is clear (the same conditions).
          if (!(frameLen >= ETH_HLEN && frameLen <= maxFrame && gsoType === VIRTIO_NET_HDR_GSO_NONE && hdrLen <= frameLen && (hflags & VIRTIO_NET_HDR_F_NEEDS_CSUM) === 0)) {
            const h = this.txHdr;
            parseNetHdr(this.hdrIn, h);
            why = checkTxHeader(h, frameLen, maxFrame, this.csum);
          }
          if (why) this.drop('tx', why);
          else if (!linkUp) this.drop('tx', 'linkDown');
          else {
            const flags = hflags & VIRTIO_NET_HDR_F_NEEDS_CSUM ? PACKET_F_NEEDS_CSUM : 0;
            const cs = w1 >>> 16;
            const co = words[2]! & 0xffff;
            let res = 0;
            if (nr === 1) res = port.send(regions[0]!, regions[1]!, flags, cs, co); // the frame in one range
            else {
              for (let k = 0; k < 2 * nr; k += 2) {
                const last = k + 2 >= 2 * nr;
                res = port.send(regions[k]!, regions[k + 1]!, flags | (last ? 0 : PACKET_F_MORE), cs, co);
                if (res < 0) break;
              }
            }
            if (res < 0) this.drop('tx', res === -ENETDOWN ? 'linkDown' : `errno${-res}`);
            else {
              if (steering && res > 0) this.flowTable[res % FLOW_TABLE_SIZE] = this.txPair + 1;
              frames++;
              bytes += frameLen;
            }
          }
        }
        q.pushUsed(chain, 0);
      }
    } finally {
      this.txFrames += frames;
      this.txBytes += bytes;
    }
  }

  // ---- receive ----------------------------------------------------------------------------------

  /** Receive filtering (§5.1.6.5.1–2) on the destination address. */
  private accepts(dstHi: number, dstLo: number): boolean {
    const f = this.filter;
    if (f.promisc) return true;
    if (dstHi === 0xffff && dstLo === 0xffffffff) return !f.nobcast;
    const key = dstHi * 0x100000000 + dstLo;
    if (dstHi & 0x100) {
      if (f.nomulti) return false;
      return f.allmulti || f.multi.has(key);
    }
    if (f.nouni) return false;
    return f.alluni || (dstHi === this.macHi && dstLo === this.macLo) || f.uni.has(key);
  }

  /** A private copy of `m` as the device's MAC, with its destination words; returns the copy. */
  private setMac(m: Uint8Array): Uint8Array {
    const copy = m.slice();
    this.macHi = copy[0]! & 1 ? -1 : (copy[0]! << 8) | copy[1]!; // multicast: equal to no unicast destination
    this.macLo = ((copy[2]! << 24) | (copy[3]! << 16) | (copy[4]! << 8) | copy[5]!) >>> 0;
    return copy;
  }

  /** Notes the link state the packet service reports; a change updates STATUS and sends EVENT_CONFIG. */
  private setLink(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.c['linkChanges']!++;
    if (this.ctx && this.ctx.features & VIRTIO_NET_F_STATUS) this.ctx.configChanged();
  }

  /**
   * Moves frames from the packet service into receive buffers, at most `budget`; true if the budget ran
   * out with frames left. A frame whose receive queue has no (or not enough) buffers waits in the
   * service, whose queue is bounded: the switch drops and counts beyond it. With several queue pairs
   * such a frame does not hold back the others: up to NET_RX_LOOKAHEAD frames waiting for receive
   * queues without buffers are passed over (`skip`), each queue's frames staying in order, and the first
   * frame whose queue can take it is promoted to the front of the service's queue and delivered.
   */
  private receive(budget: number): boolean {
    const ctx = this.ctx;
    if (!ctx) return false;
    const port = this.port;
    const hdrSize = this.hdrSize;
    const hdr = this.hdrOut;
    const hw = this.hdrOutWords;
    // Fixed while frames move (control commands, activate and resets run between device calls): fetched once.
    const filter = this.filter;
    const pairs = this.curPairs;
    const guestCsum = this.guestCsum;
    const mrg = this.mrg;
    const rxHeld = this.rxHeld;
    const q0 = ctx.queue(0); // receiveq1, fetched once (queues change only between device calls)
    const info = this.rxInfo;
    // A frame to our own (unicast) address passes unless unicast is off (§5.1.6.5.1): accepts()'s
    // answer without the call, for the usual frame.
    const macHi = this.macHi;
    const macLo = this.macLo;
    const ownPasses = !filter.nouni;
    const promisc = filter.promisc;
    // The frame counters in locals, added to the device's once, whichever way this returns or throws.
    let frames = 0;
    let bytes = 0;
    // Multiqueue: frames at the front of the service's queue left for receive queues found without
    // buffers in this call (`blocked`, one bit per pair). Always 0 with one pair.
    let skip = 0;
    let blocked = 0;
    try {
      for (let n = 0; n < budget; ) {
        const r = port.peek(info, skip);
        if (r !== 1) {
          this.setLink(r !== -ENETDOWN);
          return false;
        }
        if (!this.linkUp) this.setLink(true);
        const len = info[0]!;
        const flags = info[1]!;
        const csumStart = info[2]!;
        const csumOffset = info[3]!;
        if (!promisc && !(ownPasses && info[4] === macHi && info[5] === macLo) && !this.accepts(info[4]!, info[5]!)) {
          if (skip > 0) port.promote(skip);
          port.recv(0, 0, 0); // drops the frame (−EMSGSIZE by contract)
          this.c['rxFiltered']!++;
          n++;
          continue;
        }
        let pair = 0;
        if (pairs > 1) {
          pair = this.steer(info[6]!);
          if (blocked & (1 << pair)) {
            // its queue has no buffers: leave the frame where it is, look at the next
            if (++skip >= NET_RX_LOOKAHEAD) return false;
            continue;
          }
        }
        const q = pair === 0 ? q0 : ctx.queue(2 * pair);
        let waits = q === null; // a receive queue that is not live (reset, not enabled yet) takes nothing
        if (q !== null) {
          hw[0] = 0;
          hw[1] = 0;
          hw[2] = 0;
          if (guestCsum) {
            if (flags & PACKET_F_NEEDS_CSUM) {
              hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
              hdr[6] = csumStart & 0xff;
              hdr[7] = csumStart >> 8;
              hdr[8] = csumOffset & 0xff;
              hdr[9] = csumOffset >> 8;
            } else if (flags & PACKET_F_DATA_VALID) hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
          }
          if (rxHeld[pair]!.length === 0) {
            // The usual case, nothing held and the next buffer takes the whole frame: fillMerged or fillOne
            // reduced to that one buffer, inline (same checks, same order); anything else goes on there with
            // the buffer held (fillOne takes it back from `rxHeld` as it would have popped it).
            const chain = q.pop();
            if (chain) {
              const wb = chain.writableBytes;
              if (wb >= hdrSize + len) {
                if (skip > 0) port.promote(skip);
                hdr[10] = 1; // num_buffers 1 (byte 11 was zeroed with the header)
                const nr = chain.writeHead(hw, hdrSize, len);
                const r = CHAIN_RANGES;
                for (let k = 0; k < 2 * nr; k += 2) port.recv(r[k]!, r[k + 1]!, PACKET_F_MORE); // recvInto inline
                q.pushUsed(chain, hdrSize + len);
                frames++;
                bytes += len;
                n++;
                continue;
              }
              if (wb < hdrSize) this.rxBufferTooSmall(chain);
              rxHeld[pair]!.push(chain);
            } else waits = !q.armAvailEvent();
          }
          if (!waits) {
            if (skip > 0) port.promote(skip); // fillMerged and fillOne take the front frame
            waits = !(mrg ? this.fillMerged(q, pair, len) : this.fillOne(q, pair, len));
          }
        }
        if (!waits) n++;
        else {
          // Wait for buffers. With several pairs only this queue waits: its frame stays queued (at the front
          // if it was promoted, the frames it passed behind it in their order) and the next one is looked at.
          if (pairs <= 1) return false;
          blocked |= 1 << pair;
          if (++skip >= NET_RX_LOOKAHEAD) return false;
        }
      }
      return true;
    } finally {
      this.rxFrames += frames;
      this.rxBytes += bytes;
    }
  }

  /** Multiqueue steering (§5.1.6.5.6): the pair that last sent on this flow, else by hash; receiveq1 until VQ_PAIRS_SET. */
  private steer(hash: number): number {
    if (this.curPairs <= 1) return 0;
    const t = this.flowTable[hash % FLOW_TABLE_SIZE]!;
    return t > 0 && t <= this.curPairs ? t - 1 : hash % this.curPairs;
  }

  /** Thrown for a receive buffer with less room than the header (callers test `writableBytes < hdrSize`). */
  private rxBufferTooSmall(chain: DescriptorChain): never {
    throw new GuestProtocolError('NET_RX_BUFFER_TOO_SMALL', 'virtio §5.1.6.3.1', `receive buffer of ${chain.writableBytes} writable bytes < ${this.hdrSize}-byte virtio_net_hdr`);
  }

  /** Without MRG_RXBUF: the whole frame in one buffer (§5.1.6.3.2), num_buffers 1. Returns false if no buffer. */
  private fillOne(q: Virtqueue, pair: number, len: number): boolean {
    const held = this.rxHeld[pair]!;
    const chain = held.shift() ?? q.pop();
    if (!chain) {
      q.armAvailEvent();
      return false;
    }
    if (chain.writableBytes < this.hdrSize) this.rxBufferTooSmall(chain);
    if (chain.writableBytes < this.hdrSize + len) {
      held.unshift(chain); // keep the buffer for the next frame
      this.port.recv(0, 0, 0);
      this.c['rxDroppedTooBig']!++;
      return true;
    }
    this.hdrOut[10] = 1;
    this.recvInto(chain.writeHead(this.hdrOutWords, this.hdrSize, len));
    q.pushUsed(chain, this.hdrSize + len);
    this.rxFrames++;
    this.rxBytes += len;
    return true;
  }

  /** With MRG_RXBUF: as many buffers as the frame needs, all but the last filled completely (§5.1.6.4). */
  private fillMerged(q: Virtqueue, pair: number, len: number): boolean {
    const held = this.rxHeld[pair]!;
    const need = this.hdrSize + len;
    let have = 0;
    for (let k = 0; k < held.length; k++) have += held[k]!.writableBytes;
    while (have < need) {
      if (held.length >= q.size) {
        // every buffer of the ring is not enough: the frame can never fit
        this.port.recv(0, 0, 0);
        this.c['rxDroppedTooBig']!++;
        return true;
      }
      const chain = q.pop();
      if (!chain) {
        if (!q.armAvailEvent()) return false;
        continue;
      }
      if (chain.writableBytes < this.hdrSize) this.rxBufferTooSmall(chain);
      held.push(chain);
      have += chain.writableBytes;
    }
    let count = 0;
    for (let left = need; left > 0; count++) {
      const wb = held[count]!.writableBytes;
      left -= left < wb ? left : wb;
    }
    this.hdrOut[10] = count & 0xff;
    this.hdrOut[11] = count >> 8;
    let left = len;
    for (let k = 0; k < count; k++) {
      const chain = held[k]!;
      const w = chain.writer();
      if (k === 0) w.writeWords(this.hdrOutWords, this.hdrSize);
      const take = left < w.remaining ? left : w.remaining;
      this.recvInto(w.take(take));
      left -= take;
      q.pushUsed(chain, w.written);
    }
    if (count === 1) held.shift();
    else held.splice(0, count);
    this.rxFrames++;
    this.rxBytes += len;
    return true;
  }

  /** Copies the head frame's next bytes into the `n` window ranges `take()` left in CHAIN_RANGES (partial reads; the last one completes it). */
  private recvInto(n: number): void {
    const r = CHAIN_RANGES;
    const port = this.port;
    for (let k = 0; k < 2 * n; k += 2) port.recv(r[k]!, r[k + 1]!, PACKET_F_MORE);
  }

  // ---- control ----------------------------------------------------------------------------------

  /** One control command (§5.1.6.5): class, command, data readable; the ack byte writable. */
  private control(chain: DescriptorChain): number {
    const w = chain.writer();
    if (w.remaining < 1) {
      this.drop('ctrl', 'noAck'); // nowhere to answer: give the chain back untouched
      return 0;
    }
    const r = chain.reader();
    let ack = VIRTIO_NET_ERR;
    if (r.remaining >= 2 && r.remaining <= NET_CTRL_MAX_BYTES) {
      const cmd = r.read(r.remaining);
      ack = this.command(cmd[0]!, cmd[1]!, cmd.subarray(2));
    }
    this.c[ack === VIRTIO_NET_OK ? 'ctrlOk' : 'ctrlErr']!++;
    w.write(Uint8Array.of(ack));
    return 1;
  }

  private command(cls: number, cmd: number, d: Uint8Array): number {
    const f = this.ctx!.features;
    if (cls === VIRTIO_NET_CTRL_RX) {
      const need = cmd <= VIRTIO_NET_CTRL_RX_ALLMULTI ? VIRTIO_NET_F_CTRL_RX : VIRTIO_NET_F_CTRL_RX_EXTRA;
      if (cmd > VIRTIO_NET_CTRL_RX_NOBCAST || !(f & need) || d.length !== 1 || d[0]! > 1) return VIRTIO_NET_ERR;
      const on = d[0] === 1;
      const keys = ['promisc', 'allmulti', 'alluni', 'nomulti', 'nouni', 'nobcast'] as const;
      this.filter[keys[cmd]!] = on;
      return VIRTIO_NET_OK;
    }
    if (cls === VIRTIO_NET_CTRL_MAC) {
      if (cmd === VIRTIO_NET_CTRL_MAC_TABLE_SET && f & VIRTIO_NET_F_CTRL_RX) {
        const t = parseMacTables(d);
        if (!t) return VIRTIO_NET_ERR;
        this.filter.uni = new Set(t.uni);
        this.filter.multi = new Set(t.multi);
        return VIRTIO_NET_OK;
      }
      if (cmd === VIRTIO_NET_CTRL_MAC_ADDR_SET && f & VIRTIO_NET_F_CTRL_MAC_ADDR && d.length === 6) {
        this.mac = this.setMac(d);
        return VIRTIO_NET_OK;
      }
      return VIRTIO_NET_ERR;
    }
    if (cls === VIRTIO_NET_CTRL_MQ && cmd === VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && f & VIRTIO_NET_F_MQ && d.length === 2) {
      const n = d[0]! | (d[1]! << 8);
      if (n < 1 || n > this.maxPairs) return VIRTIO_NET_ERR;
      this.curPairs = n;
      this.flowTable.fill(0);
      return VIRTIO_NET_OK;
    }
    return VIRTIO_NET_ERR;
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  override queueReset(i: number): void {
    if (i % 2 === 0 && i / 2 < this.maxPairs && i !== this.ctrlIndex) this.rxHeld[i / 2] = [];
  }

  override reset(): void {
    super.reset();
    this.rxHeld = Array.from({ length: this.maxPairs }, () => []);
    this.filter = defaultFilter();
    this.mac = this.setMac(this.initialMac);
    this.curPairs = 1;
    this.flowTable.fill(0);
    this.port.setOffloads(0);
  }

  override counters(): Record<string, number> {
    return { txFrames: this.txFrames, txBytes: this.txBytes, rxFrames: this.rxFrames, rxBytes: this.rxBytes, ...this.c, linkUp: this.linkUp ? 1 : 0, queuePairs: this.curPairs };
  }
}
