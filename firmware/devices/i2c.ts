/**
 * virtio-i2c — device ID 34, virtio 1.3 §5.19 (an I2C adapter).
 * Queues: 0 requestq.
 * Features: VIRTIO_I2C_F_ZERO_LENGTH_REQUEST — offered, and required of the driver (§5.19.6.2: the
 * device rejects a driver that does not negotiate it, so FEATURES_OK is refused without it).
 * Config space: none (§5.19.4).
 * Requests (§5.19.6): out_hdr { le16 addr; le16 padding; le32 flags } device-readable, then buf
 * (device-readable for a write, device-writable for a read with VIRTIO_I2C_FLAGS_M_RD, absent for a
 * zero-length request such as SMBus Quick), then in_hdr { u8 status } device-writable, last.
 * Transactions: requests linked by VIRTIO_I2C_FLAGS_FAIL_NEXT form a group, which is one I2C
 * transaction (repeated START between the requests, one STOP after the last: a register-pointer write
 * followed by a read is the usual pair). The device gathers a whole group, holding its chains until the
 * request without FAIL_NEXT is available, and runs it as one `transfer` on the bus service, which is
 * what a real controller's driver (Linux's i2c_transfer) needs. The first request that fails gets
 * VIRTIO_I2C_MSG_ERR and so does every later request of its group (FAIL_NEXT); earlier ones completed.
 * Errors per request (VIRTIO_I2C_MSG_ERR): no target acknowledged the address (NACK), the target
 * refused the data (a read past what it has, a write to a read-only register), reserved flag bits,
 * a buffer whose direction contradicts M_RD, a 10-bit or malformed address, a buffer longer than
 * I2C_MAX_MESSAGE_BYTES. Structural faults (GuestProtocolError, DEVICE_NEEDS_RESET): a chain without
 * the 8-byte out_hdr or without a writable status byte.
 * Used length: bytes written — the read data and the status on a successful read, else 1.
 * Not supported: 10-bit addressing (the board's targets are 7-bit; such requests are NACKed).
 */
import { guestCheck } from '../errors';
import type { Logger } from '../hal';
import { LOG_WARN } from '../hal';
import type { I2cBusService } from '../services';
import { I2C_ENTRY_WORDS, I2C_M_MORE, I2C_M_READ, I2C_MAX_ENTRIES, I2C_MAX_MESSAGE_BYTES } from '../services';
import { VIRTIO_I2C_F_ZERO_LENGTH_REQUEST, VIRTIO_I2C_FLAGS_FAIL_NEXT, VIRTIO_I2C_FLAGS_M_RD, VIRTIO_I2C_MSG_ERR, VIRTIO_I2C_MSG_OK, VIRTIO_ID_I2C_ADAPTER } from '../virtio';
import type { DescriptorChain } from '../virtqueue/chain';
import { CHAIN_RANGES } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';
import { VirtioDevice } from './device';

/** struct virtio_i2c_out_hdr. */
export const I2C_OUT_HDR_BYTES = 8;
/**
 * Requests one group (transaction) may have: a longer one fails whole (Linux's I2C_RDWR allows 42); so
 * does one that reaches half the queue size (see processQueue).
 */
export const I2C_MAX_GROUP = 64;
/** Largest queue the device accepts (a group is held in flight, so this also bounds what it holds). */
export const I2C_MAX_QUEUE_SIZE = 256;
const FLAGS_KNOWN = VIRTIO_I2C_FLAGS_FAIL_NEXT | VIRTIO_I2C_FLAGS_M_RD;

/** A parsed out_hdr (from the private copy). */
export interface I2cRequestHeader {
  /** 7-bit target address, or -1 when `addr` is not a 7-bit address (10-bit or malformed). */
  target: number;
  /** True for a 10-bit address (§5.19.6's second format). */
  tenBit: boolean;
  flags: number;
}

/** Decodes struct virtio_i2c_out_hdr (§5.19.6): 7-bit addresses are A6..A0 in bits 7:1, bit 0 and bits 15:8 zero. */
export function parseI2cHeader(b: Uint8Array): I2cRequestHeader {
  const addr = b[0]! | (b[1]! << 8);
  const flags = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
  const sevenBit = (addr & 0xff01) === 0;
  return { target: sevenBit ? addr >> 1 : -1, tenBit: (addr & 0xf9) === 0xf0, flags };
}

/** Why a request fails before it reaches the bus (counter names), or null when it is well-formed. */
export function checkI2cRequest(h: I2cRequestHeader, readable: number, writable: number): string | null {
  if ((h.flags & ~FLAGS_KNOWN) !== 0) return 'reservedFlags';
  const read = (h.flags & VIRTIO_I2C_FLAGS_M_RD) !== 0;
  // A write's buffer is device-readable, a read's device-writable (§5.19.6.1): the other side holds only the headers.
  if (read ? readable !== I2C_OUT_HDR_BYTES : writable !== 1) return 'directionMismatch';
  const len = read ? writable - 1 : readable - I2C_OUT_HDR_BYTES;
  if (len > I2C_MAX_MESSAGE_BYTES) return 'tooLong';
  if (h.target < 0) return h.tenBit ? 'nack' : 'badAddress';
  return null;
}

export interface I2cOptions {
  bus: I2cBusService;
  log: Logger;
}

/** One request of the group being gathered. */
interface Pending {
  chain: DescriptorChain;
  /** Entries of this request in `entries` (0 when it failed its checks). */
  entryCount: number;
  read: boolean;
  /** Data bytes (the read's buffer, or the write's). */
  len: number;
  /** Set when the request failed its own checks (counter name). */
  bad: string | null;
}

export class I2cDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_I2C_ADAPTER;
  readonly name = 'i2c';
  readonly numQueues = 1;
  override readonly maxQueueSize = I2C_MAX_QUEUE_SIZE;
  readonly features = VIRTIO_I2C_F_ZERO_LENGTH_REQUEST;
  readonly configSize = 0;
  private readonly bus: I2cBusService;
  /** The group being gathered (chains held until its last request is available). */
  private group: Pending[] = [];
  /** The transfer entries of `group` (private: the service reads only these words). */
  private readonly entries = new Uint32Array(I2C_MAX_ENTRIES * I2C_ENTRY_WORDS);
  private entryCount = 0;
  private readonly c = { requests: 0, transactions: 0, ok: 0, nack: 0, failNext: 0, groupTooLong: 0, busError: 0, bytesRead: 0, bytesWritten: 0 } as Record<string, number>;

  constructor(opts: I2cOptions) {
    super(opts.log);
    this.bus = opts.bus;
  }

  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }

  override acceptFeatures(f: bigint): boolean {
    return (f & VIRTIO_I2C_F_ZERO_LENGTH_REQUEST) !== 0n;
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q || i !== 0) return false;
    return this.drain(q, budget, (chain) => {
      const open = this.gather(chain);
      if (!open) this.runGroup(q, false);
      else if (this.group.length >= Math.min(I2C_MAX_GROUP, q.size >> 1 || 1)) {
        // A request takes at least two descriptors (out_hdr, status) unless indirect: a transaction this
        // long holds half the ring or more, and past I2C_MAX_GROUP it is longer than any driver sends.
        // Fail it whole rather than hold the ring until the driver gives up.
        this.c['groupTooLong']!++;
        this.runGroup(q, true);
      }
      return null; // completed by runGroup, with the rest of its transaction
    });
  }

  /**
   * Parses one request from its private copy and appends it (and its transfer entries) to the group;
   * returns true when it has FAIL_NEXT (its transaction goes on).
   */
  private gather(chain: DescriptorChain): boolean {
    const readable = chain.readableBytes;
    const writable = chain.writableBytes;
    guestCheck(readable >= I2C_OUT_HDR_BYTES, 'I2C_NO_HEADER', 'virtio §5.19.6', `request has ${readable} device-readable bytes, the out_hdr needs ${I2C_OUT_HDR_BYTES}`);
    guestCheck(writable >= 1, 'I2C_NO_STATUS', 'virtio §5.19.6', 'request has no device-writable byte for the status');
    const rd = chain.reader();
    const h = parseI2cHeader(rd.read(I2C_OUT_HDR_BYTES));
    this.c['requests']!++;
    const read = (h.flags & VIRTIO_I2C_FLAGS_M_RD) !== 0;
    let bad = checkI2cRequest(h, readable, writable);
    const len = read ? writable - 1 : readable - I2C_OUT_HDR_BYTES;
    let count = 0;
    if (!bad) {
      const nr = read ? chain.writer().take(len) : rd.take(len);
      const ranges = Math.max(nr, 1); // a zero-length request is one entry of length 0
      if (this.entryCount + ranges > I2C_MAX_ENTRIES) bad = 'tooManySegments';
      else {
        const e = this.entries;
        for (let k = 0; k < ranges; k++) {
          const at = (this.entryCount + k) * I2C_ENTRY_WORDS;
          e[at] = h.target;
          e[at + 1] = (read ? I2C_M_READ : 0) | (k < ranges - 1 ? I2C_M_MORE : 0);
          e[at + 2] = nr > 0 ? CHAIN_RANGES[2 * k]! : 0;
          e[at + 3] = nr > 0 ? CHAIN_RANGES[2 * k + 1]! : 0;
        }
        this.entryCount += ranges;
        count = ranges;
      }
    }
    this.group.push({ chain, entryCount: count, read, len, bad });
    return (h.flags & VIRTIO_I2C_FLAGS_FAIL_NEXT) !== 0;
  }

  /**
   * Runs the gathered group as one transaction: the requests before the first one that failed its own
   * checks go to the bus; that one, and everything after the first failure, gets VIRTIO_I2C_MSG_ERR.
   */
  private runGroup(q: Virtqueue, tooLong: boolean): void {
    const g = this.group;
    let firstBad = tooLong ? 0 : g.findIndex((p) => p.bad !== null);
    if (firstBad < 0) firstBad = g.length;
    let done = 0;
    let busFailed = false;
    if (firstBad > 0) {
      let entries = 0;
      for (let k = 0; k < firstBad; k++) entries += g[k]!.entryCount;
      const r = this.bus.transfer(this.entries, entries);
      this.c['transactions']!++;
      if (r < 0) {
        busFailed = true;
        this.c['busError']!++;
        this.log(LOG_WARN, `i2c: the bus refused a transaction of ${firstBad} messages (errno ${-r})`);
      } else done = Math.min(r, firstBad);
    }
    for (let k = 0; k < g.length; k++) {
      const p = g[k]!;
      const ok = k < done;
      if (!ok) {
        // The first failure is counted by its reason; the rest of its transaction as failNext.
        if (k === firstBad && p.bad) this.c[p.bad] = (this.c[p.bad] ?? 0) + 1;
        else if (k === done && k < firstBad && !busFailed) this.c['nack']!++;
        else this.c['failNext']!++;
      } else {
        this.c['ok']!++;
        if (p.read) this.c['bytesRead']! += p.len;
        else this.c['bytesWritten']! += p.len;
      }
      p.chain.writeLastByte(ok ? VIRTIO_I2C_MSG_OK : VIRTIO_I2C_MSG_ERR); // in_hdr is the last writable byte
      q.pushUsed(p.chain, ok && p.read ? p.len + 1 : 1);
    }
    this.group = [];
    this.entryCount = 0;
  }

  /** The bus is synchronous: no service event is ever this device's. */
  override ownsService(_h: number): boolean {
    return false;
  }

  override queueReset(_i: number): void {
    this.group = [];
    this.entryCount = 0;
  }

  override reset(): void {
    super.reset();
    this.queueReset(0);
  }

  override counters(): Record<string, number> {
    return { ...this.c, held: this.group.length };
  }
}
