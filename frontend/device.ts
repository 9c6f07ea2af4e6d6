/**
 * A virtio device as the frontend driver model sees it, over any transport (transport.ts): the status
 * handshake of virtio 1.3 §3.1.1 in the order Linux's virtio core runs it (drivers/virtio/virtio.c:
 * reset, add ACKNOWLEDGE, add DRIVER, read features, finalize, add FEATURES_OK and read the status
 * back, queues, add DRIVER_OK), feature negotiation, config access and queue setup.
 */
import * as P from '../firmware/transport/protocol';
import { ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_PACKED } from '../firmware/virtio';
import { FrontendBus } from './bus';
import { readLayout } from './layout';
import { MmioBus } from './mmio';
import { PoolAllocator } from './pool';
import type { FrontendPort } from './port';
import { RegBlockBus } from './regblock';
import type { DeviceInfo, DriverEvent, DriverTransport } from './transport';
import type { DriverQueue } from './vring';
import { SplitDriverQueue } from './vring';
import { PackedDriverQueue } from './vring-packed';

/** The virtqueue format a frontend asks for: split (virtio 1.3 §2.7) or packed (§2.8, VIRTIO_F_RING_PACKED). */
export type RingFormat = 'split' | 'packed';

/** Options of `Frontend.attach`. */
export interface FrontendOptions {
  /**
   * The ring format the drivers ask for (default split). With `packed`, every device's negotiation adds
   * VIRTIO_F_RING_PACKED; a device that does not offer it gets split rings, as with Linux.
   */
  ring?: RingFormat;
}

export type { DeviceInfo };

/** The driver side of the transport a window's header names. */
export function attachTransport(port: FrontendPort): DriverTransport {
  const layout = readLayout(port.bytes);
  switch (layout.transport) {
    case 'msg':
      return new FrontendBus(port);
    case 'regblock':
      return new RegBlockBus(port);
    case 'mmio':
      return new MmioBus(port);
  }
}

export class DriverDevice {
  features = 0n;
  status = 0;
  readonly queues: (DriverQueue<number> | null)[] = [];
  /** Buffers a driver keeps for the device's lifetime (allocOwned): the pool gets them back at reset. */
  private readonly owned: { off: number; len: number }[] = [];
  /** EVENT_CONFIG messages received: the last status and generation they carried. */
  configEvents = 0;
  lastEventStatus = 0;
  lastGeneration = 0;

  constructor(
    readonly bus: DriverTransport,
    readonly pool: PoolAllocator,
    readonly devNum: number,
    readonly info: DeviceInfo,
    /** The ring format this device's driver asks for at the next `negotiate()` (a bench may switch it between runs). */
    public ring: RingFormat = 'split',
  ) {}

  /** Handles a notification addressed to this device. */
  handleEvent(e: DriverEvent): void {
    if (e.kind === 'config') {
      this.configEvents++;
      if (e.status !== undefined) this.lastEventStatus = e.status;
      if (e.generation !== undefined) this.lastGeneration = e.generation;
    } else if (e.queue < 0) {
      for (const q of this.queues) q?.reap();
    } else this.queues[e.queue]?.reap();
  }

  /** Writes the status; returns the status the device holds (answered, or read back when the transport does not answer). */
  async setStatus(value: number): Promise<number> {
    const r = await this.bus.setStatus(this.devNum, value);
    this.status = r ?? (await this.bus.getStatus(this.devNum));
    return this.status;
  }

  async getStatus(): Promise<number> {
    this.status = await this.bus.getStatus(this.devNum);
    return this.status;
  }

  /**
   * virtio_add_status: the status read, the bit added, written. Over virtio-msg the last answer is the
   * status (no GET_DEVICE_STATUS needed); the register transports read it as Linux does.
   */
  private async addStatus(bits: number): Promise<number | null> {
    const cur = this.bus.kind === 'msg' ? this.status : await this.bus.getStatus(this.devNum);
    const r = await this.bus.setStatus(this.devNum, cur | bits);
    this.status = r ?? cur | bits;
    return r;
  }

  deviceFeatures(): Promise<bigint> {
    return this.bus.deviceFeatures(this.devNum);
  }

  getConfig(offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    return this.bus.getConfig(this.devNum, offset, len);
  }

  /** Returns false when the device rejected the write (stale generation, read-only field). */
  setConfig(generation: number, offset: number, data: Uint8Array): Promise<boolean> {
    return this.bus.setConfig(this.devNum, generation, offset, data);
  }

  /**
   * Resets the device and runs the §3.1.1 handshake up to FEATURES_OK with `wanted ∩ offered` (plus
   * VIRTIO_F_RING_PACKED when this device's ring format is packed and the device offers it); throws if
   * the device refuses FEATURES_OK (read back, as virtio_features_ok does, where the transport does not
   * answer the write).
   */
  async negotiate(wanted: bigint): Promise<bigint> {
    await this.reset();
    await this.addStatus(ACKNOWLEDGE);
    await this.addStatus(DRIVER);
    const offered = await this.deviceFeatures();
    const f = offered & (this.ring === 'packed' ? wanted | VIRTIO_F_RING_PACKED : wanted & ~VIRTIO_F_RING_PACKED);
    await this.bus.setDriverFeatures(this.devNum, f);
    const s = (await this.addStatus(FEATURES_OK)) ?? (await this.getStatus());
    if (!(s & FEATURES_OK)) throw new Error(`device ${this.devNum} refused features 0x${f.toString(16)}`);
    this.features = f;
    return f;
  }

  /** Allocates queue `i` in the pool (split or packed, as negotiated) and configures it (SET_VQUEUE, or the queue registers). */
  async setupQueue(i: number, size: number): Promise<DriverQueue<number>> {
    const eventIdx = (this.features & VIRTIO_F_RING_EVENT_IDX) !== 0n;
    const q = this.features & VIRTIO_F_RING_PACKED
      ? new PackedDriverQueue<number>(this.bus, this.pool, this.devNum, i, size, eventIdx)
      : new SplitDriverQueue<number>(this.bus, this.pool, this.devNum, i, size, eventIdx);
    const a = q.areas;
    if (!(await this.bus.setupQueue(this.devNum, i, size, a.desc, a.driver, a.device))) {
      q.release();
      throw new Error(`device ${this.devNum} refused queue ${i} of size ${size}`);
    }
    this.queues[i] = q;
    return q;
  }

  /** virtio_device_ready; a refusal shows in the answer (virtio-msg) or the status read back. */
  async driverOk(): Promise<void> {
    const r = await this.addStatus(DRIVER_OK);
    const s = r ?? (this.bus.kind === 'mmio' ? this.status : await this.getStatus());
    if (!(s & DRIVER_OK)) throw new Error(`device ${this.devNum} refused DRIVER_OK (status 0x${s.toString(16)})`);
  }

  /**
   * A pool buffer the driver keeps posted while the device runs (receive buffers, transmit slots): the
   * next reset gives it back with the queues, so a driver opened again on the same device (a bench
   * switching ring formats) does not leak the first one's buffers.
   */
  allocOwned(len: number, align = 8): number {
    const off = this.pool.alloc(len, align);
    this.owned.push({ off, len });
    return off;
  }

  /** Writes status 0 and gives the queues' memory and the driver's owned buffers back to the pool. */
  async reset(): Promise<void> {
    const r = await this.bus.setStatus(this.devNum, 0);
    this.status = r ?? 0;
    for (const q of this.queues) q?.release();
    this.queues.length = 0;
    for (const b of this.owned) this.pool.release(b.off, b.len);
    this.owned.length = 0;
  }

  /** True once the device reported DEVICE_NEEDS_RESET. */
  get needsReset(): boolean {
    return ((this.status | this.lastEventStatus) & DEVICE_NEEDS_RESET) !== 0;
  }
}

/** The frontend: one transport, one pool, the devices the backend offers. */
export class Frontend {
  readonly devices: DriverDevice[] = [];

  private constructor(
    readonly bus: DriverTransport,
    readonly pool: PoolAllocator,
  ) {
    bus.onEvent = (e) => this.devices[e.devNum]?.handleEvent(e);
  }

  /**
   * Attaches to a backend's window: checks the header, discovers the devices over the transport it
   * names. `opts.ring` chooses the ring format every device's driver asks for.
   */
  static async attach(port: FrontendPort, opts: FrontendOptions = {}): Promise<Frontend> {
    const bus = attachTransport(port);
    const fe = new Frontend(bus, new PoolAllocator(bus.layout.poolOffset, bus.layout.poolSize));
    for (const { devNum, info } of await bus.discover()) fe.devices[devNum] = new DriverDevice(fe.bus, fe.pool, devNum, info, opts.ring ?? 'split');
    return fe;
  }

  /** The first device with virtio device ID `deviceId`. */
  find(deviceId: number): DriverDevice | undefined {
    return this.devices.find((d) => d?.info.deviceId === deviceId);
  }

  /** PING the bus (virtio-msg only: the register transports have no bus messages). */
  async ping(data: number): Promise<number> {
    if (!(this.bus instanceof FrontendBus)) throw new Error(`PING is a virtio-msg bus message; this window speaks ${this.bus.kind}`);
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, data >>> 0, true);
    const a = await this.bus.request(0, P.BUS_MSG_PING, p, { bus: true });
    return a.getUint32(0, true);
  }
}
