/**
 * Frontend driver model for virtio-blk (virtio 1.3 §5.2): what Linux's virtio_blk does, over the
 * window. Every request is bounced into the window pool (header, data, status byte: three
 * descriptors); up to `queueDepth` requests are in flight per request queue, spread over `queues`
 * queues (MQ). `run()` pipelines a batch; `read`/`write`/`flush`/`discard`/`writeZeroes`/`getId` are
 * single requests on top of it.
 */
import {
  BLK_CONFIG_SIZE,
  BLK_HEADER_BYTES,
  BLK_SEGMENT_BYTES,
  SECTOR_SIZE,
  VIRTIO_BLK_F_BLK_SIZE,
  VIRTIO_BLK_F_CONFIG_WCE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_TOPOLOGY,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
} from '../../firmware/devices/blk';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { Buf, DriverQueue } from '../vring';

export {
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VIRTIO_BLK_S_OK,
  SECTOR_SIZE,
};

/** The blk features this driver understands (it negotiates their intersection with the offer). */
export const BLK_DRIVER_FEATURES =
  VIRTIO_F_VERSION_1 |
  VIRTIO_F_ACCESS_PLATFORM |
  VIRTIO_F_RING_EVENT_IDX |
  VIRTIO_BLK_F_SIZE_MAX |
  VIRTIO_BLK_F_SEG_MAX |
  VIRTIO_BLK_F_BLK_SIZE |
  VIRTIO_BLK_F_TOPOLOGY |
  VIRTIO_BLK_F_FLUSH |
  VIRTIO_BLK_F_CONFIG_WCE |
  VIRTIO_BLK_F_MQ |
  VIRTIO_BLK_F_RO |
  VIRTIO_BLK_F_DISCARD |
  VIRTIO_BLK_F_WRITE_ZEROES;

/** The config space as the driver reads it (§5.2.4). */
export interface BlkConfig {
  capacity: number;
  sizeMax: number;
  segMax: number;
  blkSize: number;
  physicalBlockExp: number;
  minIoSize: number;
  optIoSize: number;
  writeback: number;
  numQueues: number;
  maxDiscardSectors: number;
  maxDiscardSeg: number;
  discardSectorAlignment: number;
  maxWriteZeroesSectors: number;
  maxWriteZeroesSeg: number;
  writeZeroesMayUnmap: number;
}

/** Parses the config space bytes. */
export function parseBlkConfig(b: Uint8Array): BlkConfig {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    capacity: v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32,
    sizeMax: v.getUint32(8, true),
    segMax: v.getUint32(12, true),
    blkSize: v.getUint32(20, true),
    physicalBlockExp: v.getUint8(24),
    minIoSize: v.getUint16(26, true),
    optIoSize: v.getUint32(28, true),
    writeback: v.getUint8(32),
    numQueues: v.getUint16(34, true),
    maxDiscardSectors: v.getUint32(36, true),
    maxDiscardSeg: v.getUint32(40, true),
    discardSectorAlignment: v.getUint32(44, true),
    maxWriteZeroesSectors: v.getUint32(48, true),
    maxWriteZeroesSeg: v.getUint32(52, true),
    writeZeroesMayUnmap: v.getUint8(56),
  };
}

/** A discard / write-zeroes range. */
export interface BlkRange {
  sector: number;
  numSectors: number;
  /** Segment flags as sent (default 0; tests may send unknown bits). */
  flags?: number;
}

/** One request. `data` is written (OUT); `len` bytes are read (IN, GET_ID); `ranges` for discard/zeroes. */
export interface BlkRequest {
  type: number;
  sector?: number;
  data?: Uint8Array;
  len?: number;
  ranges?: BlkRange[];
  /** Request queue to use (default: round robin). */
  queue?: number;
}

/** What came back: the status byte, the used length and (IN, GET_ID) the bytes the device wrote. */
export interface BlkResult {
  status: number;
  usedLen: number;
  data?: Uint8Array;
}

export interface BlkDriverOptions {
  /** Request queues to use (capped by the device's num_queues; >1 needs MQ). Default 1. */
  queues?: number;
  /** Ring size per queue (default 128). */
  queueSize?: number;
  /** Requests in flight per queue at most (default 32; each takes up to 3 descriptors). */
  queueDepth?: number;
  /** Features to ask for (default BLK_DRIVER_FEATURES; the device's offer is intersected). */
  features?: bigint;
}

interface InFlight {
  index: number;
  q: number;
  hdr: number;
  data: number;
  dataLen: number;
  readBack: boolean;
}

/** Thrown by the convenience calls when the device answers something other than OK. */
export class BlkStatusError extends Error {
  constructor(
    readonly status: number,
    what: string,
  ) {
    super(`${what}: device status ${status}`);
  }
}

export class BlkDriver {
  config!: BlkConfig;
  /** Request queues in use. */
  private qs: DriverQueue<number>[] = [];
  private depth = 32;
  private rr = 0;
  private nextToken = 1;
  private readonly inFlight = new Map<number, InFlight>();
  /** Requests completed, and how many of them did not end OK. */
  readonly counters = { requests: 0, errors: 0 };

  private constructor(readonly dev: DriverDevice) {}

  /** Negotiates, reads the config, sets up the request queues and goes live. */
  static async open(dev: DriverDevice, opts: BlkDriverOptions = {}): Promise<BlkDriver> {
    const d = new BlkDriver(dev);
    const f = await dev.negotiate(opts.features ?? BLK_DRIVER_FEATURES);
    d.config = parseBlkConfig((await dev.getConfig(0, BLK_CONFIG_SIZE)).data);
    const want = opts.queues ?? 1;
    const n = f & VIRTIO_BLK_F_MQ ? Math.max(1, Math.min(want, d.config.numQueues)) : 1;
    const size = opts.queueSize ?? 128;
    d.depth = Math.max(1, Math.min(opts.queueDepth ?? 32, Math.floor(size / 3)));
    for (let i = 0; i < n; i++) d.qs.push(await dev.setupQueue(i, size));
    await dev.driverOk();
    return d;
  }

  /** Negotiated features. */
  get features(): bigint {
    return this.dev.features;
  }
  /** True when the device offered VIRTIO_BLK_F_RO (writes fail with IOERR). */
  get readOnly(): boolean {
    return (this.dev.features & VIRTIO_BLK_F_RO) !== 0n;
  }
  /** Capacity in 512-byte sectors. */
  get capacity(): number {
    return this.config.capacity;
  }
  get queueCount(): number {
    return this.qs.length;
  }
  get queueDepth(): number {
    return this.depth;
  }
  /** The driver-side queues (their counters say how many notifications were sent or suppressed). */
  get queues(): readonly DriverQueue<number>[] {
    return this.qs;
  }

  private get bytes(): Uint8Array {
    return this.dev.bus.port.bytes;
  }

  /** Puts one request on queue `qi`; false when that queue has no room. */
  private add(req: BlkRequest, index: number, qi: number): boolean {
    const q = this.qs[qi]!;
    if (q.inFlight >= this.depth || q.numFree < 3) return false;
    const pool = this.dev.pool;
    const bytes = this.bytes;
    const hdr = pool.alloc(BLK_HEADER_BYTES + 8); // header, then the status byte at +16
    const v = new DataView(bytes.buffer, bytes.byteOffset + hdr, BLK_HEADER_BYTES);
    const sector = req.sector ?? 0;
    v.setUint32(0, req.type >>> 0, true);
    v.setUint32(4, 0, true);
    v.setUint32(8, sector % 2 ** 32, true);
    v.setUint32(12, Math.floor(sector / 2 ** 32), true);
    bytes[hdr + BLK_HEADER_BYTES] = 0xff; // so a status the device never wrote shows
    let payload: Uint8Array | null = null;
    if (req.data) payload = req.data;
    else if (req.ranges) payload = encodeRanges(req.ranges);
    const readBack = !payload && (req.len ?? 0) > 0;
    const dataLen = payload ? payload.length : (req.len ?? 0);
    const data = dataLen > 0 ? pool.alloc(dataLen) : 0;
    if (payload) bytes.set(payload, data);
    const out: Buf[] = [{ off: hdr, len: BLK_HEADER_BYTES }];
    const inn: Buf[] = [];
    if (dataLen > 0) (readBack ? inn : out).push({ off: data, len: dataLen });
    inn.push({ off: hdr + BLK_HEADER_BYTES, len: 1 });
    const token = this.nextToken++;
    if (!q.add(out, inn, token)) throw new Error('blk: ring had no room although numFree said so');
    this.inFlight.set(token, { index, q: qi, hdr, data, dataLen, readBack });
    return true;
  }

  /**
   * Runs a batch of requests, keeping up to the queue depth in flight on each queue, one kick per
   * queue per round; returns the results in request order.
   */
  async run(reqs: BlkRequest[], timeoutMs = 10_000): Promise<BlkResult[]> {
    const results: BlkResult[] = new Array(reqs.length);
    let next = 0;
    let done = 0;
    const nq = this.qs.length;
    while (done < reqs.length) {
      // Fill every queue up to its depth.
      let added = true;
      while (next < reqs.length && added) {
        added = false;
        const r = reqs[next]!;
        const qi = r.queue !== undefined ? r.queue : this.rr;
        if (qi < 0 || qi >= nq) throw new Error(`blk: queue ${qi} is not set up (${nq} in use)`);
        if (this.add(r, next, qi)) {
          next++;
          added = true;
          if (r.queue === undefined) this.rr = (this.rr + 1) % nq;
        } else if (r.queue === undefined) {
          // try the other queues before waiting
          for (let k = 1; k < nq && !added; k++) {
            const alt = (qi + k) % nq;
            if (this.add(r, next, alt)) {
              next++;
              added = true;
              this.rr = (alt + 1) % nq;
            }
          }
        }
      }
      for (const q of this.qs) await q.kick();
      let got = 0;
      await this.dev.bus.until(
        () => {
          for (const q of this.qs) {
            q.reap();
            if (q.done.size === 0) continue;
            for (const [token, usedLen] of q.done) {
              const f = this.inFlight.get(token)!;
              this.inFlight.delete(token);
              results[f.index] = this.finish(f, usedLen);
              got++;
            }
            q.done.clear();
          }
          return got > 0 || this.dev.needsReset;
        },
        timeoutMs,
        () => `blk: no request completed within ${timeoutMs} ms (${this.inFlight.size} in flight)`,
      );
      if (got === 0 && this.dev.needsReset) throw new Error('blk: device reported DEVICE_NEEDS_RESET');
      done += got;
    }
    return results;
  }

  private finish(f: InFlight, usedLen: number): BlkResult {
    const bytes = this.bytes;
    const status = bytes[f.hdr + BLK_HEADER_BYTES]!;
    const res: BlkResult = { status, usedLen };
    if (f.readBack && status === VIRTIO_BLK_S_OK) res.data = bytes.slice(f.data, f.data + Math.min(f.dataLen, Math.max(0, usedLen - 1)));
    if (f.dataLen > 0) this.dev.pool.release(f.data, f.dataLen);
    this.dev.pool.release(f.hdr, BLK_HEADER_BYTES + 8);
    this.counters.requests++;
    if (status !== VIRTIO_BLK_S_OK) this.counters.errors++;
    return res;
  }

  private async one(req: BlkRequest, what: string): Promise<BlkResult> {
    const [r] = await this.run([req]);
    if (r!.status !== VIRTIO_BLK_S_OK) throw new BlkStatusError(r!.status, what);
    return r!;
  }

  /** Reads `count` sectors from `sector`. */
  async read(sector: number, count: number): Promise<Uint8Array> {
    return (await this.one({ type: VIRTIO_BLK_T_IN, sector, len: count * SECTOR_SIZE }, `read ${count} sectors at ${sector}`)).data!;
  }

  /** Writes `data` (a multiple of 512 bytes) at `sector`. */
  async write(sector: number, data: Uint8Array): Promise<void> {
    await this.one({ type: VIRTIO_BLK_T_OUT, sector, data }, `write ${data.length} bytes at sector ${sector}`);
  }

  /** FLUSH: returns once the device says everything written before is durable. */
  async flush(): Promise<void> {
    await this.one({ type: VIRTIO_BLK_T_FLUSH }, 'flush');
  }

  /** DISCARD the ranges. */
  async discard(ranges: BlkRange[]): Promise<void> {
    await this.one({ type: VIRTIO_BLK_T_DISCARD, ranges }, 'discard');
  }

  /** WRITE_ZEROES the ranges, allowing the device to deallocate them with `unmap`. */
  async writeZeroes(ranges: BlkRange[], unmap = false): Promise<void> {
    const flags = unmap ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    await this.one({ type: VIRTIO_BLK_T_WRITE_ZEROES, ranges: ranges.map((r) => ({ ...r, flags: r.flags ?? flags })) }, 'write zeroes');
  }

  /** GET_ID: the device's serial (up to 20 bytes, NULs stripped). */
  async getId(): Promise<string> {
    const r = await this.one({ type: VIRTIO_BLK_T_GET_ID, len: VIRTIO_BLK_ID_BYTES }, 'get id');
    let s = '';
    for (const c of r.data!) if (c) s += String.fromCharCode(c);
    return s;
  }

  /** CONFIG_WCE: switches the device between writeback (true) and writethrough; false if refused. */
  async setWriteback(on: boolean): Promise<boolean> {
    const { generation } = await this.dev.getConfig(0, 4);
    const ok = await this.dev.setConfig(generation, 32, new Uint8Array([on ? 1 : 0]));
    this.config.writeback = (await this.dev.getConfig(32, 1)).data[0]!;
    return ok;
  }
}

/** Encodes discard / write-zeroes segments (§5.2.6: struct virtio_blk_discard_write_zeroes). */
export function encodeRanges(ranges: BlkRange[]): Uint8Array {
  const b = new Uint8Array(ranges.length * BLK_SEGMENT_BYTES);
  const v = new DataView(b.buffer);
  ranges.forEach((r, i) => {
    v.setUint32(i * 16, r.sector % 2 ** 32, true);
    v.setUint32(i * 16 + 4, Math.floor(r.sector / 2 ** 32), true);
    v.setUint32(i * 16 + 8, r.numSectors >>> 0, true);
    v.setUint32(i * 16 + 12, (r.flags ?? 0) >>> 0, true);
  });
  return b;
}
