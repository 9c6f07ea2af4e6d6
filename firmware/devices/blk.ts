/**
 * virtio-blk — device ID 2, virtio 1.3 §5.2.
 * Queues: requestq0..requestqN-1 (N = `queues` of the manifest entry, 1..BLK_MAX_QUEUES; the driver
 * uses more than requestq0 only with VIRTIO_BLK_F_MQ).
 * Features: SIZE_MAX, SEG_MAX, BLK_SIZE, TOPOLOGY, FLUSH, CONFIG_WCE, MQ; RO when the storage is
 * read-only, else DISCARD and WRITE_ZEROES (write_zeroes_may_unmap = 1: the storage's discard reads
 * back zeroes, docs/hal.md).
 * Config layout (§5.2.4), 60 bytes: le64 capacity @0, le32 size_max @8, le32 seg_max @12,
 * geometry (cylinders le16 @16, heads u8 @18, sectors u8 @19; zero, not offered), le32 blk_size @20,
 * topology (physical_block_exp u8 @24, alignment_offset u8 @25, le16 min_io_size @26,
 * le32 opt_io_size @28), u8 writeback @32 (writable with CONFIG_WCE), u8 unused @33,
 * le16 num_queues @34, le32 max_discard_sectors @36, le32 max_discard_seg @40,
 * le32 discard_sector_alignment @44, le32 max_write_zeroes_sectors @48, le32 max_write_zeroes_seg @52,
 * u8 write_zeroes_may_unmap @56, 3 bytes unused.
 * Requests (§5.2.6): IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES. Every other type (GET_LIFETIME,
 * SECURE_ERASE, zoned commands) completes with UNSUPP. The 16-byte header is read once into private
 * memory; the status byte is the last writable byte and is written after the data moved (and, for a
 * FLUSH or a writethrough OUT, after the storage said the data is durable). Used length: data bytes
 * written + 1 (the status), so 1 for everything but a successful IN or GET_ID.
 * Cache: writeback when FLUSH is negotiated (switchable to writethrough with CONFIG_WCE), writethrough
 * otherwise; in writethrough every OUT, DISCARD and WRITE_ZEROES is flushed before it completes.
 * Completion: on a synchronous storage service every request completes before the next is popped;
 * on an asynchronous one (docs/hal.md, `storageSubmit`) IN, OUT and FLUSH are submitted and the device
 * holds their chains (at most BLK_MAX_IN_FLIGHT, and the storage's queueDepth) until the storage
 * completes them, in whatever order it finishes them (§2.7.8 allows used buffers in any order). A FLUSH
 * is submitted only once every write submitted before it finished, so its fdatasync covers them.
 * Reset (device or queue) cancels the requests it orphans: the storage stops touching the window for
 * them before reset returns, and their late completions only free their records.
 * Not supported: GEOMETRY (legacy CHS), LIFETIME, SECURE_ERASE, ZONED.
 */
import { GuestProtocolError } from '../errors';
import type { Logger } from '../hal';
import { LOG_INFO } from '../hal';
import type { StorageService } from '../services';
import { STORAGE_OP_FLUSH, STORAGE_OP_READ, STORAGE_OP_WRITE } from '../services';
import { VIRTIO_ID_BLOCK } from '../virtio';
import type { DescriptorChain } from '../virtqueue/chain';
import { CHAIN_RANGES } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';
import { VirtioDevice } from './device';

/** Feature bits (§5.2.3). */
export const VIRTIO_BLK_F_SIZE_MAX = 1n << 1n;
export const VIRTIO_BLK_F_SEG_MAX = 1n << 2n;
export const VIRTIO_BLK_F_GEOMETRY = 1n << 4n;
export const VIRTIO_BLK_F_RO = 1n << 5n;
export const VIRTIO_BLK_F_BLK_SIZE = 1n << 6n;
export const VIRTIO_BLK_F_FLUSH = 1n << 9n;
export const VIRTIO_BLK_F_TOPOLOGY = 1n << 10n;
export const VIRTIO_BLK_F_CONFIG_WCE = 1n << 11n;
export const VIRTIO_BLK_F_MQ = 1n << 12n;
export const VIRTIO_BLK_F_DISCARD = 1n << 13n;
export const VIRTIO_BLK_F_WRITE_ZEROES = 1n << 14n;
export const VIRTIO_BLK_F_LIFETIME = 1n << 15n;
export const VIRTIO_BLK_F_SECURE_ERASE = 1n << 16n;

/** Request types (§5.2.6). */
export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;
export const VIRTIO_BLK_T_GET_LIFETIME = 10;
export const VIRTIO_BLK_T_DISCARD = 11;
export const VIRTIO_BLK_T_WRITE_ZEROES = 13;
export const VIRTIO_BLK_T_SECURE_ERASE = 14;

/** Status values (§5.2.6). */
export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

/** Discard / write-zeroes segment flags (§5.2.6: struct virtio_blk_discard_write_zeroes). */
export const VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1;

export const SECTOR_SIZE = 512;
export const SECTOR_SHIFT = 9;
/** The request header: le32 type, le32 reserved, le64 sector. */
export const BLK_HEADER_BYTES = 16;
/** One discard / write-zeroes segment: le64 sector, le32 num_sectors, le32 flags. */
export const BLK_SEGMENT_BYTES = 16;
/** GET_ID writes at most this many bytes (§5.2.6: VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLK_ID_BYTES = 20;
export const BLK_CONFIG_SIZE = 60;

/** Request queues at most (MQ). */
export const BLK_MAX_QUEUES = 16;
/** size_max: the largest data segment we accept. */
export const BLK_SIZE_MAX = 1 << 20;
/** seg_max: data segments per request at most (QEMU offers the same; Linux then sends 1 MiB in one request). */
export const BLK_SEG_MAX = 254;
/** Data bytes one IN/OUT moves at most, whatever was negotiated: bounds the work of one chain. */
export const BLK_MAX_REQUEST_BYTES = 16 << 20;
/** Discard / write-zeroes limits offered in the config space (bound the work of one chain). */
export const BLK_MAX_DISCARD_SECTORS = 8192;
export const BLK_MAX_DISCARD_SEG = 16;
export const BLK_MAX_WRITE_ZEROES_SECTORS = 8192;
export const BLK_MAX_WRITE_ZEROES_SEG = 16;
/** Requests one device holds in flight at most on an asynchronous storage (also capped by the storage's queueDepth). */
export const BLK_MAX_IN_FLIGHT = 128;
/** Completions taken per storage.complete() call. */
const REAP_BATCH = 32;
/** complete() calls per reap: each request completes at most twice (an OUT, then its writethrough flush). */
const REAP_ROUNDS = Math.ceil((2 * BLK_MAX_IN_FLIGHT) / REAP_BATCH) + 1;
/** What a request record of the asynchronous path is doing. */
const R_FREE = 0;
const R_IN = 1;
const R_OUT = 2;
/** A writethrough OUT whose data is written: its flush is in flight under the same tag. */
const R_OUT_FLUSH = 3;
/** A FLUSH waiting for the writes submitted before it (not submitted yet). */
const R_FLUSH_WAIT = 4;
const R_FLUSH = 5;
/** `transfer`/`flushRequest` result: the request was submitted, its chain is held. */
const PENDING = -1;

/** Highest sector number whose byte offset is exact in a JS number (2^53 / 512). */
const MAX_EXACT_SECTOR = 2 ** (53 - SECTOR_SHIFT);

export interface BlkOptions {
  storage: StorageService;
  log: Logger;
  /** Request queues offered (default 1; more than one needs the driver to negotiate MQ). */
  queues?: number;
  /** GET_ID string (ASCII, at most 20 bytes; default "bulkhead"). */
  serial?: string;
  /** Physical block size in bytes, a power of two ≥ 512 (default 4096): the topology hint. */
  physicalBlockSize?: number;
}

/** A request header's sector (le64 as u32 halves), or -1 when it is not exact (≥ 2^44): always out of range. */
export function blkSector(lo: number, hi: number): number {
  const sector = hi * 0x100000000 + lo;
  return sector < MAX_EXACT_SECTOR ? sector : -1;
}

/** A discard / write-zeroes segment. */
export interface BlkSegment {
  sector: number;
  numSectors: number;
  flags: number;
}

/** Parses `n` segments of a discard / write-zeroes payload (private copy). */
export function parseBlkSegments(b: Uint8Array, n: number): BlkSegment[] {
  const v = new DataView(b.buffer, b.byteOffset, n * BLK_SEGMENT_BYTES);
  const out: BlkSegment[] = [];
  for (let i = 0; i < n; i++) {
    const lo = v.getUint32(i * 16, true);
    const hi = v.getUint32(i * 16 + 4, true);
    out.push({ sector: blkSector(lo, hi), numSectors: v.getUint32(i * 16 + 8, true), flags: v.getUint32(i * 16 + 12, true) });
  }
  return out;
}

/** True when sectors [sector, sector+count) lie inside a disk of `capacity` sectors. */
export function sectorsInRange(sector: number, count: number, capacity: number): boolean {
  return sector >= 0 && count >= 0 && sector <= capacity && count <= capacity - sector;
}

export interface BlkConfigFields {
  capacity: number;
  physicalBlockExp: number;
  writeback: number;
  numQueues: number;
}

/** Encodes the configuration space (§5.2.4). */
export function encodeBlkConfig(c: BlkConfigFields & { blkSize?: number }): Uint8Array {
  const b = new Uint8Array(BLK_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, c.capacity % 2 ** 32, true);
  v.setUint32(4, Math.floor(c.capacity / 2 ** 32), true);
  v.setUint32(8, BLK_SIZE_MAX, true);
  v.setUint32(12, BLK_SEG_MAX, true);
  v.setUint32(20, c.blkSize ?? SECTOR_SIZE, true);
  v.setUint8(24, c.physicalBlockExp);
  v.setUint8(25, 0);
  v.setUint16(26, 1 << c.physicalBlockExp, true); // min_io_size, in logical blocks
  v.setUint32(28, 0, true); // opt_io_size: no preference
  v.setUint8(32, c.writeback);
  v.setUint16(34, c.numQueues, true);
  v.setUint32(36, BLK_MAX_DISCARD_SECTORS, true);
  v.setUint32(40, BLK_MAX_DISCARD_SEG, true);
  v.setUint32(44, 1 << c.physicalBlockExp, true);
  v.setUint32(48, BLK_MAX_WRITE_ZEROES_SECTORS, true);
  v.setUint32(52, BLK_MAX_WRITE_ZEROES_SEG, true);
  v.setUint8(56, 1);
  return b;
}

const WRITEBACK_OFFSET = 32;

export class BlkDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly name = 'blk';
  readonly numQueues: number;
  readonly features: bigint;
  readonly configSize = BLK_CONFIG_SIZE;
  private readonly storage: StorageService;
  /** Capacity in 512-byte sectors (the file's tail beyond a whole sector is not addressable). */
  readonly capacity: number;
  private readonly physicalBlockExp: number;
  private readonly id: Uint8Array;
  /** The private copy of the request header being handled (one fetch, reused): le32 type @0, le64 sector @8 as halves. */
  private readonly hdrWords = new Uint32Array(BLK_HEADER_BYTES / 4);
  /** `handle` bound once (drain calls it per chain without a closure frame). */
  private readonly handleChain = this.handle.bind(this);
  /** The storage's logical block size (blk_size): requests must be multiples of it. */
  private readonly blockSize: number;
  /**
   * The asynchronous path (depth > 0): one record per request in flight, its index the storage tag.
   * Records are struct-of-arrays of `depth` entries, allocated once; `freeSlots` is a stack of free ones.
   */
  private readonly depth: number;
  private readonly recChain: (DescriptorChain | null)[];
  private readonly recQueue: (Virtqueue | null)[];
  private readonly recQi: Uint8Array;
  private readonly recKind: Uint8Array;
  /** The request's used length if it succeeds (IN: data + status, otherwise 1). */
  private readonly recUsed: Float64Array;
  /** OUT: its write sequence number (Infinity once its data is written); FLUSH: the newest write it waits for. */
  private readonly recSeq: Float64Array;
  /** Data bytes of an IN/OUT (counted when it completes). */
  private readonly recBytes: Float64Array;
  /** Orphaned by a reset (cancelled): its completion only frees the record. */
  private readonly recCancelled: Uint8Array;
  private readonly freeSlots: Int16Array;
  private nFree: number;
  /** Queues that stopped popping for want of a record: kicked when one frees. */
  private readonly stalled: Uint8Array;
  private anyStalled = false;
  /** Writes submitted so far (sequence numbers), OUT records in flight, FLUSH records waiting. */
  private writeSeq = 0;
  private writesInFlight = 0;
  private flushesWaiting = 0;
  private readonly doneBuf = new Int32Array(2 * REAP_BATCH);
  /** The queue `handleChain` serves (set by processQueue). */
  private curQueue: Virtqueue | null = null;
  private curQi = 0;
  private readonly fullCheck = this.full.bind(this);
  /** Features accepted at FEATURES_OK (the config's writeback field depends on them). */
  private negotiated = 0n;
  /** The writeback field: 1 writeback, 0 writethrough. */
  private writeback = 1;
  // Counters (numeric fields: the per-request path bumps them).
  private reads = 0;
  private writes = 0;
  private flushes = 0;
  private discards = 0;
  private writeZeroes = 0;
  private getIds = 0;
  private bytesRead = 0;
  private bytesWritten = 0;
  private ioErrors = 0;
  private unsupported = 0;
  private inFlightPeak = 0;
  private cancelled = 0;
  private flushesDeferred = 0;

  constructor(opts: BlkOptions) {
    super(opts.log);
    this.storage = opts.storage;
    const q = opts.queues ?? 1;
    if (!Number.isInteger(q) || q < 1 || q > BLK_MAX_QUEUES) throw new Error(`blk: queues must be 1..${BLK_MAX_QUEUES}, not ${q}`);
    this.numQueues = q;
    const pbs = opts.physicalBlockSize ?? 4096;
    const exp = Math.log2(Math.max(pbs, opts.storage.blockSize) / opts.storage.blockSize);
    if (!Number.isInteger(exp) || exp < 0 || exp > 15) throw new Error(`blk: physicalBlockSize ${pbs} is not a power of two in 512..16M`);
    this.physicalBlockExp = exp;
    this.blockSize = this.storage.blockSize;
    if (!Number.isInteger(Math.log2(this.blockSize / SECTOR_SIZE)) || this.blockSize < SECTOR_SIZE || this.blockSize > 65536) throw new Error(`blk: storage block size ${this.blockSize} is not a power of two in 512..64K`);
    this.capacity = Math.floor(this.storage.sizeBytes / this.blockSize) * (this.blockSize / SECTOR_SIZE);
    const depth = Math.min(BLK_MAX_IN_FLIGHT, Math.max(0, Math.floor(this.storage.queueDepth)));
    this.depth = depth;
    this.recChain = new Array<DescriptorChain | null>(depth).fill(null);
    this.recQueue = new Array<Virtqueue | null>(depth).fill(null);
    this.recQi = new Uint8Array(depth);
    this.recKind = new Uint8Array(depth);
    this.recUsed = new Float64Array(depth);
    this.recSeq = new Float64Array(depth);
    this.recBytes = new Float64Array(depth);
    this.recCancelled = new Uint8Array(depth);
    this.freeSlots = new Int16Array(depth);
    for (let r = 0; r < depth; r++) this.freeSlots[r] = depth - 1 - r;
    this.nFree = depth;
    this.stalled = new Uint8Array(q);
    const serial = opts.serial ?? 'bulkhead';
    this.id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
    for (let i = 0; i < Math.min(serial.length, VIRTIO_BLK_ID_BYTES); i++) this.id[i] = serial.charCodeAt(i) & 0x7f;
    let f = VIRTIO_BLK_F_SIZE_MAX | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_TOPOLOGY | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_CONFIG_WCE;
    if (q > 1) f |= VIRTIO_BLK_F_MQ;
    f |= this.storage.readOnly ? VIRTIO_BLK_F_RO : VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;
    this.features = f;
  }

  readConfig(): Uint8Array {
    return encodeBlkConfig({ capacity: this.capacity, physicalBlockExp: this.physicalBlockExp, writeback: this.writeback, numQueues: this.numQueues, blkSize: this.blockSize });
  }

  /** §5.2.5: only `writeback` is writable, with CONFIG_WCE negotiated, and only 0 or 1. */
  override writeConfig(offset: number, data: Uint8Array): boolean {
    if (!(this.negotiated & VIRTIO_BLK_F_CONFIG_WCE)) return false;
    if (offset !== WRITEBACK_OFFSET || data.length !== 1 || data[0]! > 1) return false;
    if (this.writeback === 1 && data[0] === 0) {
      // Going writethrough: what was written under writeback becomes durable now.
      if (this.storage.flush() < 0) return false;
    }
    this.writeback = data[0]!;
    this.log(LOG_INFO, `blk: cache mode ${this.writeback ? 'writeback' : 'writethrough'}`);
    return true;
  }

  /** §5.2.5.1: writeback needs FLUSH negotiated; without it every write is durable when it completes. */
  override acceptFeatures(features: bigint): boolean {
    this.negotiated = features;
    this.writeback = features & VIRTIO_BLK_F_FLUSH ? 1 : 0;
    return true;
  }

  /** Device reset: the requests in flight are cancelled (they stop touching the window before this returns). */
  override reset(): void {
    this.cancelWhere(-1);
    this.stalled.fill(0);
    this.anyStalled = false;
    super.reset();
    this.negotiated = 0n;
    this.writeback = 1;
  }

  /** RESET_VQUEUE: the requests of queue `i` are cancelled; the other queues' go on. */
  override queueReset(i: number): void {
    this.cancelWhere(i);
    this.stalled[i] = 0;
  }

  /** Shutdown: what is in flight stops (it was never acknowledged), then acknowledged writes are made durable. */
  override stop(): void {
    this.cancelWhere(-1);
    if (!this.storage.readOnly) this.storage.flush();
  }

  override ownsService(h: number): boolean {
    return this.depth > 0 && h === this.storage.handle;
  }

  /** The storage finished requests: complete their chains (in the order the storage finished them). */
  override onService(_budget: number): boolean {
    if (this.depth > 0) this.reap();
    return false;
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    if (i > 0 && !(this.negotiated & VIRTIO_BLK_F_MQ)) {
      throw new GuestProtocolError('BLK_QUEUE_WITHOUT_MQ', 'virtio §5.2.2', `requestq${i} used without VIRTIO_BLK_F_MQ`);
    }
    if (this.depth === 0) return this.drain(q, budget, this.handleChain);
    this.curQueue = q;
    this.curQi = i;
    const more = this.drain(q, budget, this.handleChain, this.fullCheck);
    // What the storage finished at submit (the native runtime runs a memory-backed image's requests
    // inline) completes in this pass, with this pass's used-ring publication and notification, instead
    // of a later onService call of its own.
    if (this.nFree < this.depth) this.reap();
    return more;
  }

  /** drain's `full`: no free record even after taking the completions that are waiting; the queue is then kicked when one frees. */
  private full(): boolean {
    if (this.nFree > 0) return false;
    this.reap();
    if (this.nFree > 0) return false;
    this.stalled[this.curQi] = 1;
    this.anyStalled = true;
    return true;
  }

  /** Executes one request; returns the used length. The status byte is written last. */
  private handle(chain: DescriptorChain): number | null {
    // §5.2.6.1: a request is a 16-byte device-readable header, data, and a writable status byte.
    if (chain.readableBytes < BLK_HEADER_BYTES) {
      throw new GuestProtocolError('BLK_NO_HEADER', 'virtio §5.2.6', `chain ${chain.headIndex}: ${chain.readableBytes} readable bytes, the request header needs ${BLK_HEADER_BYTES}`);
    }
    if (chain.writableBytes < 1) {
      throw new GuestProtocolError('BLK_NO_STATUS', 'virtio §5.2.6', `chain ${chain.headIndex}: no writable status byte`);
    }
    const rd = chain.reader();
    const h = this.hdrWords;
    rd.readWords(h, BLK_HEADER_BYTES);
    const type = h[0]!;
    const wr = chain.writer();
    const dataOut = wr.remaining - 1; // writable bytes before the status byte
    let status: number;
    let written = 0;
    switch (type) {
      case VIRTIO_BLK_T_IN:
        status = this.transfer(false, blkSector(h[2]!, h[3]!), wr, dataOut, chain);
        if (status === VIRTIO_BLK_S_OK) written = dataOut;
        break;
      case VIRTIO_BLK_T_OUT:
        status = this.transfer(true, blkSector(h[2]!, h[3]!), rd, rd.remaining, chain);
        break;
      case VIRTIO_BLK_T_FLUSH:
        status = this.depth > 0 ? this.flushRequest(chain) : this.flush();
        break;
      case VIRTIO_BLK_T_GET_ID: {
        const n = Math.min(dataOut, VIRTIO_BLK_ID_BYTES);
        wr.write(this.id.subarray(0, n));
        written = n;
        status = VIRTIO_BLK_S_OK;
        this.getIds++;
        break;
      }
      case VIRTIO_BLK_T_DISCARD:
        status = this.negotiated & VIRTIO_BLK_F_DISCARD ? this.discardOrZero(rd, false) : VIRTIO_BLK_S_UNSUPP;
        break;
      case VIRTIO_BLK_T_WRITE_ZEROES:
        status = this.negotiated & VIRTIO_BLK_F_WRITE_ZEROES ? this.discardOrZero(rd, true) : VIRTIO_BLK_S_UNSUPP;
        break;
      default:
        status = VIRTIO_BLK_S_UNSUPP;
    }
    if (status === PENDING) return null; // the chain is held until the storage completes it
    if (status === VIRTIO_BLK_S_IOERR) this.ioErrors++;
    else if (status === VIRTIO_BLK_S_UNSUPP) this.unsupported++;
    // The status is the chain's last writable byte, whatever the framing (§2.7.4).
    chain.writeLastByte(status);
    return written + 1;
  }

  /**
   * IN (`write` false) and OUT: the whole request is validated before anything moves, so a rejected
   * request reads or writes nothing. The cursor is the chain's writer (IN) or reader after the header
   * (OUT); `len` the data bytes. Writethrough makes an OUT durable before it completes.
   */
  private transfer(write: boolean, sector: number, cursor: { take(n: number): number }, len: number, chain: DescriptorChain): number {
    if (write && this.storage.readOnly) return VIRTIO_BLK_S_IOERR;
    if (len % SECTOR_SIZE !== 0 || len > BLK_MAX_REQUEST_BYTES || !sectorsInRange(sector, len / SECTOR_SIZE, this.capacity)) return VIRTIO_BLK_S_IOERR;
    // A storage with a larger logical block (O_DIRECT on a 4K device) takes whole blocks only; blk_size says so.
    if (this.blockSize !== SECTOR_SIZE && ((sector * SECTOR_SIZE) % this.blockSize !== 0 || len % this.blockSize !== 0)) return VIRTIO_BLK_S_IOERR;
    const nr = cursor.take(len);
    const r = CHAIN_RANGES;
    // The data segments count against seg_max and size_max.
    if (nr > BLK_SEG_MAX) return VIRTIO_BLK_S_IOERR;
    for (let k = 1; k < 2 * nr; k += 2) if (r[k]! > BLK_SIZE_MAX) return VIRTIO_BLK_S_IOERR;
    if (this.depth > 0) return this.submitTransfer(write, sector * SECTOR_SIZE, nr, len, chain);
    const storage = this.storage;
    // Segments that are adjacent in the window (a frontend's pool usually hands them out that way) go
    // to the storage as one call: file offsets are contiguous by construction.
    let pos = sector * SECTOR_SIZE;
    for (let k = 0; k < 2 * nr; ) {
      const off = r[k]!;
      let n = r[k + 1]!;
      for (k += 2; k < 2 * nr && r[k] === off + n; k += 2) n += r[k + 1]!;
      const rc = write ? storage.write(pos, off, n) : storage.read(pos, off, n);
      if (rc < 0) return VIRTIO_BLK_S_IOERR;
      pos += n;
    }
    if (!write) {
      this.reads++;
      this.bytesRead += len;
      return VIRTIO_BLK_S_OK;
    }
    this.writes++;
    this.bytesWritten += len;
    return this.writeback ? VIRTIO_BLK_S_OK : this.flush();
  }

  private flush(): number {
    this.flushes++;
    return this.storage.readOnly || this.storage.flush() >= 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
  }

  // ---- the asynchronous path ------------------------------------------------------------------

  /** Takes a free record for `chain` (drain's `full` guaranteed one) on the queue being served. */
  private hold(chain: DescriptorChain, kind: number, used: number): number {
    const r = this.freeSlots[--this.nFree]!;
    this.recChain[r] = chain;
    this.recQueue[r] = this.curQueue;
    this.recQi[r] = this.curQi;
    this.recKind[r] = kind;
    this.recUsed[r] = used;
    this.recCancelled[r] = 0;
    const n = this.depth - this.nFree;
    if (n > this.inFlightPeak) this.inFlightPeak = n;
    return r;
  }

  private release(r: number): void {
    this.recKind[r] = R_FREE;
    this.recChain[r] = null;
    this.recQueue[r] = null;
    this.freeSlots[this.nFree++] = r;
    if (!this.anyStalled || !this.ctx) return;
    this.anyStalled = false;
    for (let i = 0; i < this.stalled.length; i++) {
      if (!this.stalled[i]) continue;
      this.stalled[i] = 0;
      this.ctx.kick(i);
    }
  }

  /**
   * IN/OUT on an asynchronous storage: the ranges (validated, the whole request checked) go to the
   * storage in one vectored request, window-adjacent segments merged.
   */
  private submitTransfer(write: boolean, pos: number, nr: number, len: number, chain: DescriptorChain): number {
    const ranges = CHAIN_RANGES;
    let m = 0;
    for (let k = 0; k < 2 * nr; k += 2) {
      if (m > 0 && ranges[2 * m - 2]! + ranges[2 * m - 1]! === ranges[k]!) ranges[2 * m - 1] = ranges[2 * m - 1]! + ranges[k + 1]!;
      else {
        ranges[2 * m] = ranges[k]!;
        ranges[2 * m + 1] = ranges[k + 1]!;
        m++;
      }
    }
    const r = this.hold(chain, write ? R_OUT : R_IN, write ? 1 : len + 1);
    if (this.storage.submit(r, write ? STORAGE_OP_WRITE : STORAGE_OP_READ, pos, ranges, m) < 0) {
      this.release(r);
      return VIRTIO_BLK_S_IOERR;
    }
    this.recBytes[r] = len;
    if (write) {
      this.recSeq[r] = ++this.writeSeq;
      this.writesInFlight++;
    }
    return PENDING;
  }

  /**
   * FLUSH on an asynchronous storage. Writes acknowledged before it finished already; writes still in
   * flight when it arrives are waited for too (the storage would run the flush beside them), so the
   * flush's fdatasync covers every write submitted before it.
   */
  private flushRequest(chain: DescriptorChain): number {
    if (this.storage.readOnly) return this.flush();
    const r = this.hold(chain, R_FLUSH_WAIT, 1);
    this.recSeq[r] = this.writeSeq;
    if (this.writesInFlight > 0) {
      this.flushesWaiting++;
      this.flushesDeferred++;
      return PENDING;
    }
    return this.submitFlush(r) ? PENDING : this.failHeld(r);
  }

  /** Submits the flush of record `r` (a FLUSH, or a writethrough OUT's); false if the storage refused. */
  private submitFlush(r: number): boolean {
    this.recKind[r] = this.recKind[r] === R_OUT ? R_OUT_FLUSH : R_FLUSH;
    return this.storage.submit(r, STORAGE_OP_FLUSH, 0, CHAIN_RANGES, 0) >= 0;
  }

  /** A held request that could not be submitted: frees its record and answers IOERR to the caller. */
  private failHeld(r: number): number {
    this.release(r);
    return VIRTIO_BLK_S_IOERR;
  }

  /** Takes the storage's completions (bounded: each request completes at most twice). */
  private reap(): void {
    const out = this.doneBuf;
    for (let round = 0; round < REAP_ROUNDS; round++) {
      const k = this.storage.complete(out);
      for (let j = 0; j < k; j++) {
        const tag = out[2 * j]!;
        if (!(tag >= 0 && tag < this.depth) || this.recKind[tag] === R_FREE) throw new Error(`blk: storage completed request ${tag}, which is not in flight`);
        this.finish(tag, out[2 * j + 1]!);
      }
      if (k < REAP_BATCH) return;
    }
    this.ctx?.kick(0); // more than the rounds allow (cannot happen while each completes ≤ twice): next pass
  }

  /** One completion of record `r` with the storage's result (0 or −errno). */
  private finish(r: number, result: number): void {
    const kind = this.recKind[r]!;
    if (kind === R_OUT) this.writeFinished(r);
    // Orphaned by a reset, or its queue is not the live one any more: the chain is not ours to complete.
    if (this.recCancelled[r] || this.ctx?.queue(this.recQi[r]!) !== this.recQueue[r]) {
      this.cancelled++;
      this.release(r);
      return;
    }
    let status = result < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    if (kind === R_IN && status === VIRTIO_BLK_S_OK) {
      this.reads++;
      this.bytesRead += this.recBytes[r]!;
    } else if (kind === R_OUT && status === VIRTIO_BLK_S_OK) {
      this.writes++;
      this.bytesWritten += this.recBytes[r]!;
      // Writethrough (decided now: a switch to it flushed what had finished before): durable before it completes.
      if (!this.writeback) {
        if (this.submitFlush(r)) return;
        status = VIRTIO_BLK_S_IOERR;
      }
    } else if (kind === R_OUT_FLUSH || kind === R_FLUSH) this.flushes++;
    this.completeHeld(r, status, status === VIRTIO_BLK_S_OK ? this.recUsed[r]! : 1);
  }

  /** An OUT's data finished: the FLUSHes waiting only for writes before it may go. */
  private writeFinished(r: number): void {
    this.writesInFlight--;
    this.recSeq[r] = Infinity;
    if (this.flushesWaiting === 0) return;
    let oldest = Infinity;
    for (let k = 0; k < this.depth; k++) if (this.recKind[k] === R_OUT && this.recSeq[k]! < oldest) oldest = this.recSeq[k]!;
    for (let k = 0; k < this.depth && this.flushesWaiting > 0; k++) {
      if (this.recKind[k] !== R_FLUSH_WAIT || this.recSeq[k]! >= oldest) continue;
      this.flushesWaiting--;
      if (this.recCancelled[k]) this.release(k);
      else if (!this.submitFlush(k)) this.completeHeld(k, VIRTIO_BLK_S_IOERR, 1);
    }
  }

  /** Writes the status of held record `r` (the chain's last writable byte) and returns the chain. */
  private completeHeld(r: number, status: number, used: number): void {
    const chain = this.recChain[r]!;
    const q = this.recQueue[r]!;
    if (status === VIRTIO_BLK_S_IOERR) this.ioErrors++;
    chain.writeLastByte(status);
    q.pushUsed(chain, used);
    this.release(r);
  }

  /**
   * Cancels the requests in flight on queue `qi` (−1: all): the storage stops touching the window for
   * them before this returns, and their completions, when they come, only free the records. A FLUSH
   * that was still waiting was never submitted: its record frees now.
   */
  private cancelWhere(qi: number): void {
    for (let r = 0; r < this.depth; r++) {
      const kind = this.recKind[r]!;
      if (kind === R_FREE || this.recCancelled[r] || (qi >= 0 && this.recQi[r] !== qi)) continue;
      this.recCancelled[r] = 1;
      if (kind === R_FLUSH_WAIT) {
        this.flushesWaiting--;
        this.cancelled++;
        this.release(r);
      } else this.storage.cancel(r);
    }
    if (this.depth > this.nFree) this.reap(); // the cancelled ones that finished free their records now
  }

  /**
   * DISCARD / WRITE_ZEROES (§5.2.6): the segments are read once and all validated before any is
   * executed. Unknown flags, or UNMAP on a discard → UNSUPP; a bad count, size or range → IOERR.
   */
  private discardOrZero(rd: { remaining: number; read(n: number): Uint8Array }, zeroes: boolean): number {
    if (this.storage.readOnly) return VIRTIO_BLK_S_IOERR;
    const maxSeg = zeroes ? BLK_MAX_WRITE_ZEROES_SEG : BLK_MAX_DISCARD_SEG;
    const maxSectors = zeroes ? BLK_MAX_WRITE_ZEROES_SECTORS : BLK_MAX_DISCARD_SECTORS;
    const len = rd.remaining;
    if (len === 0 || len % BLK_SEGMENT_BYTES !== 0 || len / BLK_SEGMENT_BYTES > maxSeg) return VIRTIO_BLK_S_IOERR;
    const segs = parseBlkSegments(rd.read(len), len / BLK_SEGMENT_BYTES);
    const allowed = zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    for (const s of segs) if (s.flags & ~allowed) return VIRTIO_BLK_S_UNSUPP;
    for (const s of segs) if (s.numSectors > maxSectors || !sectorsInRange(s.sector, s.numSectors, this.capacity)) return VIRTIO_BLK_S_IOERR;
    for (const s of segs) {
      if (s.numSectors === 0) continue;
      const off = s.sector * SECTOR_SIZE;
      const n = s.numSectors * SECTOR_SIZE;
      // WRITE_ZEROES with UNMAP may deallocate: the storage's discard reads back zeroes.
      const rc = zeroes && !(s.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ? this.storage.writeZeroes(off, n) : this.storage.discard(off, n);
      if (rc < 0) return VIRTIO_BLK_S_IOERR;
    }
    if (zeroes) this.writeZeroes++;
    else this.discards++;
    return this.writeback ? VIRTIO_BLK_S_OK : this.flush();
  }

  override counters(): Record<string, number> {
    return {
      reads: this.reads,
      writes: this.writes,
      flushes: this.flushes,
      discards: this.discards,
      writeZeroes: this.writeZeroes,
      getIds: this.getIds,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      ioErrors: this.ioErrors,
      unsupported: this.unsupported,
      inFlight: this.depth - this.nFree,
      inFlightPeak: this.inFlightPeak,
      cancelled: this.cancelled,
      flushesDeferred: this.flushesDeferred,
      writeback: this.writeback,
    };
  }
}

