/**
 * Frontend driver model for virtio-gpio (virtio 1.3 §5.18): what Linux's gpio-virtio does. Each
 * request is a struct virtio_gpio_request and a response buffer, bounced into the window pool; with
 * VIRTIO_GPIO_F_IRQ, interrupts are enabled with SET_IRQ_TYPE and unmasked by queuing a line's eventq
 * buffer pair, which the device returns VALID when the interrupt fires (re-arm with `arm` again).
 */
import { GPIO_CONFIG_SIZE, GPIO_REQUEST_BYTES } from '../../firmware/devices/gpio';
import {
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_VERSION_1,
  VIRTIO_GPIO_F_IRQ,
  VIRTIO_GPIO_MSG_GET_DIRECTION,
  VIRTIO_GPIO_MSG_GET_LINE_NAMES,
  VIRTIO_GPIO_MSG_GET_VALUE,
  VIRTIO_GPIO_MSG_SET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
  VIRTIO_GPIO_MSG_SET_VALUE,
  VIRTIO_GPIO_STATUS_OK,
} from '../../firmware/virtio';
import type { DriverDevice } from '../device';
import type { DriverQueue } from '../vring';

/** A request's answer: status, value and the used length the device reported. */
export interface GpioAnswer {
  status: number;
  value: number;
  usedLen: number;
}

/** An eventq buffer the device returned: the line and VIRTIO_GPIO_IRQ_STATUS_VALID / INVALID. */
export interface GpioEvent {
  line: number;
  status: number;
  usedLen: number;
}

export class GpioDriver {
  private rq!: DriverQueue<number>;
  private eq: DriverQueue<number> | null = null;
  private next = 1;
  ngpio = 0;
  namesSize = 0;
  /** eventq buffers in flight: token → [line, pool offset]. */
  private readonly armed = new Map<number, [number, number]>();
  private constructor(readonly dev: DriverDevice) {}

  /** Negotiates (with `irq`, VIRTIO_GPIO_F_IRQ and the eventq), reads the config and goes live. */
  static async open(dev: DriverDevice, opts: { irq?: boolean; queueSize?: number } = {}): Promise<GpioDriver> {
    const d = new GpioDriver(dev);
    const f = await dev.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_EVENT_IDX | (opts.irq !== false ? VIRTIO_GPIO_F_IRQ : 0n));
    const { data } = await dev.getConfig(0, GPIO_CONFIG_SIZE);
    const v = new DataView(data.buffer);
    d.ngpio = v.getUint16(0, true);
    d.namesSize = v.getUint32(4, true);
    d.rq = await dev.setupQueue(0, opts.queueSize ?? 64);
    if (f & VIRTIO_GPIO_F_IRQ) d.eq = await dev.setupQueue(1, opts.queueSize ?? 64);
    await dev.driverOk();
    return d;
  }

  /** One request with a response buffer of `respLen` bytes (default: struct virtio_gpio_response). */
  async request(type: number, gpio: number, value = 0, respLen = 2): Promise<GpioAnswer & { bytes: Uint8Array }> {
    const pool = this.dev.pool;
    const bytes = () => this.dev.bus.port.bytes;
    const req = pool.alloc(GPIO_REQUEST_BYTES);
    const res = pool.alloc(respLen);
    try {
      const v = new DataView(bytes().buffer, bytes().byteOffset + req, GPIO_REQUEST_BYTES);
      v.setUint16(0, type, true);
      v.setUint16(2, gpio, true);
      v.setUint32(4, value >>> 0, true);
      bytes().fill(0xee, res, res + respLen);
      const token = this.next++;
      if (!this.rq.add([{ off: req, len: GPIO_REQUEST_BYTES }], [{ off: res, len: respLen }], token)) throw new Error('gpio requestq full');
      await this.rq.kick();
      const usedLen = await this.rq.complete(token);
      const b = bytes().slice(res, res + respLen);
      return { status: b[0]!, value: respLen > 1 ? b[1]! : 0, usedLen, bytes: b };
    } finally {
      pool.release(req, GPIO_REQUEST_BYTES);
      pool.release(res, respLen);
    }
  }

  private async ok(type: number, gpio: number, value = 0): Promise<number> {
    const a = await this.request(type, gpio, value);
    if (a.status !== VIRTIO_GPIO_STATUS_OK) throw new Error(`gpio: request ${type} on line ${gpio} failed (status ${a.status})`);
    return a.value;
  }

  /** GET_LINE_NAMES, split at the zero bytes ('' for an unnamed line). */
  async names(): Promise<string[]> {
    const a = await this.request(VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, 1 + this.namesSize);
    if (a.status !== VIRTIO_GPIO_STATUS_OK) throw new Error(`gpio: GET_LINE_NAMES failed (status ${a.status})`);
    const text = new TextDecoder().decode(a.bytes.subarray(1));
    return text.split('\0').slice(0, this.ngpio);
  }

  getDirection(line: number): Promise<number> {
    return this.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, line);
  }
  async setDirection(line: number, direction: number): Promise<void> {
    await this.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, line, direction);
  }
  get(line: number): Promise<number> {
    return this.ok(VIRTIO_GPIO_MSG_GET_VALUE, line);
  }
  async set(line: number, value: number): Promise<void> {
    await this.ok(VIRTIO_GPIO_MSG_SET_VALUE, line, value);
  }
  /** Drives `line` as an output at `value` (value first, then direction, as Linux does). */
  async output(line: number, value: number): Promise<void> {
    await this.set(line, value);
    await this.setDirection(line, 1);
  }
  async setIrqType(line: number, type: number): Promise<void> {
    await this.ok(VIRTIO_GPIO_MSG_SET_IRQ_TYPE, line, type);
  }

  /** Queues `line`'s eventq buffer pair (unmasks its interrupt, §5.18.7). */
  async arm(line: number): Promise<void> {
    if (!this.eq) throw new Error('gpio: VIRTIO_GPIO_F_IRQ was not negotiated');
    const off = this.dev.pool.alloc(3);
    const b = this.dev.bus.port.bytes;
    b[off] = line & 0xff;
    b[off + 1] = line >> 8;
    b[off + 2] = 0xee;
    const token = this.next++;
    if (!this.eq.add([{ off, len: 2 }], [{ off: off + 2, len: 1 }], token)) throw new Error('gpio eventq full');
    this.armed.set(token, [line, off]);
    await this.eq.kick();
  }

  /** The eventq buffers the device returned since the last call. */
  events(): GpioEvent[] {
    if (!this.eq) return [];
    this.dev.bus.poll();
    this.eq.reap();
    const out: GpioEvent[] = [];
    for (const [token, usedLen] of this.eq.done) {
      const [line, off] = this.armed.get(token)!;
      out.push({ line, status: this.dev.bus.port.bytes[off + 2]!, usedLen });
      this.armed.delete(token);
      this.dev.pool.release(off, 3);
    }
    this.eq.done.clear();
    return out;
  }

  /** Waits (bounded) until at least one eventq buffer came back; returns them. */
  async waitEvents(timeoutMs = 5000): Promise<GpioEvent[]> {
    let got: GpioEvent[] = [];
    await this.dev.bus.until(
      () => (got = this.events()).length > 0,
      timeoutMs,
      () => `gpio: no interrupt within ${timeoutMs} ms`,
    );
    return got;
  }
}
