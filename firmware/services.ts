/**
 * Backing services as device models see them. Data moves between the backing and the window by
 * window offset (ranges the virtqueue layer validated), never through a JS copy. main.ts binds these
 * to the runtime's HAL; tests may pass their own. Errors are negative errno values.
 */

/** Entropy source (virtio-rng). */
export interface EntropyService {
  /** Writes up to `len` random bytes at window offset `winOffset`; returns bytes written. */
  read(winOffset: number, len: number): number;
}

/** Byte stream (virtio-console port). */
export interface StreamService {
  /** Takes bytes from the window; returns bytes accepted (0 = would block) or −errno. */
  write(winOffset: number, len: number): number;
  /** Delivers pending input into the window; returns bytes (0 = none) or −errno. */
  read(winOffset: number, maxLen: number): number;
}

/** Block storage (virtio-blk). Offsets are bytes, exact up to 2^53. */
export interface StorageService {
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Requests `submit` takes at once; 0: the service is synchronous only (no submit/complete/cancel). */
  readonly queueDepth: number;
  /** The storage's logical block size (512, or the O_DIRECT alignment): file offsets and lengths of requests are multiples of it. */
  readonly blockSize: number;
  /** The runtime's handle: `onService(h)` with this handle means completions are waiting. */
  readonly handle: number;
  read(fileOffset: number, winOffset: number, len: number): number;
  write(fileOffset: number, winOffset: number, len: number): number;
  /** Returns once written data is durable. */
  flush(): number;
  discard(fileOffset: number, len: number): number;
  writeZeroes(fileOffset: number, len: number): number;
  /**
   * Asynchronous storage (queueDepth > 0): starts request `tag` (STORAGE_OP_*) over `n` (winOffset, len)
   * pairs of `ranges`; 0 or −errno. At most queueDepth requests are in flight.
   */
  submit(tag: number, op: number, fileOffset: number, ranges: Uint32Array, n: number): number;
  /** Finished requests as (tag, result) pairs in `out`; returns the number of pairs (0: none). */
  complete(out: Int32Array): number;
  /** Request `tag` will not touch the window any more (it finished or was stopped); its completion still comes once. */
  cancel(tag: number): number;
}

/** Asynchronous storage operations (docs/hal.md, `storageSubmit`). */
export const STORAGE_OP_READ = 0;
export const STORAGE_OP_WRITE = 1;
export const STORAGE_OP_FLUSH = 2;

/** Packet port (virtio-net); the contract is docs/hal.md's packet rows. */
export interface PacketService {
  /** Sends a frame (or, with PACKET_F_MORE, a fragment of one); returns its flow hash (≥ 0) or −errno. */
  send(winOffset: number, len: number, flags: number, csumStart: number, csumOffset: number): number;
  /**
   * The next frame's [len, flags, csumStart, csumOffset, dstMacHi16, dstMacLo32, flowHash], 0 if none,
   * −ENETDOWN if the link is down. With `out` (≥ 7 elements) the values go into it and the answer is 1.
   * With `k`, the frame k places behind the next one instead (0 if there is none).
   */
  peek(out?: Uint32Array, k?: number): number | number[];
  /**
   * Moves the frame `k` places behind the next one to the front, so that `recv` takes it next; the `k`
   * frames it passes keep their order. 1, 0 if there is no such frame, −errno.
   */
  promote(k: number): number;
  /** Copies the next frame (with PACKET_F_MORE: up to maxLen bytes of it) into the window; returns bytes, 0 = none, −errno. */
  recv(winOffset: number, maxLen: number, flags: number): number;
  /** Offloads the consumer accepts: bit 0 = partial checksums (NEEDS_CSUM frames) as they are. */
  setOffloads(offloads: number): number;
}

/**
 * Host side of virtio-vsock (docs/hal.md vsock rows, docs/vsock.md): stream connections to host
 * programs, identified by the runtime's connection id (0 ≤ id < VSOCK_HOST_CONNECTIONS). Bytes move
 * between the window and the host connection by window offset. Errors are −errno.
 */
export interface VsockService {
  /** Connects to the host program listening on `port` (native: the unix socket `<uds>_<port>`): id, or −errno (nobody listens, no room). */
  connect(port: number): number;
  /** The guest accepted host connection `id` (RESPONSE): the runtime tells the host client (`OK <localPort>\n`). */
  established(id: number, localPort: number): number;
  /**
   * Bytes for the host from the window: what the host connection cannot take now is buffered, at most
   * VSOCK_HOST_BUFFER per connection. Returns the bytes still buffered after the call, or −errno
   * (−ENOBUFS: the buffer would overflow, nothing taken; −EPIPE: the host no longer reads).
   */
  send(id: number, winOffset: number, len: number): number;
  /** Bytes from the host into the window: > 0, 0 = none now, −ESHUTDOWN the host sends no more (EOF), −ECONNRESET. */
  recv(id: number, winOffset: number, maxLen: number): number;
  /** Half-close: VSOCK_SHUT_RD (no more reads from the host), VSOCK_SHUT_WR (after the buffered bytes, no more writes). */
  shutdown(id: number, how: number): number;
  /** Closes the connection now (buffered bytes are dropped); the id may be reused afterwards. */
  close(id: number): number;
  /**
   * Connections with news since the last call, as (id, VSOCK_EV_* flags, value) triples in `out`
   * (at most out.length / 3; each id once); returns how many. `value`: the guest port a new host client
   * asked for (ACCEPT), else the bytes still buffered towards the host.
   */
  poll(out: Uint32Array): number;
}

/** vsockPoll flags: host data or EOF to read; buffered bytes went out; the host end closed entirely; a new host client (CONNECT line read). */
export const VSOCK_EV_READABLE = 1;
export const VSOCK_EV_WRITABLE = 2;
export const VSOCK_EV_HUP = 4;
export const VSOCK_EV_ACCEPT = 8;
/** vsockShutdown `how`. */
export const VSOCK_SHUT_RD = 1;
export const VSOCK_SHUT_WR = 2;
/** HAL limits every runtime keeps: connection ids are below VSOCK_HOST_CONNECTIONS; bytes buffered per connection towards the host. */
export const VSOCK_HOST_CONNECTIONS = 32;
export const VSOCK_HOST_BUFFER = 128 * 1024;

/**
 * An I2C bus controller (virtio-i2c); the contract is docs/hal.md's i2c rows. One call is one I2C
 * transaction, the way Linux's i2c_transfer() takes it: START, the messages in order with a repeated
 * START between them, STOP. Each entry of `msgs` is four words: 7-bit target address, flags
 * (I2C_M_READ, I2C_M_MORE), window offset, length. A message whose buffer lies in several window
 * ranges takes one entry per range, all but the last with I2C_M_MORE. Data moves between the target
 * and the window by offset, never through JS.
 */
export interface I2cBusService {
  /**
   * Runs the transaction of the first `entries` entries. Returns how many messages completed (all of
   * them, or the index of the first one a target did not acknowledge: the bus stopped there), or
   * −errno when the bus refused the transaction as a whole (nothing was moved).
   */
  transfer(msgs: Uint32Array, entries: number): number;
}

/** i2c message flags (docs/hal.md). */
export const I2C_M_READ = 1;
export const I2C_M_MORE = 0x100;
/** Words per i2c transfer entry. */
export const I2C_ENTRY_WORDS = 4;
/** Entries one transfer may carry at most (the runtimes refuse more with −EINVAL). */
export const I2C_MAX_ENTRIES = 256;
/** Bytes one message may move at most (Linux's i2c-dev limit; the runtimes refuse more with −EINVAL). */
export const I2C_MAX_MESSAGE_BYTES = 8192;

/**
 * GPIO lines (virtio-gpio); the contract is docs/hal.md's gpio rows. The service holds each line's
 * direction and output value as the driver set them, and the value the host drives on its inputs; the
 * host side (a control socket, the simulator's API) sees the first two and sets the third.
 */
export interface GpioService {
  /** The runtime's handle: `onService(h)` with this handle means the host moved a line. */
  readonly handle: number;
  /** VIRTIO_GPIO_DIRECTION_NONE / OUT / IN for `line`; 0 or −errno. */
  setDirection(line: number, direction: number): number;
  /** The value `line` drives while (or once) it is an output; 0 or −errno. */
  setValue(line: number, value: number): number;
  /**
   * Samples every line into `out` (at least as many elements as lines): GPIO_LEVEL when the line is
   * high (an output: its output value; otherwise what the host drives), GPIO_ROSE / GPIO_FELL when it
   * went up / down since the previous sample. Returns the number of lines.
   */
  sample(out: Uint32Array): number;
}

/** gpio sample bits (docs/hal.md). */
export const GPIO_LEVEL = 1;
export const GPIO_ROSE = 2;
export const GPIO_FELL = 4;
/** Lines one gpio service has at most. */
export const GPIO_MAX_LINES = 256;
/** Longest line name (Linux's GPIO_MAX_NAME_SIZE is 32 with the NUL). */
export const GPIO_MAX_NAME = 31;

/** Packet service flags (docs/hal.md): frame flags equal the virtio_net_hdr flags; MORE gathers/scatters. */
export const PACKET_F_NEEDS_CSUM = 1;
export const PACKET_F_DATA_VALID = 2;
export const PACKET_F_MORE = 0x100;

export const EBADF = 9;
export const EIO = 5;
export const EINVAL = 22;
export const EAGAIN = 11;
export const EROFS = 30;
export const EMSGSIZE = 90;
export const ENETDOWN = 100;
export const EPIPE = 32;
export const EMFILE = 24;
export const ENOBUFS = 105;
export const ECONNRESET = 104;
export const ENOTCONN = 107;
export const ESHUTDOWN = 108;
export const ECONNREFUSED = 111;
