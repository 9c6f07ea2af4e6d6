/**
 * Frontend driver model for virtio-i2c (virtio 1.3 §5.19): what Linux's i2c-virtio does. A transfer
 * (Linux's i2c_transfer: a list of messages, one transaction) becomes one request per message — out_hdr,
 * the buffer, in_hdr in three descriptors, bounced into the window pool — all but the last with
 * VIRTIO_I2C_FLAGS_FAIL_NEXT, made available together and notified once. The result is the number of
 * messages that completed before the first failure, as i2c_transfer returns it.
 */
import { I2C_OUT_HDR_BYTES } from '../../firmware/devices/i2c';
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_I2C_F_ZERO_LENGTH_REQUEST,
  VIRTIO_I2C_FLAGS_FAIL_NEXT,
  VIRTIO_I2C_FLAGS_M_RD,
  VIRTIO_I2C_MSG_OK,
} from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { Buf, DriverQueue } from '../vring';

/** One message of a transfer: a write of `write`, or a read of `read` bytes (0 bytes: SMBus Quick). */
export type I2cMessage = { addr: number; write: Uint8Array } | { addr: number; read: number };

/** What a transfer returns: messages completed, the read data of those that did, the used lengths. */
export interface I2cResult {
  completed: number;
  /** Per message: the bytes read (reads that completed), else undefined. */
  data: (Uint8Array | undefined)[];
  status: number[];
  usedLen: number[];
}

/** A transfer that did not complete whole (NACK, or a request the device refused). */
export class I2cError extends Error {
  constructor(readonly result: I2cResult) {
    super(`i2c transfer: ${result.completed} of ${result.status.length} messages completed`);
    this.name = 'I2cError';
  }
}

export class I2cDriver {
  private q!: DriverQueue<number>;
  private next = 1;
  private constructor(readonly dev: DriverDevice) {}

  /** Negotiates (ZERO_LENGTH_REQUEST is required, §5.19.6.1) and sets up the request queue. */
  static async open(dev: DriverDevice, queueSize = 64): Promise<I2cDriver> {
    const d = new I2cDriver(dev);
    const f = await dev.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX | VIRTIO_I2C_F_ZERO_LENGTH_REQUEST);
    if (!(f & VIRTIO_I2C_F_ZERO_LENGTH_REQUEST)) throw new Error('i2c: the device does not offer VIRTIO_I2C_F_ZERO_LENGTH_REQUEST');
    d.q = await dev.setupQueue(0, queueSize);
    await dev.driverOk();
    return d;
  }

  /** Runs `msgs` as one transaction; never throws for a NACK (see `result.completed`). */
  async transfer(msgs: I2cMessage[]): Promise<I2cResult> {
    const pool = this.dev.pool;
    const bytes = () => this.dev.bus.port.bytes;
    const allocs: Buf[] = [];
    const alloc = (len: number) => {
      const b = { off: pool.alloc(len), len };
      allocs.push(b);
      return b;
    };
    const reqs: { token: number; status: Buf; buf: Buf | null; read: boolean }[] = [];
    try {
      msgs.forEach((m, i) => {
        const read = 'read' in m;
        const hdr = alloc(I2C_OUT_HDR_BYTES);
        const v = new DataView(bytes().buffer, bytes().byteOffset + hdr.off, I2C_OUT_HDR_BYTES);
        v.setUint16(0, (m.addr & 0x7f) << 1, true); // 7-bit address in bits 7:1 (§5.19.6)
        v.setUint16(2, 0, true);
        v.setUint32(4, (read ? VIRTIO_I2C_FLAGS_M_RD : 0) | (i < msgs.length - 1 ? VIRTIO_I2C_FLAGS_FAIL_NEXT : 0), true);
        const len = read ? m.read : m.write.length;
        const buf = len > 0 ? alloc(len) : null;
        if (buf && !read) bytes().set((m as { write: Uint8Array }).write, buf.off);
        if (buf && read) bytes().fill(0, buf.off, buf.off + len);
        const status = alloc(1);
        bytes()[status.off] = 0xff;
        const token = this.next++;
        const out = [hdr, ...(buf && !read ? [buf] : [])];
        const inn = [...(buf && read ? [buf] : []), status];
        if (!this.q.add(out, inn, token)) throw new Error('i2c queue full');
        reqs.push({ token, status, buf, read });
      });
      await this.q.kick();
      const res: I2cResult = { completed: 0, data: [], status: [], usedLen: [] };
      let failed = false;
      for (const r of reqs) {
        const used = await this.q.complete(r.token);
        const st = bytes()[r.status.off]!;
        res.status.push(st);
        res.usedLen.push(used);
        if (!failed && st === VIRTIO_I2C_MSG_OK) {
          res.completed++;
          res.data.push(r.read && r.buf ? bytes().slice(r.buf.off, r.buf.off + r.buf.len) : r.read ? new Uint8Array(0) : undefined);
        } else {
          failed = true; // FAIL_NEXT: the rest of the transaction counts as failed whatever its status (§5.19.6.1)
          res.data.push(undefined);
        }
      }
      return res;
    } finally {
      for (const b of allocs) pool.release(b.off, b.len);
    }
  }

  /** Like `transfer`, but throws I2cError unless every message completed. */
  async transferAll(msgs: I2cMessage[]): Promise<(Uint8Array | undefined)[]> {
    const r = await this.transfer(msgs);
    if (r.completed !== msgs.length) throw new I2cError(r);
    return r.data;
  }

  /** SMBus Quick (a zero-length write, what i2cdetect sends): true when a target acknowledged `addr`. */
  async probe(addr: number): Promise<boolean> {
    return (await this.transfer([{ addr, write: new Uint8Array(0) }])).completed === 1;
  }

  /** A register-pointer write and a read of `len` bytes in one transaction (SMBus read / i2cget). */
  async readRegisters(addr: number, reg: number, len: number): Promise<Uint8Array> {
    return (await this.transferAll([{ addr, write: Uint8Array.of(reg) }, { addr, read: len }]))[1]!;
  }

  /** Writes `data` at register (or word address) `reg` (SMBus write / i2cset). */
  async writeRegisters(addr: number, reg: number, data: Uint8Array): Promise<void> {
    const w = new Uint8Array(1 + data.length);
    w[0] = reg;
    w.set(data, 1);
    await this.transferAll([{ addr, write: w }]);
  }
}
