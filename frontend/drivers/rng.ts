/** Frontend driver model for virtio-rng (virtio 1.3 §5.4). */
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { DriverQueue } from '../vring';

export class RngDriver {
  private q!: DriverQueue<number>;
  private next = 1;
  private constructor(readonly dev: DriverDevice) {}

  /** Negotiates and sets up the request queue. */
  static async open(dev: DriverDevice, queueSize = 64): Promise<RngDriver> {
    const d = new RngDriver(dev);
    await dev.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX);
    d.q = await dev.setupQueue(0, queueSize);
    await dev.driverOk();
    return d;
  }

  /** Reads up to `n` random bytes (the device may fill less; bounced through the window pool). */
  async read(n: number): Promise<Uint8Array> {
    const off = this.dev.pool.alloc(n);
    try {
      const token = this.next++;
      if (!this.q.add([], [{ off, len: n }], token)) throw new Error('rng queue full');
      await this.q.kick();
      const len = await this.q.complete(token);
      return this.dev.bus.port.bytes.slice(off, off + len);
    } finally {
      this.dev.pool.release(off, n);
    }
  }
}
