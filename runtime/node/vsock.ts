/**
 * The node runtime's host side of virtio-vsock (docs/hal.md vsock rows): an in-memory host world with
 * the semantics runtime/native/vsock.c gives unix sockets, so that tests, the simulator and the demo
 * drive the same firmware paths deterministically.
 *
 *   guest → host   a guest connection to port P reaches the listener the host registered on P
 *                  (`listen`), as a native guest connection reaches the unix socket `<uds>_P`; no
 *                  listener: ECONNREFUSED
 *   host → guest   `connect(P)` is a host client asking for guest port P (native: `CONNECT P\n` on
 *                  `<uds>`); it is open once the guest accepted (`localPort` is what `OK <port>` says)
 *
 * Each connection has a simulated kernel socket between the runtime and the host program
 * (`socketBuffer` bytes, the host program reads it with `read()`), and behind it the runtime's own
 * buffer of at most VSOCK_HOST_BUFFER bytes: what a send cannot put into the socket waits there, and
 * a send that would overflow it takes nothing (−ENOBUFS). Readiness is reported as the native runtime
 * reports it: readable once, then again only after the firmware found nothing to read.
 */
// The HAL's vsock numbers (firmware/services.ts VsockService and errno values). The node runtime sees
// the bundle only through the HAL contract, as the native one does (vsock.c has the same #defines);
// test/vsock/host-constants.test.ts keeps both sides equal.
export const VSOCK_EV_READABLE = 1;
export const VSOCK_EV_WRITABLE = 2;
export const VSOCK_EV_HUP = 4;
export const VSOCK_EV_ACCEPT = 8;
export const VSOCK_SHUT_RD = 1;
export const VSOCK_SHUT_WR = 2;
export const VSOCK_HOST_CONNECTIONS = 32;
export const VSOCK_HOST_BUFFER = 128 * 1024;
const EBADF = 9;
const EMFILE = 24;
const EPIPE = 32;
const ENOBUFS = 105;
const ENOTCONN = 107;
const ESHUTDOWN = 108;
const ECONNREFUSED = 111;

/** What the node runtime calls for its `vsock*` HAL functions (window ranges already cut out as byte views). */
export interface HostVsock {
  connect(port: number): number;
  established(id: number, localPort: number): number;
  send(id: number, bytes: Uint8Array): number;
  recv(id: number, dst: Uint8Array): number;
  shutdown(id: number, how: number): number;
  close(id: number): number;
  /** Up to `max` (id, flags, value) entries of connections with news; each reported once. */
  poll(max: number): number[];
  /** The runtime's hook: called when news appears (the runtime then calls `bulkhead.onService`). */
  onNews: (() => void) | null;
}

/** Bytes in a queue of chunks. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  bytes = 0;
  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b.slice());
    this.bytes += b.length;
  }
  /** Takes up to dst.length bytes into dst; returns how many. */
  takeInto(dst: Uint8Array): number {
    let n = 0;
    while (n < dst.length && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, dst.length - n);
      dst.set(c.subarray(0, k), n);
      n += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.bytes -= n;
    return n;
  }
  take(max = Infinity): Uint8Array {
    const out = new Uint8Array(Math.min(max, this.bytes));
    this.takeInto(out);
    return out;
  }
}

/** One connection as the host program sees it. */
export class MemoryVsockConn {
  /** `pending`: a host client waiting for the guest; `open`; `refused`: the guest (or the device) refused it; `closed`. */
  state: 'pending' | 'open' | 'refused' | 'closed' = 'pending';
  /** For a host-initiated connection: the host port of `OK <port>` once the guest accepted. */
  localPort = 0;
  /** The guest sends no more (after its last byte was read, `read()` returns nothing more). */
  guestEnded = false;
  /** The device closed the connection (guest RST, reset, or the guest finished a clean close). */
  closedByDevice = false;
  /** Called when bytes from the guest arrive in the socket (an echo server writes them back from here). */
  onData: ((c: MemoryVsockConn) => void) | null = null;
  /** Bytes the guest sent in total, and bytes the host program wrote. */
  received = 0;
  sent = 0;

  /** @internal runtime side */
  readonly sock = new ByteQueue(); // runtime → host program (the kernel socket)
  readonly buffered = new ByteQueue(); // the runtime's buffer in front of it
  readonly fromHost = new ByteQueue(); // host program → runtime
  hostEnded = false; // the host program shut its write side
  hostClosed = false; // the host program closed entirely
  wrShutPending = false;
  rdShut = false;
  armed = true;
  news = 0;
  inOnData = false;
  dataAgain = false;

  constructor(
    private readonly world: MemoryVsockHost,
    readonly id: number,
    /** The guest port (host-initiated) or host port (guest-initiated) of this connection. */
    readonly port: number,
    readonly hostInitiated: boolean,
    /** Capacity of the simulated kernel socket towards the host program. */
    public socketBuffer: number,
  ) {}

  /** Host program → guest: queues bytes; returns how many were taken (all, unless the guest side is gone). */
  write(data: Uint8Array | string): number {
    const b = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    if (this.hostEnded || this.hostClosed || this.closedByDevice || this.rdShut) return 0;
    this.fromHost.push(b);
    this.sent += b.length;
    this.world.readable(this);
    return b.length;
  }

  /** Host program reads what the guest sent (up to `max` bytes); room in the socket lets the runtime's buffer drain. */
  read(max = Infinity): Uint8Array {
    const out = this.sock.take(max);
    this.world.drain(this);
    return out;
  }

  /** Bytes waiting for the host program to read. */
  get readable(): number {
    return this.sock.bytes;
  }

  /** Host program shuts its write side: the guest sees EOF after the bytes before it. */
  end(): void {
    if (this.hostEnded) return;
    this.hostEnded = true;
    this.world.readable(this);
  }

  /** Host program closes the connection entirely. */
  close(): void {
    if (this.hostClosed) return;
    this.hostClosed = true;
    this.hostEnded = true;
    if (this.state === 'pending' && this.hostInitiated) this.state = 'closed';
    this.world.hup(this);
  }
}

/** A listening host port: guest connections to it, oldest first. */
export interface MemoryVsockListener {
  port: number;
  connections: MemoryVsockConn[];
}

/** The in-memory host world of one vsock service. */
export class MemoryVsockHost implements HostVsock {
  onNews: (() => void) | null = null;
  private readonly conns: (MemoryVsockConn | null)[] = new Array<MemoryVsockConn | null>(VSOCK_HOST_CONNECTIONS).fill(null);
  private readonly listeners = new Map<number, { l: MemoryVsockListener; onConnection?: (c: MemoryVsockConn) => void }>();
  /** Host clients waiting for a connection slot are refused; counted here. */
  refusedNoRoom = 0;
  /** Default capacity of the simulated kernel socket of new connections. */
  socketBuffer: number;

  constructor(opts: { socketBuffer?: number } = {}) {
    this.socketBuffer = opts.socketBuffer ?? 64 * 1024;
  }

  // ---- the host program's side ----------------------------------------------------------------

  /** Accepts guest connections to host port `port` (`onConnection` runs as each arrives). */
  listen(port: number, onConnection?: (c: MemoryVsockConn) => void): MemoryVsockListener {
    const l: MemoryVsockListener = { port, connections: [] };
    this.listeners.set(port, { l, onConnection });
    return l;
  }

  unlisten(port: number): void {
    this.listeners.delete(port);
  }

  /** A host client asking for guest port `guestPort` (native: `CONNECT <guestPort>\n` on `<uds>`); null when there is no slot. */
  connectToGuest(guestPort: number): MemoryVsockConn | null {
    const id = this.freeId();
    if (id < 0) {
      this.refusedNoRoom++;
      return null;
    }
    const c = new MemoryVsockConn(this, id, guestPort >>> 0, true, this.socketBuffer);
    this.conns[id] = c;
    this.mark(c, VSOCK_EV_ACCEPT);
    return c;
  }

  /** Every connection the runtime holds now. */
  connections(): MemoryVsockConn[] {
    return this.conns.filter((c): c is MemoryVsockConn => c !== null);
  }

  // ---- the runtime's side (HostVsock) ----------------------------------------------------------

  private freeId(): number {
    return this.conns.indexOf(null);
  }

  private get(id: number): MemoryVsockConn | null {
    return Number.isInteger(id) && id >= 0 && id < VSOCK_HOST_CONNECTIONS ? this.conns[id]! : null;
  }

  private mark(c: MemoryVsockConn, flag: number): void {
    c.news |= flag;
    this.onNews?.();
  }

  /** @internal */
  readable(c: MemoryVsockConn): void {
    if (c.armed && this.conns[c.id] === c && c.state === 'open') {
      c.armed = false;
      this.mark(c, VSOCK_EV_READABLE);
    }
  }

  /** @internal the host program read: move the runtime's buffer into the socket */
  drain(c: MemoryVsockConn): void {
    if (this.conns[c.id] !== c) return;
    const before = c.buffered.bytes;
    this.flush(c);
    if (c.buffered.bytes < before) this.mark(c, VSOCK_EV_WRITABLE);
  }

  /** @internal */
  hup(c: MemoryVsockConn): void {
    if (this.conns[c.id] === c) this.mark(c, VSOCK_EV_HUP);
  }

  private flush(c: MemoryVsockConn): void {
    const room = c.socketBuffer - c.sock.bytes;
    if (room > 0 && c.buffered.bytes > 0) {
      const b = c.buffered.take(room);
      this.deliver(c, b);
    }
    if (c.buffered.bytes === 0 && c.wrShutPending) {
      c.wrShutPending = false;
      c.guestEnded = true;
    }
  }

  private deliver(c: MemoryVsockConn, b: Uint8Array): void {
    c.sock.push(b);
    c.received += b.length;
    // onData never runs inside itself: bytes its own read() let in (the buffer draining into the room
    // it made) call it again after it returned, as an event loop would, so that what it writes back
    // keeps the order it read.
    if (c.inOnData) {
      c.dataAgain = true;
      return;
    }
    c.inOnData = true;
    try {
      do {
        c.dataAgain = false;
        c.onData?.(c);
      } while (c.dataAgain);
    } finally {
      c.inOnData = false;
    }
  }

  connect(port: number): number {
    const l = this.listeners.get(port >>> 0);
    if (!l) return -ECONNREFUSED;
    const id = this.freeId();
    if (id < 0) return -EMFILE;
    const c = new MemoryVsockConn(this, id, port >>> 0, false, this.socketBuffer);
    c.state = 'open';
    this.conns[id] = c;
    l.l.connections.push(c);
    l.onConnection?.(c);
    if (c.fromHost.bytes > 0 || c.hostEnded) this.readable(c);
    return id;
  }

  established(id: number, localPort: number): number {
    const c = this.get(id);
    if (!c) return -EBADF;
    if (c.hostClosed) return -EPIPE;
    c.state = 'open';
    c.localPort = localPort;
    if (c.fromHost.bytes > 0 || c.hostEnded) this.readable(c);
    return 0;
  }

  send(id: number, bytes: Uint8Array): number {
    const c = this.get(id);
    if (!c) return -EBADF;
    if (c.hostClosed || c.wrShutPending || c.guestEnded) return -EPIPE;
    if (c.buffered.bytes === 0) {
      const room = Math.max(0, c.socketBuffer - c.sock.bytes);
      if (bytes.length <= room) {
        this.deliver(c, bytes);
        return 0;
      }
      if (bytes.length - room > VSOCK_HOST_BUFFER) return -ENOBUFS;
      // The rest is buffered before the first part reaches the socket: a host program that reads it at
      // once (in onData) drains the buffer in that read, or nothing would move it on again.
      c.buffered.push(bytes.subarray(room));
      if (room > 0) this.deliver(c, bytes.subarray(0, room));
      return c.buffered.bytes;
    }
    if (c.buffered.bytes + bytes.length > VSOCK_HOST_BUFFER) return -ENOBUFS;
    c.buffered.push(bytes);
    return c.buffered.bytes;
  }

  recv(id: number, dst: Uint8Array): number {
    const c = this.get(id);
    if (!c) return -EBADF;
    if (c.state !== 'open') return -ENOTCONN;
    if (c.rdShut) return -ESHUTDOWN;
    const n = c.fromHost.takeInto(dst);
    if (n > 0) return n;
    if (c.hostEnded) return -ESHUTDOWN; // EOF (a host that closed entirely was reported as HUP too)
    c.armed = true; // nothing now: the next host bytes are reported
    return 0;
  }

  shutdown(id: number, how: number): number {
    const c = this.get(id);
    if (!c) return -EBADF;
    if (how & VSOCK_SHUT_RD) c.rdShut = true;
    if (how & VSOCK_SHUT_WR && !c.guestEnded) {
      c.wrShutPending = true;
      this.flush(c);
    }
    return 0;
  }

  close(id: number): number {
    const c = this.get(id);
    if (!c) return -EBADF;
    this.conns[id] = null;
    c.closedByDevice = true;
    if (c.state === 'pending') c.state = 'refused';
    else c.state = 'closed';
    return 0;
  }

  poll(max: number): number[] {
    const out: number[] = [];
    for (const c of this.conns) {
      if (!c || c.news === 0 || out.length >= 3 * max) continue;
      const accept = (c.news & VSOCK_EV_ACCEPT) !== 0;
      out.push(c.id, c.news, accept ? c.port : c.buffered.bytes);
      c.news = 0;
    }
    return out;
  }
}
