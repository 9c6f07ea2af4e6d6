/**
 * The node runtime's built-in virtual switch: the backing of `packet` services (docs/hal.md, docs/net.md).
 *
 * A learning Ethernet switch with a bounded frame queue per port. Every virtio-net device of a board opens
 * one port (its service names the switch: `{ "kind": "packet", "switch": "sw0" }`); the host can attach
 * test ports to inject and capture frames. Frames carry checksum metadata next to the bytes (the
 * virtio_net_hdr flags a sender used), and the switch owns the checksum contract: a frame still marked
 * NEEDS_CSUM is completed here before it reaches a port whose consumer did not negotiate GUEST_CSUM, and
 * passed through unchanged to one that did. Nothing is buffered without bound: a port whose frontend posts
 * no receive buffers fills its queue and further frames towards it are dropped and counted.
 */

/** `packetSend` flag: more fragments of this frame follow (gather). */
export const PACKET_F_MORE = 0x100;
/** Frame flags, equal to the virtio_net_hdr flags (virtio 1.3 §5.1.6). */
export const PACKET_F_NEEDS_CSUM = 1;
export const PACKET_F_DATA_VALID = 2;
/** Largest frame the switch carries (64 KiB + an Ethernet header: a GSO-sized frame, though none is offered). */
export const PACKET_MAX_FRAME = 65535 + 14;
/** Frames queued towards one port before further ones are dropped. */
export const PORT_QUEUE_FRAMES = 256;
/** Learned MAC addresses per switch (the table is cleared when full). */
export const SWITCH_MAC_TABLE = 1024;

const EINVAL = 22;
const EMSGSIZE = 90;
const ENETDOWN = 100;

/** A frame in flight: the Ethernet frame bytes and its checksum metadata. */
export interface Frame {
  data: Uint8Array;
  /** PACKET_F_NEEDS_CSUM / PACKET_F_DATA_VALID. */
  flags: number;
  csumStart: number;
  csumOffset: number;
}

/** Per-port counters. */
export interface PortCounters {
  /** Frames and bytes this port sent into the switch. */
  txFrames: number;
  txBytes: number;
  /** Frames the port's consumer took, and frames dropped because its queue was full or its link down. */
  rxFrames: number;
  rxBytes: number;
  rxDroppedQueueFull: number;
  rxDroppedLinkDown: number;
  /** Frames refused at send (bad checksum offsets, too large, link down). */
  txErrors: number;
  /** Checksums the switch completed for this port's consumer. */
  csumCompleted: number;
}

/** RFC 1071 one's-complement sum of `b[start, end)` added to `sum` (unfolded; callers fold). */
export function onesComplementSum(b: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (i < end) sum += b[i]! << 8;
  return sum;
}

/** Folds a one's-complement sum to 16 bits. */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * Completes a NEEDS_CSUM frame in place (virtio 1.3 §5.1.6.2 point 1): the one's-complement sum from
 * csumStart to the end (the field at csumStart+csumOffset holds the pseudo-header seed and is summed too),
 * inverted, stored big-endian at csumStart+csumOffset. A result of 0 is sent as 0xffff, as Linux does
 * (CSUM_MANGLED_0: for UDP 0 means "no checksum"). Returns false if the offsets leave the frame.
 */
export function completeChecksum(b: Uint8Array, csumStart: number, csumOffset: number): boolean {
  const at = csumStart + csumOffset;
  if (!(csumStart >= 0 && csumOffset >= 0 && at + 2 <= b.length)) return false;
  const c = ~foldChecksum(onesComplementSum(b, csumStart, b.length)) & 0xffff;
  const v = c === 0 ? 0xffff : c;
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
  return true;
}

/**
 * A symmetric flow hash (same value for both directions of an IPv4/IPv6 TCP/UDP flow; 0 for anything
 * else), < 2^31. Devices use it for multiqueue receive steering (virtio 1.3 §5.1.6.5.6).
 */
export function flowHash(b: Uint8Array): number {
  if (b.length < 14) return 0;
  const type = (b[12]! << 8) | b[13]!;
  let l4 = -1;
  let proto = 0;
  let a = 0;
  if (type === 0x0800 && b.length >= 34) {
    const ihl = (b[14]! & 0x0f) * 4;
    proto = b[23]!;
    a = onesComplementSum(b, 26, 34);
    if (ihl >= 20) l4 = 14 + ihl;
  } else if (type === 0x86dd && b.length >= 54) {
    proto = b[20]!;
    a = onesComplementSum(b, 22, 54);
    l4 = 54;
  } else return 0;
  let ports = 0;
  if ((proto === 6 || proto === 17) && l4 > 0 && l4 + 4 <= b.length) ports = ((b[l4]! << 8) | b[l4 + 1]!) + ((b[l4 + 2]! << 8) | b[l4 + 3]!);
  let h = Math.imul((a ^ (ports << 3) ^ (proto << 24)) >>> 0, 0x9e3779b1);
  h ^= h >>> 15;
  return (h >>> 1) || 1;
}

/** One port of a switch. */
export class SwitchPort {
  /** Frames waiting for this port's consumer (bounded by PORT_QUEUE_FRAMES). */
  private queue: Frame[] = [];
  private qHead = 0;
  /** Bytes of the head frame already read by a partial `recv`. */
  private rxPos = 0;
  private txParts: Uint8Array[] = [];
  private txLen = 0;
  /** The consumer negotiated GUEST_CSUM: NEEDS_CSUM frames reach it unchanged. */
  acceptsPartialCsum = false;
  /** Link state as the device reports it in its config STATUS. */
  linkUp = true;
  readonly counters: PortCounters = { txFrames: 0, txBytes: 0, rxFrames: 0, rxBytes: 0, rxDroppedQueueFull: 0, rxDroppedLinkDown: 0, txErrors: 0, csumCompleted: 0 };

  constructor(
    readonly sw: VirtualSwitch,
    readonly name: string,
    /** Called when frames or a link change arrive (the runtime then calls `bulkhead.onService`). */
    readonly onInput: () => void,
  ) {}

  /** Frames queued towards this port. */
  get queued(): number {
    return this.queue.length - this.qHead;
  }

  /** The switch hands this port a frame; false if it was dropped (queue full, link down). */
  deliver(f: Frame): boolean {
    if (!this.linkUp) {
      this.counters.rxDroppedLinkDown++;
      return false;
    }
    if (this.queued >= PORT_QUEUE_FRAMES) {
      this.counters.rxDroppedQueueFull++;
      return false;
    }
    if (this.qHead > 64 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    this.queue.push(f);
    this.onInput();
    return true;
  }

  /**
   * The frame `k` places behind the next one (0: the next) for the consumer, its checksum completed here
   * unless the consumer accepts partial checksums; null when there is none. A frame abandoned half-read
   * is dropped first.
   */
  peek(k = 0): Frame | null {
    const at = this.queuedAt(k);
    if (at < 0) return null;
    let f = this.queue[at]!;
    if (f.flags & PACKET_F_NEEDS_CSUM && !this.acceptsPartialCsum) {
      // Another port may share the frame object: complete a private copy.
      const data = f.data.slice();
      completeChecksum(data, f.csumStart, f.csumOffset);
      f = { data, flags: PACKET_F_DATA_VALID, csumStart: 0, csumOffset: 0 };
      this.queue[at] = f;
      this.counters.csumCompleted++;
    }
    return f;
  }

  /**
   * Moves the frame `k` places behind the next one to the front; the `k` frames it passes keep their
   * order. False when there is no such frame. A frame abandoned half-read is dropped first, as by peek.
   */
  promote(k: number): boolean {
    const at = this.queuedAt(k);
    if (at < 0) return false;
    const q = this.queue;
    const f = q[at]!;
    for (let i = at; i > this.qHead; i--) q[i] = q[i - 1]!;
    q[this.qHead] = f;
    return true;
  }

  /** Where in `queue` the frame `k` places behind the next one is, -1 if none; drops a half-read frame first. */
  private queuedAt(k: number): number {
    if (this.rxPos > 0) this.shift();
    return Number.isInteger(k) && k >= 0 && k < this.queued ? this.qHead + k : -1;
  }

  /**
   * Copies the head frame (from where a partial read stopped) into `dst`. With `partial`, copies up to
   * dst.length bytes and keeps the rest; without, a frame longer than dst is dropped (−EMSGSIZE).
   * Returns the bytes copied (0 = no frame).
   */
  recv(dst: Uint8Array, partial: boolean): number {
    const f = this.queue[this.qHead];
    if (!f) return 0;
    const rest = f.data.length - this.rxPos;
    if (!partial && rest > dst.length) {
      this.shift();
      return -EMSGSIZE;
    }
    const n = Math.min(rest, dst.length);
    dst.set(f.data.subarray(this.rxPos, this.rxPos + n));
    this.rxPos += n;
    if (this.rxPos === f.data.length) {
      this.counters.rxFrames++;
      this.counters.rxBytes += f.data.length;
      this.shift();
    }
    return n;
  }

  private shift(): void {
    this.queue[this.qHead] = undefined as unknown as Frame;
    this.qHead++;
    this.rxPos = 0;
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    }
  }

  /** Drops every queued frame (link down). */
  flush(): void {
    this.counters.rxDroppedLinkDown += this.queued;
    this.queue = [];
    this.qHead = 0;
    this.rxPos = 0;
  }

  /**
   * A fragment (or the whole) of a frame from the consumer. With PACKET_F_MORE the bytes are gathered;
   * the last fragment sends the frame. Returns the frame's flow hash (≥ 0) or −errno.
   */
  send(bytes: Uint8Array, flags: number, csumStart: number, csumOffset: number): number {
    if (this.txLen + bytes.length > PACKET_MAX_FRAME) {
      this.txParts = [];
      this.txLen = 0;
      this.counters.txErrors++;
      return -EMSGSIZE;
    }
    this.txParts.push(bytes.slice());
    this.txLen += bytes.length;
    if (flags & PACKET_F_MORE) return 0;
    let data: Uint8Array;
    if (this.txParts.length === 1) data = this.txParts[0]!;
    else {
      data = new Uint8Array(this.txLen);
      let p = 0;
      for (const part of this.txParts) {
        data.set(part, p);
        p += part.length;
      }
    }
    this.txParts = [];
    this.txLen = 0;
    if (!this.linkUp) {
      this.counters.txErrors++;
      return -ENETDOWN;
    }
    const f: Frame = { data, flags: flags & (PACKET_F_NEEDS_CSUM | PACKET_F_DATA_VALID), csumStart, csumOffset };
    if (f.flags & PACKET_F_NEEDS_CSUM && !(csumStart >= 0 && csumOffset >= 0 && csumStart + csumOffset + 2 <= data.length)) {
      this.counters.txErrors++;
      return -EINVAL;
    }
    this.counters.txFrames++;
    this.counters.txBytes += data.length;
    this.sw.forward(this, f);
    return flowHash(data);
  }

  /** Sets the link state; down drops what is queued. The consumer is told (it reports STATUS). */
  setLink(up: boolean): void {
    if (this.linkUp === up) return;
    this.linkUp = up;
    if (!up) this.flush();
    this.onInput();
  }
}

/** Switch-wide counters. */
export interface SwitchCounters {
  forwarded: number;
  flooded: number;
  learned: number;
}

/** A learning Ethernet switch. */
export class VirtualSwitch {
  readonly ports: SwitchPort[] = [];
  private readonly macTable = new Map<number, SwitchPort>();
  readonly counters: SwitchCounters = { forwarded: 0, flooded: 0, learned: 0 };

  constructor(readonly name: string) {}

  /** Attaches a port; `onInput` is called when frames or a link change arrive for it. */
  attach(name: string, onInput: () => void = () => {}): SwitchPort {
    const p = new SwitchPort(this, name, onInput);
    this.ports.push(p);
    return p;
  }

  /** The port named `name`. */
  port(name: string): SwitchPort | undefined {
    return this.ports.find((p) => p.name === name);
  }

  /** Learns the source address and delivers `f` to its destination port, or floods it. */
  forward(from: SwitchPort, f: Frame): void {
    const d = f.data;
    if (d.length < 14) return;
    const src = macKey(d, 6);
    if (!(d[6]! & 1) && this.macTable.get(src) !== from) {
      if (this.macTable.size >= SWITCH_MAC_TABLE) this.macTable.clear();
      this.macTable.set(src, from);
      this.counters.learned++;
    }
    const to = d[0]! & 1 ? undefined : this.macTable.get(macKey(d, 0));
    if (to) {
      if (to !== from) {
        this.counters.forwarded++;
        to.deliver(f);
      }
      return;
    }
    this.counters.flooded++;
    for (const p of this.ports) if (p !== from) p.deliver(f);
  }
}

function macKey(b: Uint8Array, at: number): number {
  return ((b[at]! << 8) | b[at + 1]!) * 0x100000000 + (((b[at + 2]! << 24) | (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!) >>> 0);
}
