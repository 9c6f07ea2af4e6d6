/**
 * Raw peers: what the conformance behaviours drive a backend with. `Peer` is the transport-neutral
 * part (status, features, queues, config, notifications, a barrier) every transport gives;
 * `RawPeer` is the virtio-msg one, with raw FIFO access on top, and `BusPeer` speaks the register
 * transports (regblock, mmio) through their driver sides (frontend/regblock.ts, frontend/mmio.ts).
 *
 * RawPeer: a raw virtio-msg peer over any FrontendPort: writes any bytes at all into the driver→device FIFO,
 * takes everything from the device→driver FIFO, and waits for answers and doorbells instead of
 * assuming the backend ran (it runs in another process on native).
 *
 * "Was anything answered?" is decided with a PING barrier, never with a sleep: the backend handles
 * FIFO messages in order and publishes its answers at the end of a pass, after it ran the queues
 * those messages kicked, so once a PING sent after a message is answered, that message has been
 * processed. `barrier()` does two PING round trips, so that work a device kicked for the next pass
 * (a console control reply, for instance) is done too.
 */
import * as P from '../../firmware/transport/protocol';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import { FrontendBus } from '../../frontend/bus';
import type { TransportKind, WindowLayout } from '../../frontend/layout';
import { fifoTakeAll } from '../../frontend/fifo';
import { MmioBus } from '../../frontend/mmio';
import type { FrontendPort } from '../../frontend/port';
import { RegBlockBus } from '../../frontend/regblock';
import type { UsedBuffer } from '../../frontend/fuzz/ring';
import { PackedRing, le32 as u32s, SplitRing } from '../../frontend/fuzz/ring';

export { P, u32s };

export const LIVE = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;

/** Tokens the barrier uses (tests' own requests stay below). */
const BARRIER_TOKEN_BASE = 0xf000;

/** What every transport's raw peer does (the transport-neutral conformance behaviours use only this). */
export interface Peer {
  readonly transport: TransportKind;
  readonly layout: WindowLayout;
  readonly bytes: Uint8Array;
  /** The name of the backend, for failure messages. */
  readonly backend: string;
  /** Everything sent before, and the work it kicked, has been processed; notifications since are seen. */
  barrier(): Promise<unknown>;
  /** Polls and waits for the backend until `cond()`; throws `what` on timeout. */
  until(cond: () => boolean, what: () => string, timeoutMs?: number): Promise<void>;
  /** Writes the status; returns the status the device holds afterwards. */
  setStatus(dev: number, status: number): Promise<number>;
  getStatus(dev: number): Promise<number>;
  setDriverFeatures(dev: number, features: bigint): Promise<void>;
  /** The 32 offered feature bits of block `block`. */
  deviceFeatureWord(dev: number, block: number): Promise<number>;
  /** Resets and negotiates `features` (default VERSION_1 | ACCESS_PLATFORM) up to FEATURES_OK; the status held. */
  negotiate(dev: number, features?: bigint): Promise<number>;
  /** Configures queue `q` with exactly these values (no checks); the device may refuse. */
  setQueue(dev: number, q: number, size: number, desc: number, avail: number, used: number): Promise<void>;
  /** True when queue `q` is configured (GET_VQUEUE shows a size; QueueReady / queue_enable reads 1). */
  queueEnabled(dev: number, q: number): Promise<boolean>;
  /** An available-buffer notification for queue `q`, then a barrier. */
  notify(dev: number, q: number): Promise<void>;
  getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }>;
  /** The device status carried by the latest configuration-change notification of `dev` so far (null: none yet). */
  configNotified(dev: number): number | null;
  /** A hand-built ring in the pool (at `base`, default the pool start). */
  ring(size: number, base?: number): PeerRing;
}

export class RawPeer implements Peer {
  readonly transport = 'msg';
  readonly layout: WindowLayout;
  private readonly bus: FrontendBus;
  /** Messages taken from the FIFO that nobody asked for yet. */
  private inbox: Uint8Array[] = [];
  private nextToken = 1;
  private nextBarrier = 0;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly configStatus = new Map<number, number>();

  constructor(
    readonly port: FrontendPort,
    /** `timeoutMs`: how long to wait for the backend (0 for a simulator, which finished on kick). */
    opts: { name: string; timeoutMs: number },
  ) {
    this.bus = new FrontendBus(port);
    this.layout = this.bus.layout;
    this.name = opts.name;
    this.timeoutMs = opts.timeoutMs;
  }

  get bytes(): Uint8Array {
    return this.port.bytes;
  }


  /** Writes one raw message (any bytes, at most a slot); false when the FIFO is full. No doorbell. */
  send(msg: Uint8Array): boolean {
    return this.bus.post(msg);
  }

  kick(): void {
    this.port.kick();
  }

  /** Takes every message from the device→driver FIFO (and rings the backend if it was full). */
  receive(): Uint8Array[] {
    const { messages, wasFull } = fifoTakeAll(this.bytes, this.layout.fifoV2D, this.layout.slotSize);
    if (wasFull) this.kick(); // the backend holds answers back while the FIFO is full
    return messages;
  }

  /** Polls the FIFO (into the inbox) and waits for doorbells until `cond()`; throws `what` on timeout. */
  async until(cond: () => boolean, what: () => string, timeoutMs = this.timeoutMs): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.receive()) {
        this.inbox.push(m);
        if (m[1] === P.VIRTIO_MSG_EVENT_CONFIG && !(m[0]! & (P.TYPE_BUS | P.TYPE_RESPONSE)) && m.length >= 12) this.configStatus.set(m[2]! | (m[3]! << 8), new DataView(m.buffer, m.byteOffset).getUint32(8, true));
      }
      if (cond()) return;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`[${this.name}] ${what()}${timeoutMs ? ` (waited ${timeoutMs} ms)` : ''}`);
      await this.port.wait(left);
    }
  }

  /** Sends `msg`, ringing and waiting while the FIFO is full. */
  private async post(msg: Uint8Array): Promise<void> {
    if (this.send(msg)) return;
    this.kick();
    await this.until(() => this.send(msg), () => 'driver→device FIFO stayed full');
  }

  /** One PING round trip; returns every other message that arrived before its answer. */
  private async ping(): Promise<Uint8Array[]> {
    const token = BARRIER_TOKEN_BASE + (this.nextBarrier++ % 0xfff);
    await this.post(FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, token, u32s(0xba771e00 + token)));
    this.kick();
    const isAnswer = (m: Uint8Array) => m[0] === (P.TYPE_BUS | P.TYPE_RESPONSE) && m[1] === P.BUS_MSG_PING && (m[4]! | (m[5]! << 8)) === token;
    await this.until(() => this.inbox.some(isAnswer), () => 'no answer to the barrier PING: the backend stopped processing its FIFO');
    const at = this.inbox.findIndex(isAnswer);
    const before = this.inbox.slice(0, at);
    this.inbox = this.inbox.slice(at + 1);
    return before;
  }

  /** Two PING round trips: everything sent before, and the work it kicked, is processed. Returns what arrived meanwhile. */
  async barrier(): Promise<Uint8Array[]> {
    return [...(await this.ping()), ...(await this.ping())];
  }

  /**
   * Discards stale traffic, sends `msgs` (any bytes), rings, and returns everything the backend sent
   * until the barrier — the asynchronous equivalent of "send, run the backend until idle, receive".
   */
  async exchange(msgs: Uint8Array[]): Promise<Uint8Array[]> {
    this.receive();
    this.inbox = [];
    for (const m of msgs) await this.post(m);
    return this.barrier();
  }

  /** One raw message; everything the backend sent in response. */
  raw(msg: Uint8Array): Promise<Uint8Array[]> {
    return this.exchange([msg]);
  }

  /** Sends one transport request and returns its answer payload, or null if it was not answered. */
  async request(devNum: number, msgId: number, payload: Uint8Array = new Uint8Array(0), opts: { bus?: boolean } = {}): Promise<DataView | null> {
    const t = this.nextToken;
    this.nextToken = this.nextToken >= BARRIER_TOKEN_BASE - 1 ? 1 : this.nextToken + 1;
    const type = opts.bus ? P.TYPE_BUS : 0;
    for (const m of await this.exchange([FrontendBus.encode(type, msgId, devNum, t, payload)])) {
      const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
      if (m[0]! & P.TYPE_RESPONSE && (m[0]! & P.TYPE_BUS) === type && v.getUint16(4, true) === t && v.getUint16(2, true) === devNum) {
        return new DataView(m.buffer, m.byteOffset + 8, v.getUint16(6, true) - 8);
      }
    }
    return null;
  }

  /** A request that must be answered. */
  async must(devNum: number, msgId: number, payload?: Uint8Array): Promise<DataView> {
    const a = await this.request(devNum, msgId, payload);
    if (!a) throw new Error(`[${this.name}] no answer to ${P.MSG_NAMES[msgId] ?? msgId} from device ${devNum}`);
    return a;
  }

  /** SET_DEVICE_STATUS; the status the device answers with. */
  async setStatus(dev: number, status: number): Promise<number> {
    return (await this.must(dev, P.VIRTIO_MSG_SET_DEVICE_STATUS, u32s(status))).getUint32(0, true);
  }

  async getStatus(dev: number): Promise<number> {
    return (await this.must(dev, P.VIRTIO_MSG_GET_DEVICE_STATUS)).getUint32(0, true);
  }

  async setDriverFeatures(dev: number, features: bigint): Promise<void> {
    await this.request(dev, P.VIRTIO_MSG_SET_DRIVER_FEATURES, u32s(0, 2, Number(features & 0xffffffffn), Number(features >> 32n)));
  }

  async deviceFeatureWord(dev: number, block: number): Promise<number> {
    return (await this.must(dev, P.VIRTIO_MSG_GET_DEVICE_FEATURES, u32s(block, 1))).getUint32(8, true);
  }

  /** Resets and negotiates `features` (default VERSION_1 | ACCESS_PLATFORM) up to FEATURES_OK; the answered status. */
  negotiate(dev: number, features = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM): Promise<number> {
    return negotiate(this, dev, features);
  }

  async setQueue(dev: number, q: number, size: number, desc: number, avail: number, used: number): Promise<void> {
    await this.request(dev, P.VIRTIO_MSG_SET_VQUEUE, u32s(q, 0, size, 0, desc, 0, avail, 0, used, 0));
  }

  async queueEnabled(dev: number, q: number): Promise<boolean> {
    return (await this.must(dev, P.VIRTIO_MSG_GET_VQUEUE, u32s(q))).getUint32(8, true) !== 0;
  }

  async notify(dev: number, q: number): Promise<void> {
    await this.raw(FrontendBus.encode(0, P.VIRTIO_MSG_EVENT_AVAIL, dev, 0, u32s(q, 0)));
  }

  async getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    const a = await this.must(dev, P.VIRTIO_MSG_GET_CONFIG, u32s(offset, len));
    return { generation: a.getUint32(0, true), data: new Uint8Array(a.buffer, a.byteOffset + 12, a.getUint32(8, true)).slice() };
  }

  configNotified(dev: number): number | null {
    return this.configStatus.get(dev) ?? null;
  }

  /** A hand-built ring in the pool (at `base`, default the pool start). */
  ring(size: number, base = this.layout.poolOffset): PeerRing {
    return new PeerRing(this, size, base);
  }

  /** A hand-built packed ring in the pool (at `base`, default the pool start). */
  packedRing(size: number, base = this.layout.poolOffset): PeerPackedRing {
    return new PeerPackedRing(this, size, base);
  }

  /** The name of the backend, for failure messages. */
  get backend(): string {
    return this.name;
  }
}

/** The §3.1.1 handshake up to FEATURES_OK, the same on every transport: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
async function negotiate(p: Peer, dev: number, features: bigint): Promise<number> {
  await p.setStatus(dev, 0);
  await p.setStatus(dev, ACKNOWLEDGE);
  await p.setStatus(dev, ACKNOWLEDGE | DRIVER);
  await p.setDriverFeatures(dev, features);
  return p.setStatus(dev, ACKNOWLEDGE | DRIVER | FEATURES_OK);
}

/**
 * The raw peer of the register transports (regblock, mmio): every operation through the transport's
 * driver side (frontend/regblock.ts, frontend/mmio.ts), which writes exactly what it is given. Its
 * barrier is three round trips the device state does not notice (a regblock transaction on
 * queue_driver_vector, an mmio read of MagicValue): each completes at the start of a backend pass, so
 * after the third the pass of the first, and whatever that pass kicked for the next one, are done.
 */
export class BusPeer implements Peer {
  readonly transport: TransportKind;
  readonly layout: WindowLayout;
  readonly bus: RegBlockBus | MmioBus;
  private readonly configStatus = new Map<number, number>();

  constructor(
    readonly port: FrontendPort,
    transport: 'regblock' | 'mmio',
    private readonly opts: { name: string; timeoutMs: number },
  ) {
    this.transport = transport;
    this.bus = transport === 'regblock' ? new RegBlockBus(port) : new MmioBus(port);
    this.layout = this.bus.layout;
    this.bus.onEvent = (e) => {
      if (e.kind === 'config' && e.status !== undefined) this.configStatus.set(e.devNum, e.status);
    };
  }

  get bytes(): Uint8Array {
    return this.port.bytes;
  }

  get backend(): string {
    return this.opts.name;
  }

  async barrier(): Promise<void> {
    for (let k = 0; k < 3; k++) await this.bus.roundTrip();
    await this.until(() => true, () => 'barrier');
  }

  until(cond: () => boolean, what: () => string, timeoutMs = this.opts.timeoutMs): Promise<void> {
    return this.bus.until(cond, timeoutMs, () => `[${this.opts.name}] ${what()}${timeoutMs ? ` (waited ${timeoutMs} ms)` : ''}`);
  }

  async setStatus(dev: number, status: number): Promise<number> {
    await this.bus.setStatus(dev, status);
    return this.bus.getStatus(dev);
  }

  getStatus(dev: number): Promise<number> {
    return this.bus.getStatus(dev);
  }

  setDriverFeatures(dev: number, features: bigint): Promise<void> {
    return this.bus.setDriverFeatures(dev, features);
  }

  async deviceFeatureWord(dev: number, block: number): Promise<number> {
    return this.bus.deviceFeatureWord(dev, block);
  }

  negotiate(dev: number, features = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM): Promise<number> {
    return negotiate(this, dev, features);
  }

  async setQueue(dev: number, q: number, size: number, desc: number, avail: number, used: number): Promise<void> {
    await this.bus.setupQueue(dev, q, size, desc, avail, used);
  }

  queueEnabled(dev: number, q: number): Promise<boolean> {
    return this.bus.queueEnabled(dev, q);
  }

  async notify(dev: number, q: number): Promise<void> {
    await this.bus.notify(dev, q);
    await this.barrier();
  }

  getConfig(dev: number, offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    return this.bus.getConfig(dev, offset, len);
  }

  configNotified(dev: number): number | null {
    return this.configStatus.get(dev) ?? null;
  }

  ring(size: number, base = this.layout.poolOffset): PeerRing {
    return new PeerRing(this, size, base);
  }
}

/** A hand-built split ring installed and notified through a peer of any transport. */
export class PeerRing extends SplitRing {
  constructor(
    readonly peer: Peer,
    size: number,
    base: number,
  ) {
    super(() => peer.bytes, size, base);
  }

  /** Configures this ring as queue `q` of device `dev` (SET_VQUEUE, or the queue registers). */
  install(dev: number, q: number): Promise<void> {
    return this.peer.setQueue(dev, q, this.size, this.desc, this.avail, this.used);
  }

  /** A notification for queue `q` of `dev`, then a barrier. */
  notify(dev: number, q: number): Promise<void> {
    return this.peer.notify(dev, q);
  }

  /** Waits until the device has used at least `n` buffers in total. */
  waitUsed(n: number): Promise<void> {
    return this.peer.until(() => ((this.usedIdx() - n) & 0xffff) < 0x8000, () => `queue at 0x${this.desc.toString(16)}: used index ${this.usedIdx()}, expected ${n}`);
  }
}

/** Negotiates device `dev`, installs one raw ring of `size` entries as queue 0 and sets DRIVER_OK. */
export async function liveRing(peer: Peer, dev: number, size = 8, features?: bigint): Promise<PeerRing> {
  await peer.negotiate(dev, features);
  const ring = peer.ring(size);
  await ring.install(dev, 0);
  await peer.setStatus(dev, LIVE);
  return ring;
}

/** A hand-built packed ring installed and notified through a RawPeer. */
export class PeerPackedRing extends PackedRing {
  /** Used buffers reaped by `waitUsed` and not yet taken. */
  private reaped: UsedBuffer[] = [];

  constructor(
    readonly peer: RawPeer,
    size: number,
    base: number,
  ) {
    super(() => peer.bytes, size, base);
  }

  /** Configures this ring as queue `q` of device `dev` (SET_VQUEUE with the three packed areas, or the queue registers). */
  install(dev: number, q: number): Promise<void> {
    const a = this.areas;
    return this.peer.setQueue(dev, q, this.size, a.desc, a.driver, a.device);
  }

  /** A notification for queue `q` of `dev`, then a barrier. */
  notify(dev: number, q: number): Promise<void> {
    return this.peer.notify(dev, q);
  }

  /** Waits until the device has used `n` more buffers and returns them (§2.8.22, as `reap`). */
  async waitUsed(n: number): Promise<UsedBuffer[]> {
    await this.peer.until(
      () => {
        this.reaped.push(...this.reap());
        return this.reaped.length >= n;
      },
      () => `packed queue at 0x${this.desc.toString(16)}: ${this.reaped.length} of ${n} buffers used`,
    );
    return this.reaped.splice(0, n);
  }
}

/** Negotiates device `dev` with VIRTIO_F_RING_PACKED, installs one packed ring of `size` as queue 0 and sets DRIVER_OK. */
export async function livePackedRing(peer: RawPeer, dev: number, size = 8, features = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM): Promise<PeerPackedRing> {
  await peer.negotiate(dev, features | VIRTIO_F_RING_PACKED);
  const ring = peer.packedRing(size);
  await ring.install(dev, 0);
  await peer.setStatus(dev, LIVE);
  return ring;
}
