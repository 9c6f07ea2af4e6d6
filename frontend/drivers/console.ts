/** Frontend driver model for virtio-console port 0 (virtio 1.3 §5.3). */
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { DriverQueue } from '../vring';

const VIRTIO_CONSOLE_F_SIZE = 1n;
const RX_BUFFERS = 4;
const RX_BUFFER_SIZE = 4096;

export class ConsoleDriver {
  private rx!: DriverQueue<number>;
  private tx!: DriverQueue<number>;
  private rxBufs: number[] = [];
  private received: Uint8Array[] = [];
  private next = 1;
  private constructor(readonly dev: DriverDevice) {}

  static async open(dev: DriverDevice): Promise<ConsoleDriver> {
    const d = new ConsoleDriver(dev);
    await dev.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX | VIRTIO_CONSOLE_F_SIZE);
    d.rx = await dev.setupQueue(0, 64);
    d.tx = await dev.setupQueue(1, 64);
    for (let i = 0; i < RX_BUFFERS; i++) {
      const off = dev.pool.alloc(RX_BUFFER_SIZE);
      d.rxBufs[i] = off;
      d.rx.add([], [{ off, len: RX_BUFFER_SIZE }], i);
    }
    await dev.driverOk();
    await d.rx.kick();
    return d;
  }

  /** Console size from the config space (VIRTIO_CONSOLE_F_SIZE). */
  async size(): Promise<{ cols: number; rows: number }> {
    const { data } = await this.dev.getConfig(0, 4);
    const v = new DataView(data.buffer);
    return { cols: v.getUint16(0, true), rows: v.getUint16(2, true) };
  }

  /** Sends bytes to the host side of the console and waits until the device consumed them. */
  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const off = this.dev.pool.alloc(bytes.length);
    try {
      this.dev.bus.port.bytes.set(bytes, off);
      const token = this.next++;
      if (!this.tx.add([{ off, len: bytes.length }], [], token)) throw new Error('console transmit queue full');
      await this.tx.kick();
      await this.tx.complete(token);
    } finally {
      this.dev.pool.release(off, bytes.length);
    }
  }

  /** Collects what the host sent so far (and re-posts the receive buffers). */
  async read(): Promise<Uint8Array> {
    this.dev.bus.poll();
    this.rx.reap();
    for (const [i, len] of this.rx.done) {
      const off = this.rxBufs[i]!;
      this.received.push(this.dev.bus.port.bytes.slice(off, off + len));
      this.rx.add([], [{ off, len: RX_BUFFER_SIZE }], i);
    }
    const reposted = this.rx.done.size > 0;
    this.rx.done.clear();
    if (reposted) await this.rx.kick();
    const total = this.received.reduce((a, b) => a + b.length, 0);
    const out = new Uint8Array(total);
    let p = 0;
    for (const b of this.received) {
      out.set(b, p);
      p += b.length;
    }
    this.received = [];
    return out;
  }
}
