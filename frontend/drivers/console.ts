/**
 * Frontend driver model for virtio-console (virtio 1.3 §5.3): port 0, and with
 * `{ multiport: true }` every port the device announces over the control queues (§5.3.6.2),
 * the way Linux's virtio_console brings them up (DEVICE_READY → DEVICE_ADD → PORT_READY →
 * CONSOLE_PORT / PORT_NAME → PORT_OPEN).
 */
import {
  CONTROL_HEADER,
  encodeControl,
  parseControl,
  VIRTIO_CONSOLE_CONSOLE_PORT,
  VIRTIO_CONSOLE_DEVICE_ADD,
  VIRTIO_CONSOLE_DEVICE_READY,
  VIRTIO_CONSOLE_F_MULTIPORT,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_PORT_NAME,
  VIRTIO_CONSOLE_PORT_OPEN,
  VIRTIO_CONSOLE_PORT_READY,
} from '../../firmware/devices/console';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { DriverQueue } from '../vring';

const RX_BUFFERS = 4;
const RX_BUFFER_SIZE = 4096;
const CONTROL_BUFFERS = 16;
const CONTROL_BUFFER_SIZE = 128;
const QUEUE_SIZE = 64;

/** One port: its receive buffers and transmit queue. */
export class ConsolePort {
  /** Name from PORT_NAME (ports ≥ 1), `console` for the console port. */
  name = '';
  /** The device said the host side is open (PORT_OPEN 1). */
  hostOpen = false;
  private rxBufs: number[] = [];
  private received: Uint8Array[] = [];
  private next = 1;

  constructor(
    readonly id: number,
    private readonly dev: DriverDevice,
    private readonly rx: DriverQueue<number>,
    private readonly tx: DriverQueue<number>,
  ) {}

  /** Posts the receive buffers (before DRIVER_OK for port 0, at PORT_READY for the others). */
  postReceiveBuffers(): void {
    for (let i = 0; i < RX_BUFFERS; i++) {
      const off = this.dev.allocOwned(RX_BUFFER_SIZE);
      this.rxBufs[i] = off;
      this.rx.add([], [{ off, len: RX_BUFFER_SIZE }], i);
    }
  }

  kickReceive(): Promise<void> {
    return this.rx.kick();
  }

  /** Sends bytes to the host side of this port and waits until the device consumed them. */
  async write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const off = this.dev.pool.alloc(bytes.length);
    try {
      this.dev.bus.port.bytes.set(bytes, off);
      const token = this.next++;
      if (!this.tx.add([{ off, len: bytes.length }], [], token)) throw new Error(`console port ${this.id}: transmit queue full`);
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
    const out = Buffer.concat(this.received);
    this.received = [];
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }
}

export class ConsoleDriver {
  /** Ports by id; port 0 is the console. */
  readonly ports: ConsolePort[] = [];
  private cin: DriverQueue<number> | null = null;
  private cout: DriverQueue<number> | null = null;
  private cinBufs: number[] = [];
  private controlToken = 1;
  private constructor(readonly dev: DriverDevice) {}

  /**
   * Negotiates and sets up port 0; with `multiport` (and a device that offers it) also the control
   * queues, and waits until every port the device announces is ready and named.
   */
  static async open(dev: DriverDevice, opts: { multiport?: boolean } = {}): Promise<ConsoleDriver> {
    const d = new ConsoleDriver(dev);
    const want = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX | VIRTIO_CONSOLE_F_SIZE | (opts.multiport ? VIRTIO_CONSOLE_F_MULTIPORT : 0n);
    const features = await dev.negotiate(want);
    const multi = (features & VIRTIO_CONSOLE_F_MULTIPORT) !== 0n;
    const port0 = new ConsolePort(0, dev, await dev.setupQueue(0, QUEUE_SIZE), await dev.setupQueue(1, QUEUE_SIZE));
    port0.name = 'console';
    d.ports[0] = port0;
    port0.postReceiveBuffers();
    if (!multi) {
      await dev.driverOk();
      await port0.kickReceive();
      return d;
    }
    const { data } = await dev.getConfig(4, 4);
    const maxPorts = new DataView(data.buffer).getUint32(0, true);
    d.cin = await dev.setupQueue(2, QUEUE_SIZE);
    d.cout = await dev.setupQueue(3, QUEUE_SIZE);
    for (let id = 1; id < maxPorts; id++) d.ports[id] = new ConsolePort(id, dev, await dev.setupQueue(2 + 2 * id, QUEUE_SIZE), await dev.setupQueue(3 + 2 * id, QUEUE_SIZE));
    for (let i = 0; i < CONTROL_BUFFERS; i++) {
      const off = dev.allocOwned(CONTROL_BUFFER_SIZE);
      d.cinBufs[i] = off;
      d.cin.add([], [{ off, len: CONTROL_BUFFER_SIZE }], i);
    }
    await dev.driverOk();
    await port0.kickReceive();
    await d.cin.kick();
    await d.control(0, VIRTIO_CONSOLE_DEVICE_READY, 1);
    const deadline = Date.now() + 5000;
    while (!d.ports.every((p) => p.hostOpen)) {
      if ((await d.pumpControl()) > 0) continue;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`console: ports not all announced and opened (${d.ports.map((p) => `${p.id}:${p.hostOpen ? 'open' : 'waiting'}`).join(' ')})`);
      dev.bus.poll();
      await dev.bus.port.wait(Math.min(left, 50));
    }
    return d;
  }

  /** Port 0 (the console). */
  get console(): ConsolePort {
    return this.ports[0]!;
  }

  /** Console size from the config space (VIRTIO_CONSOLE_F_SIZE). */
  async size(): Promise<{ cols: number; rows: number }> {
    const { data } = await this.dev.getConfig(0, 4);
    const v = new DataView(data.buffer);
    return { cols: v.getUint16(0, true), rows: v.getUint16(2, true) };
  }

  /** Sends bytes to the host side of the console port. */
  write(data: Uint8Array | string): Promise<void> {
    return this.console.write(data);
  }

  /** Collects what the host sent to the console port so far. */
  read(): Promise<Uint8Array> {
    return this.console.read();
  }

  /** The port named `name` (PORT_NAME). */
  port(name: string): ConsolePort | undefined {
    return this.ports.find((p) => p.name === name);
  }

  private async control(id: number, event: number, value: number): Promise<void> {
    const msg = encodeControl(id, event, value);
    const off = this.dev.pool.alloc(msg.length);
    this.dev.bus.port.bytes.set(msg, off);
    const token = this.controlToken++;
    if (!this.cout!.add([{ off, len: msg.length }], [], token)) throw new Error('console control queue full');
    await this.cout!.kick();
    await this.cout!.complete(token);
    this.dev.pool.release(off, msg.length);
  }

  /** Handles the device's control messages (§5.3.6.2) as Linux does; returns how many arrived. */
  private async pumpControl(): Promise<number> {
    const cin = this.cin!;
    cin.reap();
    const done = [...cin.done];
    cin.done.clear();
    for (const [i, len] of done) {
      const at = this.cinBufs[i]!;
      const bytes = this.dev.bus.port.bytes.slice(at, at + len);
      cin.add([], [{ off: at, len: CONTROL_BUFFER_SIZE }], i);
      const m = parseControl(bytes);
      const port = m ? this.ports[m.id] : undefined;
      if (!m || !port) continue;
      if (m.event === VIRTIO_CONSOLE_DEVICE_ADD) {
        if (port.id !== 0) {
          port.postReceiveBuffers(); // port 0's went in before DRIVER_OK
          await port.kickReceive();
        }
        await this.control(m.id, VIRTIO_CONSOLE_PORT_READY, 1);
      } else if (m.event === VIRTIO_CONSOLE_CONSOLE_PORT) port.name = 'console';
      else if (m.event === VIRTIO_CONSOLE_PORT_NAME) port.name = new TextDecoder().decode(bytes.subarray(CONTROL_HEADER));
      else if (m.event === VIRTIO_CONSOLE_PORT_OPEN) {
        port.hostOpen = m.value === 1;
        if (port.hostOpen) await this.control(m.id, VIRTIO_CONSOLE_PORT_OPEN, 1);
      }
    }
    if (done.length) await cin.kick();
    return done.length;
  }
}
