/**
 * Shared setup of the virtio-vsock suites: a simulator with rng (dev 0, to show other devices keep
 * serving) and vsock (dev 1, guest CID 3), the frontend driver model, a raw driver with hand-built
 * rx/tx/event rings for hostile packets, and a PRNG byte stream both ends can check.
 */
import type { VsockHeader } from '../../firmware/devices/vsock';
import { encodeVsockHeader, parseVsockHeader } from '../../firmware/devices/vsock';
import * as P from '../../firmware/transport/protocol';
import {
  DEVICE_NEEDS_RESET,
  VIRTIO_VSOCK_HDR_SIZE,
  VIRTIO_VSOCK_OP_REQUEST,
  VIRTIO_VSOCK_TYPE_STREAM,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VMADDR_CID_HOST,
} from '../../firmware/virtio';
import { VsockDriver } from '../../frontend/drivers/vsock';
import type { VsockDriverOptions, VsockSocket } from '../../frontend/drivers/vsock';
import type { Sim, SimOptions } from '../../frontend/sim';
import { createSim } from '../../frontend/sim';
import { streamBytes } from '../../scripts/qemu/vsock-peer.mjs';
import { LIVE, negotiate, RawRing, request, setStatus, u32s } from '../helpers';

export const RNG = 0;
export const VSOCK = 1;
export const CID = 3;
export const HDR = VIRTIO_VSOCK_HDR_SIZE;

/** A simulator with rng (dev 0) and vsock (dev 1) on service vsock0. */
export function vsockSim(opts: SimOptions & { guestCid?: number } = {}): Promise<Sim> {
  return createSim({
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'vsock', service: 'vsock0', guestCid: opts.guestCid ?? CID },
    ],
    services: { vsock0: { kind: 'vsock', uds: 'vsock.sock' } },
    ...opts,
  });
}

/** The frontend driver model on the vsock device. */
export async function openVsock(s: Sim, opts: VsockDriverOptions = {}): Promise<VsockDriver> {
  const fe = await s.frontend();
  return VsockDriver.open(fe.devices[VSOCK]!, opts);
}

/** The vsock device's counters. */
export function counters(s: Sim): Record<string, number> {
  return s.stats().devices[VSOCK]!.counters;
}

/** A deterministic byte stream both ends can check (the QEMU tier's, scripts/qemu/vsock-peer.mjs): bytes [from, from+n) of stream `seed`. */
export const prng = streamBytes;

/** True when `got` is bytes [from, from + got.length) of `prng(seed)`. */
export function isPrng(seed: number, from: number, got: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(prng(seed, from, got.length)), Buffer.from(got)) === 0;
}

/** How `echo` drives a connection. */
export interface EchoOptions {
  seed: number;
  total: number;
  /** Bytes of `prng(seed)` sent at a time (default 64 KiB), while fewer than `window` wait unsent (default 256 KiB). */
  chunk?: number;
  window?: number;
  /** Bytes the guest reads per turn (default all), and on which turns (default every one). */
  readMax?: number;
  readEvery?: number;
  /** Runs first in every turn (a slow host program reading and writing back). */
  turn?: () => void;
  timeoutMs?: number;
  /** What the timeout says besides the counts. */
  what?: () => string;
}

/**
 * Sends `total` bytes of `prng(seed)` on `sock` and checks that the same bytes come back on it in
 * order (an echoing peer), pumping the driver until the last one did.
 */
export async function echo(drv: VsockDriver, sock: VsockSocket, o: EchoOptions): Promise<void> {
  const { seed, total, chunk = 65536, window = 256 * 1024, readMax = Infinity, readEvery = 1 } = o;
  let sent = 0;
  let got = 0;
  let turns = 0;
  await drv.until(
    () => {
      o.turn?.();
      if (sent < total && sock.txPending < window) {
        const n = Math.min(chunk, total - sent);
        sock.send(prng(seed, sent, n));
        sent += n;
      }
      if (turns++ % readEvery === 0) {
        const r = sock.read(readMax);
        if (!isPrng(seed, got, r)) throw new Error(`echoed bytes ${got}..${got + r.length} differ from what the guest sent there`);
        got += r.length;
      }
      return got === total;
    },
    o.timeoutMs ?? 30000,
    () => `${got} of ${total} bytes came back (${sent} sent)${o.what ? `; ${o.what()}` : ''}`,
  );
}

/** A packet the device put into an rx buffer. */
export interface RxPacket extends VsockHeader {
  data: Uint8Array;
  usedLen: number;
}

/**
 * A raw vsock driver: the three queues as hand-written rings (size 16) and packets written byte by
 * byte, so tests can send what no real driver sends. rx buffers are single writable descriptors.
 */
export class RawVsock {
  readonly rx: RawRing;
  readonly tx: RawRing;
  readonly evt: RawRing;
  private rxSeen = 0;
  private txNext = 0;
  private evSeen = 0;

  constructor(
    readonly s: Sim,
    opts: { features?: bigint; eventQueue?: boolean } = {},
  ) {
    const base = s.layout.poolOffset + 0x80000;
    this.rx = new RawRing(s, 16, base);
    this.tx = new RawRing(s, 16, base + 0x20000);
    this.evt = new RawRing(s, 16, base + 0x40000);
    negotiate(s, VSOCK, opts.features);
    this.rx.install(VSOCK, 0);
    this.tx.install(VSOCK, 1);
    if (opts.eventQueue !== false) this.evt.install(VSOCK, 2);
    setStatus(s, VSOCK, LIVE);
  }

  /** Posts `n` rx buffers of `len` writable bytes (default a header + 4096) and notifies. */
  postRx(n: number, len = HDR + 4096): void {
    for (let k = 0; k < n; k++) {
      const i = this.rx.availIdx % 16;
      this.rx.setDesc(i, this.rx.data + i * 0x1100, len, VIRTQ_DESC_F_WRITE);
      this.rx.offer(i);
    }
    this.rx.notify(VSOCK, 0);
  }

  /** Posts `n` event buffers of `len` bytes (default 4) and notifies. */
  postEvents(n: number, len = 4): void {
    for (let k = 0; k < n; k++) {
      const i = this.evt.availIdx % 16;
      this.evt.setDesc(i, this.evt.data + i * 16, len, VIRTQ_DESC_F_WRITE);
      this.evt.offer(i);
    }
    this.evt.notify(VSOCK, 2);
  }

  /** Sends one tx packet: `bytes` as the header descriptor (and `payload` as a second one). */
  sendRaw(bytes: Uint8Array, payload?: Uint8Array, notify = true): void {
    const i = (2 * this.txNext++) % 16;
    const at = this.tx.data + i * 0x1000;
    this.s.bytes.set(bytes, at);
    if (payload) {
      this.s.bytes.set(payload, at + 0x800);
      this.tx.setDesc(i, at, bytes.length, VIRTQ_DESC_F_NEXT, i + 1);
      this.tx.setDesc(i + 1, at + 0x800, payload.length, 0);
    } else this.tx.setDesc(i, at, bytes.length, 0);
    this.tx.offer(i);
    if (notify) this.tx.notify(VSOCK, 1);
  }

  /** Sends one packet from the guest (src_cid = guest CID, dst = host unless given), len = payload length unless given. */
  send(h: Partial<VsockHeader>, payload?: Uint8Array, notify = true): void {
    const full: VsockHeader = { srcCid: CID, dstCid: VMADDR_CID_HOST, srcPort: 1000, dstPort: 5000, len: payload?.length ?? 0, type: VIRTIO_VSOCK_TYPE_STREAM, op: VIRTIO_VSOCK_OP_REQUEST, flags: 0, bufAlloc: 256 * 1024, fwdCnt: 0, ...h };
    this.sendRaw(encodeVsockHeader(full), payload, notify);
  }

  /** The packets the device completed in rx buffers since the last call. */
  received(): RxPacket[] {
    const out: RxPacket[] = [];
    for (; this.rxSeen !== this.rx.usedIdx(); this.rxSeen = (this.rxSeen + 1) & 0xffff) {
      const e = this.rx.usedElem(this.rxSeen);
      const at = this.rx.data + e.id * 0x1100;
      const h = parseVsockHeader(this.s.bytes.slice(at, at + HDR));
      out.push({ ...h, data: this.s.bytes.slice(at + HDR, at + Math.max(HDR, e.len)), usedLen: e.len });
    }
    return out;
  }

  /** Event ids the device completed since the last call. */
  eventsReceived(): number[] {
    const out: number[] = [];
    for (; this.evSeen !== this.evt.usedIdx(); this.evSeen = (this.evSeen + 1) & 0xffff) {
      const e = this.evt.usedElem(this.evSeen);
      out.push(new DataView(this.s.bytes.buffer, this.s.bytes.byteOffset + this.evt.data + e.id * 16).getUint32(0, true));
    }
    return out;
  }

  /** tx chains the device completed so far. */
  txUsed(): number {
    return this.tx.usedIdx();
  }

  get needsReset(): boolean {
    return (this.s.deviceStatus(VSOCK) & DEVICE_NEEDS_RESET) !== 0;
  }
}

/** The rng device still answers a request (another device is unaffected by vsock's faults). */
export function otherDeviceAnswers(s: Sim): boolean {
  return request(s, RNG, P.VIRTIO_MSG_GET_DEVICE_STATUS, u32s()) !== null;
}
