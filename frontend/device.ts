/**
 * A virtio device as the frontend driver model sees it over virtio-msg: discovery, the status
 * handshake of virtio 1.3 §3.1.1, feature negotiation, config access and queue setup.
 */
import * as P from '../firmware/transport/protocol';
import { ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_PACKED } from '../firmware/virtio';
import type { BusMessage } from './bus';
import { FrontendBus } from './bus';
import { readLayout } from './layout';
import { PoolAllocator } from './pool';
import type { FrontendPort } from './port';
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

/** GET_DEVICE_INFO. */
export interface DeviceInfo {
  deviceId: number;
  vendorId: number;
  numFeatureBits: number;
  configSize: number;
  maxQueues: number;
}

const u32s = (...v: number[]) => {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(4 * i, x >>> 0, true));
  return b;
};

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
    readonly bus: FrontendBus,
    readonly pool: PoolAllocator,
    readonly devNum: number,
    readonly info: DeviceInfo,
    /** The ring format this device's driver asks for at the next `negotiate()` (a bench may switch it between runs). */
    public ring: RingFormat = 'split',
  ) {}

  /** Handles an event addressed to this device. */
  handleEvent(m: BusMessage): void {
    if (m.msgId === P.VIRTIO_MSG_EVENT_CONFIG) {
      this.configEvents++;
      this.lastEventStatus = m.payload.getUint32(0, true);
      this.lastGeneration = m.payload.getUint32(4, true);
    } else if (m.msgId === P.VIRTIO_MSG_EVENT_USED) {
      this.queues[m.payload.getUint32(0, true)]?.reap();
    }
  }

  /** Sends a transport request to this device. */
  request(msgId: number, payload?: Uint8Array): Promise<DataView> {
    return this.bus.request(this.devNum, msgId, payload);
  }

  async setStatus(value: number): Promise<number> {
    const a = await this.request(P.VIRTIO_MSG_SET_DEVICE_STATUS, u32s(value));
    this.status = a.getUint32(0, true);
    return this.status;
  }

  async getStatus(): Promise<number> {
    const a = await this.request(P.VIRTIO_MSG_GET_DEVICE_STATUS);
    this.status = a.getUint32(0, true);
    return this.status;
  }

  async deviceFeatures(): Promise<bigint> {
    const a = await this.request(P.VIRTIO_MSG_GET_DEVICE_FEATURES, u32s(0, 2));
    return BigInt(a.getUint32(8, true)) | (BigInt(a.getUint32(12, true)) << 32n);
  }

  async getConfig(offset: number, len: number): Promise<{ generation: number; data: Uint8Array }> {
    const a = await this.request(P.VIRTIO_MSG_GET_CONFIG, u32s(offset, len));
    const n = a.getUint32(8, true);
    return { generation: a.getUint32(0, true), data: new Uint8Array(a.buffer, a.byteOffset + 12, n).slice() };
  }

  /** SET_CONFIG; returns false when the device rejected it (stale generation, read-only field). */
  async setConfig(generation: number, offset: number, data: Uint8Array): Promise<boolean> {
    const p = new Uint8Array(12 + data.length);
    p.set(u32s(generation, offset, data.length));
    p.set(data, 12);
    const a = await this.request(P.VIRTIO_MSG_SET_CONFIG, p);
    return a.getUint32(8, true) === data.length && data.length > 0;
  }

  /**
   * Resets the device and runs the §3.1.1 handshake up to FEATURES_OK with `wanted ∩ offered` (plus
   * VIRTIO_F_RING_PACKED when this device's ring format is packed and the device offers it); throws if
   * the device refuses FEATURES_OK.
   */
  async negotiate(wanted: bigint): Promise<bigint> {
    await this.reset();
    await this.setStatus(ACKNOWLEDGE);
    await this.setStatus(ACKNOWLEDGE | DRIVER);
    const offered = await this.deviceFeatures();
    const f = offered & (this.ring === 'packed' ? wanted | VIRTIO_F_RING_PACKED : wanted & ~VIRTIO_F_RING_PACKED);
    await this.request(P.VIRTIO_MSG_SET_DRIVER_FEATURES, u32s(0, 2, Number(f & 0xffffffffn), Number(f >> 32n)));
    const s = await this.setStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
    if (!(s & FEATURES_OK)) throw new Error(`device ${this.devNum} refused features 0x${f.toString(16)}`);
    this.features = f;
    return f;
  }

  /** Allocates queue `i` in the pool (split or packed, as negotiated) and configures it with SET_VQUEUE. */
  async setupQueue(i: number, size: number): Promise<DriverQueue<number>> {
    const eventIdx = (this.features & VIRTIO_F_RING_EVENT_IDX) !== 0n;
    const q = this.features & VIRTIO_F_RING_PACKED
      ? new PackedDriverQueue<number>(this.bus, this.pool, this.devNum, i, size, eventIdx)
      : new SplitDriverQueue<number>(this.bus, this.pool, this.devNum, i, size, eventIdx);
    const a = q.areas;
    await this.request(P.VIRTIO_MSG_SET_VQUEUE, u32s(i, 0, size, 0, a.desc, 0, a.driver, 0, a.device, 0));
    const g = await this.request(P.VIRTIO_MSG_GET_VQUEUE, u32s(i));
    if (g.getUint32(8, true) !== size) throw new Error(`device ${this.devNum} refused queue ${i} of size ${size}`);
    this.queues[i] = q;
    return q;
  }

  async driverOk(): Promise<void> {
    const s = await this.setStatus(this.status | DRIVER_OK);
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
    await this.setStatus(0);
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

/** The frontend: one bus, one pool, the devices the backend offers. */
export class Frontend {
  readonly devices: DriverDevice[] = [];

  private constructor(
    readonly bus: FrontendBus,
    readonly pool: PoolAllocator,
  ) {
    bus.onEvent = (m) => this.devices[m.devNum]?.handleEvent(m);
  }

  /**
   * Attaches to a backend's window: checks the header, discovers devices with GET_DEVICES and
   * GET_DEVICE_INFO. `opts.ring` chooses the ring format every device's driver asks for.
   */
  static async attach(port: FrontendPort, opts: FrontendOptions = {}): Promise<Frontend> {
    const layout = readLayout(port.bytes);
    const fe = new Frontend(new FrontendBus(port), new PoolAllocator(layout.poolOffset, layout.poolSize));
    const present: number[] = [];
    for (let offset = 0; ; ) {
      const a = await fe.bus.request(0, P.BUS_MSG_GET_DEVICES, new Uint8Array([offset & 0xff, offset >> 8, 64, 0]), { bus: true });
      const count = a.getUint16(2, true);
      for (let i = 0; i < count; i++) if (a.getUint8(6 + (i >> 3)) & (1 << (i & 7))) present.push(offset + i);
      const next = a.getUint16(4, true);
      if (next === 0 || next <= offset) break;
      offset = next;
    }
    for (const devNum of present) {
      const a = await fe.bus.request(devNum, P.VIRTIO_MSG_GET_DEVICE_INFO);
      fe.devices[devNum] = new DriverDevice(fe.bus, fe.pool, devNum, {
        deviceId: a.getUint32(0, true),
        vendorId: a.getUint32(4, true),
        numFeatureBits: a.getUint32(8, true),
        configSize: a.getUint32(12, true),
        maxQueues: a.getUint32(16, true),
      }, opts.ring ?? 'split');
    }
    return fe;
  }

  /** The first device with virtio device ID `deviceId`. */
  find(deviceId: number): DriverDevice | undefined {
    return this.devices.find((d) => d?.info.deviceId === deviceId);
  }

  /** PING the bus. */
  async ping(data: number): Promise<number> {
    const a = await this.bus.request(0, P.BUS_MSG_PING, u32s(data), { bus: true });
    return a.getUint32(0, true);
  }
}
