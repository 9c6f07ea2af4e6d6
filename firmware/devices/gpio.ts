/**
 * virtio-gpio — device ID 41, virtio 1.3 §5.18.
 * Queues: 0 requestq; 1 eventq (used only with VIRTIO_GPIO_F_IRQ, §5.18.2).
 * Features: VIRTIO_GPIO_F_IRQ — interrupts on input lines (edge rising/falling/both, level high/low).
 * Config layout (§5.18.4): le16 ngpio, u8 padding[2], le32 gpio_names_size — 8 bytes. The lines and
 * their names come from the board (the gpio service's `lines`); names are 7-bit ASCII, unique.
 * requestq (§5.18.6): struct virtio_gpio_request { le16 type; le16 gpio; le32 value } device-readable,
 * then struct virtio_gpio_response { u8 status; u8 value } device-writable (GET_LINE_NAMES: u8 status,
 * u8 value[gpio_names_size]). GET_LINE_NAMES, GET/SET_DIRECTION, GET/SET_VALUE, SET_IRQ_TYPE.
 * eventq (§5.18.7): one pair of buffers per line, struct virtio_gpio_irq_request { le16 gpio } then
 * struct virtio_gpio_irq_response { u8 status }. A line's buffer is its "unmasked" state: the device
 * returns it VALID when an enabled interrupt fires (which masks the line until the driver queues the
 * buffer again), INVALID when the interrupt is disabled (SET_IRQ_TYPE NONE, SET_DIRECTION NONE) or
 * was not enabled when the buffer came. Edges are latched while the line is enabled but masked (one
 * latch per line: edges coalesce, so a driver that never re-queues costs one bit, never a queue);
 * levels are not latched: a level interrupt fires when the buffer is there and the level is active,
 * and again at each re-queue while it stays active (§5.18.7.1, device requirements of §5.18.6.2).
 * Per-request errors (VIRTIO_GPIO_STATUS_ERR): unknown type, line ≥ ngpio, a direction, value or IRQ
 * type outside the spec's values, an IRQ message without VIRTIO_GPIO_F_IRQ or for an output line, a
 * trigger change without disabling first (§5.18.6.1), a response buffer too small. eventq buffers for a
 * line ≥ ngpio, or a second one for a line that has one (§5.18.7.1 MUST NOT), come back INVALID.
 * Structural faults (GuestProtocolError, DEVICE_NEEDS_RESET): a request without its 8-byte header or
 * without a writable byte, an eventq pair without its 2-byte request or its status byte.
 * Used length: 2 (status, value) per request, 1 + gpio_names_size for GET_LINE_NAMES, 1 for an
 * error too short to carry the value; 1 per eventq buffer.
 * Not supported: nothing of §5.18 is left out. Lines start as inputs driven low by the host.
 */
import { guestCheck } from '../errors';
import type { Logger } from '../hal';
import type { GpioService } from '../services';
import { GPIO_FELL, GPIO_LEVEL, GPIO_MAX_LINES, GPIO_MAX_NAME, GPIO_ROSE } from '../services';
import {
  VIRTIO_GPIO_DIRECTION_IN,
  VIRTIO_GPIO_DIRECTION_NONE,
  VIRTIO_GPIO_DIRECTION_OUT,
  VIRTIO_GPIO_F_IRQ,
  VIRTIO_GPIO_IRQ_STATUS_INVALID,
  VIRTIO_GPIO_IRQ_STATUS_VALID,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
  VIRTIO_GPIO_IRQ_TYPE_NONE,
  VIRTIO_GPIO_MSG_GET_DIRECTION,
  VIRTIO_GPIO_MSG_GET_LINE_NAMES,
  VIRTIO_GPIO_MSG_GET_VALUE,
  VIRTIO_GPIO_MSG_SET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
  VIRTIO_GPIO_MSG_SET_VALUE,
  VIRTIO_GPIO_STATUS_ERR,
  VIRTIO_GPIO_STATUS_OK,
  VIRTIO_ID_GPIO,
} from '../virtio';
import type { DescriptorChain } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';
import { VirtioDevice } from './device';

export const GPIO_CONFIG_SIZE = 8;
/** struct virtio_gpio_request. */
export const GPIO_REQUEST_BYTES = 8;
/** struct virtio_gpio_response. */
export const GPIO_RESPONSE_BYTES = 2;
/** struct virtio_gpio_irq_request. */
export const GPIO_IRQ_REQUEST_BYTES = 2;
const REQUESTQ = 0;
const EVENTQ = 1;

const IRQ_TYPES = new Set([
  VIRTIO_GPIO_IRQ_TYPE_NONE,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING,
  VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH,
  VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW,
]);

/** The config space (§5.18.4). */
export function encodeGpioConfig(ngpio: number, namesSize: number): Uint8Array {
  const b = new Uint8Array(GPIO_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint16(0, ngpio, true);
  v.setUint32(4, namesSize, true);
  return b;
}

/**
 * The gpio-names block (§5.18.6.1 Get Line Names): each line's name and a zero byte, in line order (a
 * lone zero for an unnamed line). Throws (a board mistake, not a guest fault) for names that are not
 * printable 7-bit ASCII of at most GPIO_MAX_NAME characters, or not unique.
 */
export function encodeGpioNames(names: readonly string[]): Uint8Array {
  const seen = new Set<string>();
  const parts: number[] = [];
  for (const n of names) {
    if (n !== '') {
      if (!/^[\x20-\x7e]+$/.test(n) || n.length > GPIO_MAX_NAME) throw new Error(`gpio: line name ${JSON.stringify(n)} must be 1..${GPIO_MAX_NAME} printable ASCII characters`);
      if (seen.has(n)) throw new Error(`gpio: line name ${JSON.stringify(n)} is used twice (names are unique within a device)`);
      seen.add(n);
      for (let i = 0; i < n.length; i++) parts.push(n.charCodeAt(i));
    }
    parts.push(0);
  }
  return Uint8Array.from(parts);
}

/** A parsed struct virtio_gpio_request (from the private copy). */
export interface GpioRequest {
  type: number;
  gpio: number;
  value: number;
}

export function parseGpioRequest(b: Uint8Array): GpioRequest {
  return { type: b[0]! | (b[1]! << 8), gpio: b[2]! | (b[3]! << 8), value: (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0 };
}

/** True when `sample` (GPIO_LEVEL/ROSE/FELL bits) holds an edge that `irqType` fires on. */
export function edgeFires(irqType: number, sample: number): boolean {
  return ((irqType & VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING) !== 0 && (sample & GPIO_ROSE) !== 0) || ((irqType & VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING) !== 0 && (sample & GPIO_FELL) !== 0);
}

/** True when `irqType` is a level type and the line's level is its active one. */
export function levelActive(irqType: number, level: number): boolean {
  return (irqType === VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH && level === 1) || (irqType === VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW && level === 0);
}

export interface GpioOptions {
  gpio: GpioService;
  /** Line names from the board, one per line ('' for an unnamed line). */
  names: readonly string[];
  log: Logger;
}

export class GpioDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_GPIO;
  readonly name = 'gpio';
  readonly numQueues = 2;
  readonly features = VIRTIO_GPIO_F_IRQ;
  readonly configSize = GPIO_CONFIG_SIZE;
  readonly ngpio: number;
  private readonly svc: GpioService;
  private readonly names: Uint8Array;
  /** Per line: direction, IRQ type, edge latch, level at the last sample, the held eventq buffer. */
  private readonly direction: Uint8Array;
  private readonly irqType: Uint8Array;
  private readonly latched: Uint8Array;
  private readonly level: Uint8Array;
  private readonly eventBuf: (DescriptorChain | null)[];
  /** eventq buffers to hand back: [chain, status], flushed by processQueue(EVENTQ). */
  private eventOut: [DescriptorChain, number][] = [];
  private readonly sampleBuf: Uint32Array;
  private irq = false;
  private readonly c: Record<string, number> = { requests: 0, errors: 0, interrupts: 0, invalidated: 0, eventBad: 0, eventDuplicate: 0, sets: 0 };

  constructor(opts: GpioOptions) {
    super(opts.log);
    const n = opts.names.length;
    if (n < 1 || n > GPIO_MAX_LINES) throw new Error(`gpio: a device has 1..${GPIO_MAX_LINES} lines, the board gives ${n}`);
    this.ngpio = n;
    this.svc = opts.gpio;
    this.names = encodeGpioNames(opts.names);
    this.direction = new Uint8Array(n);
    this.irqType = new Uint8Array(n);
    this.latched = new Uint8Array(n);
    this.level = new Uint8Array(n);
    this.eventBuf = new Array<DescriptorChain | null>(n).fill(null);
    this.sampleBuf = new Uint32Array(n);
    this.resetLines();
  }

  /** Every line back to an input, interrupts off; the service hears of it. */
  private resetLines(): void {
    for (let i = 0; i < this.ngpio; i++) this.discardLine(i, VIRTIO_GPIO_DIRECTION_IN);
    this.eventBuf.fill(null);
    this.eventOut = [];
    this.sample();
  }

  /** SET_DIRECTION NONE / reset: "discard all state information" of the line (§5.18.6.2). */
  private discardLine(i: number, direction: number): void {
    this.direction[i] = direction;
    this.svc.setValue(i, 0);
    this.svc.setDirection(i, direction);
    this.disableIrq(i);
  }

  readConfig(): Uint8Array {
    return encodeGpioConfig(this.ngpio, this.names.length);
  }

  override activate(ctx: import('./device').DeviceContext): void {
    super.activate(ctx);
    this.irq = (ctx.features & VIRTIO_GPIO_F_IRQ) !== 0n;
  }

  /** Samples the lines; edges on lines with an edge interrupt enabled are latched (§5.18.6.2). */
  private sample(): void {
    const s = this.sampleBuf;
    const n = this.svc.sample(s);
    if (n !== this.ngpio) throw new Error(`gpio: the service sampled ${n} lines, the board has ${this.ngpio}`);
    for (let i = 0; i < this.ngpio; i++) {
      const v = s[i]!;
      this.level[i] = v & GPIO_LEVEL;
      if (this.irqType[i] !== VIRTIO_GPIO_IRQ_TYPE_NONE && edgeFires(this.irqType[i]!, v)) this.latched[i] = 1;
    }
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    if (i === REQUESTQ) {
      const more = this.drain(q, budget, (chain) => this.request(chain));
      this.fire();
      return more;
    }
    if (i !== EVENTQ || !this.irq) return false;
    const more = this.drain(q, budget, (chain) => this.arm(chain));
    this.fire();
    return more;
  }

  /** Only the gpio service's own handle concerns this device (the host moved a line). */
  override ownsService(h: number): boolean {
    return h === this.svc.handle;
  }

  override onService(_budget: number): boolean {
    if (!this.ctx) return false;
    this.sample();
    this.fire();
    return false;
  }

  /** Answers one requestq message; returns the used length. */
  private request(chain: DescriptorChain): number {
    guestCheck(chain.readableBytes >= GPIO_REQUEST_BYTES, 'GPIO_NO_REQUEST', 'virtio §5.18.6', `request has ${chain.readableBytes} device-readable bytes, struct virtio_gpio_request needs ${GPIO_REQUEST_BYTES}`);
    guestCheck(chain.writableBytes >= 1, 'GPIO_NO_RESPONSE', 'virtio §5.18.6', 'request has no device-writable byte for the response');
    const r = parseGpioRequest(chain.reader().read(GPIO_REQUEST_BYTES));
    const w = chain.writer();
    this.c['requests']!++;
    if (r.type === VIRTIO_GPIO_MSG_GET_LINE_NAMES) {
      if (r.gpio !== 0 || w.remaining < 1 + this.names.length) return this.fail(w);
      w.writeU8(VIRTIO_GPIO_STATUS_OK);
      w.write(this.names);
      return 1 + this.names.length;
    }
    if (w.remaining < GPIO_RESPONSE_BYTES) return this.fail(w);
    const value = this.execute(r);
    if (value < 0) return this.fail(w);
    w.writeU8(VIRTIO_GPIO_STATUS_OK);
    w.writeU8(value);
    return GPIO_RESPONSE_BYTES;
  }

  /** Writes STATUS_ERR (and a zero value when there is room); returns the used length. */
  private fail(w: ReturnType<DescriptorChain['writer']>): number {
    this.c['errors']!++;
    w.writeU8(VIRTIO_GPIO_STATUS_ERR);
    if (w.remaining < 1) return 1;
    w.writeU8(0);
    return GPIO_RESPONSE_BYTES;
  }

  /** Runs a request on its line: the response value, or -1 for VIRTIO_GPIO_STATUS_ERR. */
  private execute(r: GpioRequest): number {
    const line = r.gpio;
    if (line >= this.ngpio) return -1;
    switch (r.type) {
      case VIRTIO_GPIO_MSG_GET_DIRECTION:
        return this.direction[line]!;
      case VIRTIO_GPIO_MSG_SET_DIRECTION:
        if (r.value === VIRTIO_GPIO_DIRECTION_NONE) {
          this.discardLine(line, VIRTIO_GPIO_DIRECTION_NONE);
          return 0;
        }
        if (r.value !== VIRTIO_GPIO_DIRECTION_IN && r.value !== VIRTIO_GPIO_DIRECTION_OUT) return -1;
        if (this.svc.setDirection(line, r.value) < 0) return -1;
        this.direction[line] = r.value;
        this.sample();
        return 0;
      case VIRTIO_GPIO_MSG_GET_VALUE:
        this.sample();
        return this.level[line]!;
      case VIRTIO_GPIO_MSG_SET_VALUE:
        if (r.value > 1 || this.svc.setValue(line, r.value) < 0) return -1;
        this.c['sets']!++;
        this.sample();
        return 0;
      case VIRTIO_GPIO_MSG_SET_IRQ_TYPE:
        return this.setIrqType(line, r.value);
      default:
        return -1;
    }
  }

  /** SET_IRQ_TYPE (§5.18.6.1 Set IRQ Type): enable with a trigger, or disable with NONE. */
  private setIrqType(line: number, type: number): number {
    if (!this.irq || !IRQ_TYPES.has(type) || this.direction[line] === VIRTIO_GPIO_DIRECTION_OUT) return -1;
    const cur = this.irqType[line]!;
    if (type === VIRTIO_GPIO_IRQ_TYPE_NONE) {
      this.disableIrq(line);
      return 0;
    }
    if (cur === type) return 0;
    if (cur !== VIRTIO_GPIO_IRQ_TYPE_NONE) return -1; // a trigger change needs NONE first (§5.18.6.1, driver requirements)
    this.sample(); // edges before this point are not this interrupt's: latch from now on
    this.irqType[line] = type;
    this.latched[line] = 0;
    return 0;
  }

  /** Interrupt off: the latch is discarded and a held buffer goes back INVALID (§5.18.7.1). */
  private disableIrq(line: number): void {
    this.irqType[line] = VIRTIO_GPIO_IRQ_TYPE_NONE;
    this.latched[line] = 0;
    const held = this.eventBuf[line];
    if (held) {
      this.eventBuf[line] = null;
      this.hand(held, VIRTIO_GPIO_IRQ_STATUS_INVALID);
    }
  }

  /** An eventq buffer pair: the driver unmasks its line (§5.18.7). Returns null (held or queued to go back). */
  private arm(chain: DescriptorChain): number | null {
    guestCheck(chain.readableBytes >= GPIO_IRQ_REQUEST_BYTES, 'GPIO_NO_IRQ_REQUEST', 'virtio §5.18.7', `eventq buffer has ${chain.readableBytes} device-readable bytes, struct virtio_gpio_irq_request needs ${GPIO_IRQ_REQUEST_BYTES}`);
    guestCheck(chain.writableBytes >= 1, 'GPIO_NO_IRQ_RESPONSE', 'virtio §5.18.7', 'eventq buffer has no device-writable byte for the status');
    const b = chain.reader().read(GPIO_IRQ_REQUEST_BYTES);
    const line = b[0]! | (b[1]! << 8);
    if (line >= this.ngpio) {
      this.c['eventBad']!++;
      return this.answerNow(chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
    }
    if (this.eventBuf[line]) {
      this.c['eventDuplicate']!++;
      return this.answerNow(chain, VIRTIO_GPIO_IRQ_STATUS_INVALID);
    }
    if (this.irqType[line] === VIRTIO_GPIO_IRQ_TYPE_NONE) {
      this.c['invalidated']!++;
      return this.answerNow(chain, VIRTIO_GPIO_IRQ_STATUS_INVALID); // unmasked without being enabled
    }
    this.eventBuf[line] = chain;
    return null;
  }

  private answerNow(chain: DescriptorChain, status: number): number {
    chain.writer().writeU8(status);
    return 1;
  }

  /** Queues a held eventq buffer to go back with `status` (flushed on the eventq by `fire`). */
  private hand(chain: DescriptorChain, status: number): void {
    if (status === VIRTIO_GPIO_IRQ_STATUS_INVALID) this.c['invalidated']!++;
    this.eventOut.push([chain, status]);
  }

  /** Delivers every interrupt that is enabled, unmasked and active, and the buffers waiting to go back. */
  private fire(): void {
    const q = this.ctx?.queue(EVENTQ);
    if (!q || !this.irq) {
      this.eventOut = [];
      return;
    }
    for (let i = 0; i < this.ngpio; i++) {
      const held = this.eventBuf[i];
      if (!held) continue;
      const t = this.irqType[i]!;
      if (this.latched[i] || levelActive(t, this.level[i]!)) {
        this.latched[i] = 0;
        this.eventBuf[i] = null; // masked until the driver queues it again
        this.c['interrupts']!++;
        this.eventOut.push([held, VIRTIO_GPIO_IRQ_STATUS_VALID]);
      }
    }
    this.flushEvents(q);
  }

  private flushEvents(q: Virtqueue): void {
    for (const [chain, status] of this.eventOut) {
      chain.writer().writeU8(status);
      q.pushUsed(chain, 1);
    }
    this.eventOut = [];
  }

  override queueReset(i: number): void {
    if (i !== EVENTQ) return;
    this.eventBuf.fill(null);
    this.eventOut = [];
  }

  override reset(): void {
    super.reset();
    this.irq = false;
    this.resetLines();
  }

  override counters(): Record<string, number> {
    let armed = 0;
    for (const b of this.eventBuf) if (b) armed++;
    return { ...this.c, armed };
  }
}
