/**
 * virtio-msg over the window's FIFOs: the bus (GET_DEVICES, PING), the per-device transport state
 * machine (virtio 1.3 §2.1, §3.1; virtio-msg §Device Initialization) and the dispatcher.
 *
 * The dispatcher is the one place where guest faults are caught. A malformed message is dropped and
 * counted; a queue-level violation marks that device DEVICE_NEEDS_RESET and sends EVENT_CONFIG; a
 * device model that throws is stopped the same way. Nothing a frontend writes can throw out of
 * `service()`, and no device's fault touches another device.
 */
import type { DeviceContext, VirtioDevice } from '../devices/device';
import { GuestProtocolError } from '../errors';
import type { Logger } from '../hal';
import { LOG_ERROR, LOG_INFO, LOG_WARN } from '../hal';
import {
  ACKNOWLEDGE,
  DEVICE_NEEDS_RESET,
  DRIVER,
  DRIVER_OK,
  FAILED,
  FEATURES_OK,
  TRANSPORT_FEATURES,
  VIRTIO_F_RING_RESET,
  VIRTIO_F_VERSION_1,
} from '../virtio';
import { openQueue, validateQueueConfig } from '../virtqueue/format';
import type { QueueAddresses, Virtqueue } from '../virtqueue/queue';
import type { WindowLayout } from '../window/layout';
import type { GuestWindow } from '../window/window';
import { FifoConsumer, FifoProducer } from './fifo';
import * as P from './protocol';

/** Limits of one transport instance. */
export interface TransportLimits {
  /** Chains a queue may consume per service pass (fairness between devices). */
  budgetPerQueue: number;
  /** Messages read from the driver→device FIFO per service pass. */
  messagesPerPass: number;
}

/** Host facilities the transport needs. */
export interface TransportHost {
  fence(): void;
  raise(): void;
  log: Logger;
}

interface QueueState {
  size: number;
  addrs: QueueAddresses;
  enabled: boolean;
  live: Virtqueue | null;
}

/** The transport's view of one device. */
class DeviceSlot {
  status = 0;
  driverFeatures = 0n;
  /** The driver wrote feature bits beyond 64: FEATURES_OK will be refused. */
  unknownFeatureBits = false;
  configGeneration = 0;
  readonly queues: QueueState[];
  readonly kicked: Uint8Array;
  readonly pendingUsedEvent: Uint8Array;
  pendingConfigEvent = false;
  /** Some `kicked` bit may be set (set with every bit; the pass that runs this slot clears it). */
  anyKicked = false;
  /** Some pending-event bit may be set (set with every bit; cleared once this slot's events went out). */
  anyEvents = false;
  readonly counters: Record<string, number> = {};
  /** The per-pass counters as numeric fields (merged into `counters` by `countersNow()`). */
  notifies = 0;
  usedEvents = 0;
  lastViolation = '';

  constructor(
    readonly devNum: number,
    readonly device: VirtioDevice,
  ) {
    this.queues = [];
    for (let i = 0; i < device.numQueues; i++) this.queues.push(emptyQueue());
    this.kicked = new Uint8Array(device.numQueues);
    this.pendingUsedEvent = new Uint8Array(device.numQueues);
  }

  get needsReset(): boolean {
    return (this.status & DEVICE_NEEDS_RESET) !== 0;
  }
  get live(): boolean {
    return (this.status & (DRIVER_OK | DEVICE_NEEDS_RESET | FAILED)) === DRIVER_OK;
  }
  count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }
  countersNow(): Record<string, number> {
    return withCounts({ ...this.counters }, ['notifies', this.notifies], ['usedEvents', this.usedEvents]);
  }
}

/** Adds the non-zero numeric counters to `c` (a counter that never counted does not appear, as with `count()`). */
function withCounts(c: Record<string, number>, ...fields: [string, number][]): Record<string, number> {
  for (const [k, v] of fields) if (v) c[k] = v;
  return c;
}

/** `runQueue`'s queue index for a device's `onService`. */
const SERVICE = -1;

function emptyQueue(): QueueState {
  return { size: 0, addrs: { descLo: 0, descHi: 0, driverLo: 0, driverHi: 0, deviceLo: 0, deviceHi: 0 }, enabled: false, live: null };
}

/** The backend end of one window: a virtio-msg bus with its devices. */
export class Transport {
  private readonly rx: FifoConsumer;
  private readonly tx: FifoProducer;
  private readonly slots: DeviceSlot[];
  /** Private copies of one message each way, as bytes and as words over the same memory (FIFO copies are by word). */
  private readonly inWords: Uint32Array;
  private readonly inBuf: Uint8Array;
  private readonly outWords = new Uint32Array((P.HEADER_BYTES + 256) >>> 2);
  private readonly outBuf = new Uint8Array(this.outWords.buffer);
  private readonly decoder: P.MessageDecoder;
  private readonly encoder = new P.MessageEncoder(this.outBuf);
  private readonly budgetPerQueue: number;
  /** The device whose code is running (for faults the runtime reports after stopping a call). */
  private running: DeviceSlot | null = null;
  private rr = 0;
  /** Bus-wide counters (per-device ones live in each slot); the per-pass ones are numeric fields. */
  readonly counters: Record<string, number> = {};
  private messages = 0;
  private sent = 0;
  private doorbellsOut = 0;
  /**
   * Set with every pending-event bit (EVENT_CONFIG, EVENT_USED) and cleared once all went out, so a
   * pass with nothing to announce does not look at every device's bits: the per-pass cost of the
   * transport stays that of the messages it reads (a doorbell round trip is mostly this pass).
   */
  private eventsQueued = false;
  /** Set with every `kicked` bit; a pass runs queues only when some queue was kicked. */
  private kickedAny = false;

  constructor(
    private readonly win: GuestWindow,
    layout: WindowLayout,
    devices: VirtioDevice[],
    private readonly host: TransportHost,
    private readonly limits: TransportLimits,
  ) {
    this.rx = new FifoConsumer(win, layout.fifoD2V, layout.slotSize);
    this.tx = new FifoProducer(win, layout.fifoV2D, layout.slotSize);
    this.inWords = new Uint32Array(layout.slotSize >>> 2);
    this.inBuf = new Uint8Array(this.inWords.buffer);
    this.decoder = new P.MessageDecoder(this.inBuf, layout.slotSize);
    this.budgetPerQueue = limits.budgetPerQueue;
    this.slots = devices.map((d, i) => new DeviceSlot(i, d));
  }

  private count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }

  /**
   * One pass of work after a doorbell, a timer or a service event: read messages, run kicked queues
   * within their budgets, send events, ring the frontend once. Returns true if work is left over.
   */
  service(): boolean {
    this.running = null;
    this.flushPendingEvents();
    let more = this.readMessages();
    more = this.runQueues() || more;
    this.flushPendingEvents();
    this.doorbell();
    return more;
  }

  /** A backing service reported input or room: let every live device look. */
  serviceEvent(): boolean {
    this.running = null;
    let more = false;
    for (const slot of this.slots) {
      if (!slot.live) continue;
      more = this.runQueue(slot, SERVICE) || more;
      this.flushUsed(slot);
    }
    more = this.service() || more;
    return more;
  }

  /**
   * The runtime stopped the last call (watchdog or memory limit): blame the device that was running,
   * then finish the interrupted pass for the others (their kicks would otherwise wait for the next
   * doorbell). Returns true if work is left, like `service()`.
   */
  fault(kind: string, detail: string): boolean {
    const slot = this.running;
    this.count(`fault.${kind}`);
    if (slot) {
      this.quarantine(slot);
      this.running = null;
      this.markNeedsReset(slot, `device model stopped by the runtime (${kind}): ${detail}`, `fault.${kind}`);
    } else this.host.log(LOG_ERROR, `runtime fault (${kind}) outside any device: ${detail}`);
    // The stopped call never reached the end of its pass: the EVENT_CONFIG and the other devices' work go
    // now (the pass may have been stopped after it cleared the summary flags, so look at every bit).
    this.kickedAny = true;
    this.eventsQueued = true;
    for (let k = 0; k < this.slots.length; k++) {
      this.slots[k]!.anyKicked = true;
      this.slots[k]!.anyEvents = true;
    }
    return this.service();
  }

  /**
   * A device model that threw or was stopped is untrusted: drop what it holds (its `reset()`) before
   * anything else allocates, so a model that exhausted memory gives it back and the partition can
   * report the fault and keep serving the others. The driver still sees NEEDS_RESET and must reset.
   */
  private quarantine(slot: DeviceSlot): void {
    try {
      slot.device.reset();
    } catch {
      // the model is already being stopped; NEEDS_RESET keeps it out of every later pass
    }
  }

  /** Clean shutdown: every device makes its acknowledged data durable. */
  stop(): void {
    for (const slot of this.slots) {
      try {
        slot.device.stop();
      } catch (e) {
        this.host.log(LOG_ERROR, `${slot.device.name}${slot.devNum}: stop failed: ${String(e)}`);
      }
    }
  }

  /** Counters and device states, for `bulkhead.stats()` and the simulator. */
  stats() {
    return {
      bus: withCounts({ ...this.counters }, ['messages', this.messages], ['sent', this.sent], ['doorbellsOut', this.doorbellsOut]),
      devices: this.slots.map((s) => ({
        devNum: s.devNum,
        type: s.device.name,
        status: s.status,
        needsReset: s.needsReset,
        lastViolation: s.lastViolation,
        counters: { ...s.countersNow(), ...s.device.counters() },
        queues: s.queues.map((q) => ({ size: q.size, enabled: q.enabled, live: q.live !== null, inFlight: q.live?.inFlightCount ?? 0 })),
      })),
    };
  }

  // ---- messages -------------------------------------------------------------------------------

  private readMessages(): boolean {
    let n = this.rx.ready();
    if (n < 0) {
      this.count('violation.FIFO_HEAD');
      this.host.log(LOG_WARN, 'bus: driver→device FIFO head runs ahead of its size; discarding (window-layout FIFOs)');
      this.rx.resync();
      return false;
    }
    if (n === 0) return false;
    this.host.fence(); // slots after head
    let handled = 0;
    let blocked = false;
    while (n > 0 && handled < this.limits.messagesPerPass) {
      // Backpressure: take a message only when its answer has room (docs/window-layout.md).
      if (this.tx.space() <= 0) {
        this.count('backpressure');
        blocked = true;
        break;
      }
      this.rx.readNext(this.inWords);
      n--;
      handled++;
      this.messages++;
      const m = this.decoder.decode();
      if (!m) {
        this.drop(null, 'BAD_SIZE', 'msg_size outside 8..slot size');
        continue;
      }
      this.dispatch(m);
    }
    this.host.fence(); // finish reading slots before handing them back
    this.rx.publishTail();
    // Blocked on a full device→driver FIFO: not work we can do. The frontend rings us when it frees
    // slots; reporting "more" here would spin the backend for as long as the frontend does not drain.
    if (blocked) return false;
    if (n > 0) return true;
    return this.rx.ready() !== 0;
  }

  private drop(slot: DeviceSlot | null, code: string, detail: string): void {
    this.count(`dropped.${code}`);
    if (slot) slot.count(`dropped.${code}`);
    this.host.log(LOG_WARN, `bus: dropped message: ${code}: ${detail} (virtio-msg §Error Signaling)`);
  }

  private dispatch(m: P.Message): void {
    if (m.type & P.TYPE_RESPONSE) return this.drop(null, 'UNEXPECTED_RESPONSE', `msg_id 0x${m.msgId.toString(16)}`);
    if (m.type & P.TYPE_BUS) return this.dispatchBus(m);
    const slot = this.slots[m.devNum];
    if (!slot) return this.drop(null, 'UNKNOWN_DEVICE', `dev_num ${m.devNum}`);
    const fixed = P.REQUEST_PAYLOAD[m.msgId];
    if (fixed === undefined) return this.drop(slot, 'UNKNOWN_MSG_ID', `msg_id 0x${m.msgId.toString(16)}`);
    if (m.size - P.HEADER_BYTES < fixed) return this.drop(slot, 'TRUNCATED', `${P.MSG_NAMES[m.msgId]} with ${m.size - P.HEADER_BYTES} payload bytes < ${fixed}`);
    const isEvent = m.msgId >= 0x40;
    if (isEvent !== (m.token === 0)) return this.drop(slot, 'BAD_TOKEN', `${P.MSG_NAMES[m.msgId]} with token ${m.token}`);
    try {
      this.handleTransport(slot, m);
    } catch (e) {
      if (!(e instanceof GuestProtocolError)) throw e;
      this.drop(slot, e.code, e.message);
    }
  }

  private dispatchBus(m: P.Message): void {
    const fixed = P.BUS_REQUEST_PAYLOAD[m.msgId];
    if (fixed === undefined) return this.drop(null, 'UNKNOWN_BUS_MSG_ID', `bus msg_id 0x${m.msgId.toString(16)}`);
    if (m.size - P.HEADER_BYTES < fixed) return this.drop(null, 'TRUNCATED', `bus msg 0x${m.msgId.toString(16)}`);
    if (m.token === 0 || m.devNum !== 0) return this.drop(null, 'BAD_HEADER', `bus request with token ${m.token} dev_num ${m.devNum}`);
    if (m.msgId === P.BUS_MSG_PING) {
      this.answer(m, 4);
      this.outWords[2] = this.inWords[2]!; // the payload word, as it came
      return this.send();
    }
    const p = m.payload;
    // GET_DEVICES: offset and count are multiples of 8 (virtio-msg §BUS_MSG_GET_DEVICES).
    const offset = p.getUint16(0, true);
    const want = p.getUint16(2, true);
    if (offset % 8 || want % 8) return this.drop(null, 'GET_DEVICES_ALIGN', `offset ${offset} count ${want}`);
    const maxCount = (this.outBuf.length - P.HEADER_BYTES - 6) * 8;
    const count = Math.min(want, maxCount);
    const bytes = count / 8;
    const out = this.answer(m, 6 + bytes);
    out.setUint16(0, offset, true);
    out.setUint16(2, count, true);
    out.setUint16(4, offset + count < this.slots.length ? offset + count : 0, true);
    for (let i = 0; i < bytes; i++) {
      let b = 0;
      for (let bit = 0; bit < 8; bit++) if (offset + i * 8 + bit < this.slots.length) b |= 1 << bit;
      out.setUint8(6 + i, b);
    }
    this.send();
  }

  /** Starts an answer to request `m` in the scratch buffer; `send()` pushes it. */
  private answer(m: P.Message, payloadBytes: number): DataView {
    return this.encoder.header(m.type | P.TYPE_RESPONSE, m.msgId, m.devNum, m.token, payloadBytes);
  }

  private send(): void {
    const size = this.outBuf[6]! | (this.outBuf[7]! << 8);
    this.tx.push(this.outWords, size);
    this.sent++;
  }

  private refuse(slot: DeviceSlot, m: P.Message, why: string): void {
    slot.count(`refused.${P.MSG_NAMES[m.msgId]}`);
    this.host.log(LOG_WARN, `${slot.device.name}${slot.devNum}: refused ${P.MSG_NAMES[m.msgId]}: ${why}`);
  }

  private handleTransport(slot: DeviceSlot, m: P.Message): void {
    const p = m.payload;
    const dev = slot.device;
    switch (m.msgId) {
      case P.VIRTIO_MSG_GET_DEVICE_INFO: {
        const out = this.answer(m, P.GET_DEVICE_INFO_ANSWER);
        out.setUint32(0, dev.deviceId, true);
        out.setUint32(4, P.VENDOR_ID, true);
        out.setUint32(8, 64, true);
        out.setUint32(12, dev.configSize, true);
        out.setUint32(16, dev.numQueues, true);
        out.setUint16(20, 0, true);
        out.setUint16(22, 0, true);
        return this.send();
      }
      case P.VIRTIO_MSG_GET_DEVICE_FEATURES: {
        const index = p.getUint32(0, true);
        const num = p.getUint32(4, true);
        if (num > (this.outBuf.length - P.HEADER_BYTES - 8) / 4) return this.drop(slot, 'TOO_LARGE', `GET_DEVICE_FEATURES of ${num} blocks`);
        const offered = dev.features | TRANSPORT_FEATURES;
        const out = this.answer(m, 8 + 4 * num);
        out.setUint32(0, index, true);
        out.setUint32(4, num, true);
        for (let i = 0; i < num; i++) {
          const block = index + i;
          out.setUint32(8 + 4 * i, block < 2 ? Number((offered >> BigInt(32 * block)) & 0xffffffffn) : 0, true);
        }
        return this.send();
      }
      case P.VIRTIO_MSG_SET_DRIVER_FEATURES: {
        const index = p.getUint32(0, true);
        const num = p.getUint32(4, true);
        if (p.byteLength < 8 + 4 * num) return this.drop(slot, 'TRUNCATED', `SET_DRIVER_FEATURES of ${num} blocks in ${p.byteLength} bytes`);
        this.answer(m, 0);
        this.send();
        if ((slot.status & (DRIVER | FEATURES_OK | DEVICE_NEEDS_RESET)) !== DRIVER) return this.refuse(slot, m, `status 0x${slot.status.toString(16)}: features are set between DRIVER and FEATURES_OK (virtio §3.1.1)`);
        for (let i = 0; i < num; i++) {
          const block = index + i;
          const bits = p.getUint32(8 + 4 * i, true);
          if (block < 2) {
            const shift = BigInt(32 * block);
            slot.driverFeatures = (slot.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(bits) << shift);
          } else if (bits !== 0) slot.unknownFeatureBits = true;
        }
        return;
      }
      case P.VIRTIO_MSG_GET_CONFIG: {
        const off = p.getUint32(0, true);
        const len = p.getUint32(4, true);
        const ok = len <= this.outBuf.length - P.HEADER_BYTES - 12 && off + len <= dev.configSize;
        const out = this.answer(m, 12 + (ok ? len : 0));
        out.setUint32(0, slot.configGeneration, true);
        out.setUint32(4, off, true);
        out.setUint32(8, ok ? len : 0, true);
        if (ok) this.outBuf.set(dev.readConfig().subarray(off, off + len), P.HEADER_BYTES + 12);
        else this.refuse(slot, m, `[${off} +${len}] outside config space of ${dev.configSize}`);
        return this.send();
      }
      case P.VIRTIO_MSG_SET_CONFIG: {
        const gen = p.getUint32(0, true);
        const off = p.getUint32(4, true);
        const len = p.getUint32(8, true);
        if (p.byteLength < 12 + len) return this.drop(slot, 'TRUNCATED', `SET_CONFIG of ${len} bytes in ${p.byteLength}`);
        let why = '';
        if (gen !== slot.configGeneration) why = `stale generation ${gen} (now ${slot.configGeneration})`;
        else if (off + len > dev.configSize || len > this.outBuf.length - P.HEADER_BYTES - 12) why = `[${off} +${len}] outside config space`;
        else if (slot.needsReset) why = 'device needs reset';
        else if (!this.runDevice(slot, () => dev.writeConfig(off, new Uint8Array(p.buffer, p.byteOffset + 12, len).slice()))) why = 'field not writable';
        const okLen = why ? 0 : len;
        const out = this.answer(m, 12 + okLen);
        out.setUint32(0, slot.configGeneration, true);
        out.setUint32(4, off, true);
        out.setUint32(8, okLen, true);
        if (okLen) this.outBuf.set(dev.readConfig().subarray(off, off + len), P.HEADER_BYTES + 12);
        if (why) this.refuse(slot, m, why);
        return this.send();
      }
      case P.VIRTIO_MSG_GET_DEVICE_STATUS: {
        this.answer(m, 4).setUint32(0, slot.status, true);
        return this.send();
      }
      case P.VIRTIO_MSG_SET_DEVICE_STATUS: {
        this.setStatus(slot, m, p.getUint32(0, true));
        this.answer(m, 4).setUint32(0, slot.status, true);
        return this.send();
      }
      case P.VIRTIO_MSG_GET_VQUEUE: {
        const i = p.getUint32(0, true);
        const q = i < slot.queues.length ? slot.queues[i]! : null;
        const out = this.answer(m, P.GET_VQUEUE_ANSWER);
        out.setUint32(0, i, true);
        out.setUint32(4, q ? dev.maxQueueSize : 0, true);
        out.setUint32(8, q ? q.size : 0, true);
        out.setUint32(12, 0, true);
        const a = q?.addrs;
        out.setUint32(16, a ? a.descLo : 0, true);
        out.setUint32(20, a ? a.descHi : 0, true);
        out.setUint32(24, a ? a.driverLo : 0, true);
        out.setUint32(28, a ? a.driverHi : 0, true);
        out.setUint32(32, a ? a.deviceLo : 0, true);
        out.setUint32(36, a ? a.deviceHi : 0, true);
        return this.send();
      }
      case P.VIRTIO_MSG_SET_VQUEUE: {
        this.answer(m, 0);
        this.send();
        return this.setQueue(slot, m);
      }
      case P.VIRTIO_MSG_RESET_VQUEUE: {
        this.answer(m, 0);
        this.send();
        const i = p.getUint32(0, true);
        if (!(slot.driverFeatures & VIRTIO_F_RING_RESET) || !(slot.status & FEATURES_OK)) return this.refuse(slot, m, 'VIRTIO_F_RING_RESET not negotiated');
        if (i >= slot.queues.length) return this.refuse(slot, m, `queue ${i} does not exist`);
        slot.queues[i] = emptyQueue();
        slot.kicked[i] = 0;
        slot.pendingUsedEvent[i] = 0;
        this.runDevice(slot, () => dev.queueReset(i));
        return;
      }
      case P.VIRTIO_MSG_GET_SHM: {
        const out = this.answer(m, P.GET_SHM_ANSWER);
        out.setUint32(0, p.getUint32(0, true), true);
        out.setUint32(4, 0, true);
        out.setUint32(8, 0, true);
        return this.send();
      }
      case P.VIRTIO_MSG_EVENT_AVAIL: {
        const i = p.getUint32(0, true);
        const q = i < slot.queues.length ? slot.queues[i]! : null;
        if (!q || !q.live || !slot.live) {
          slot.count('dropped.NOTIFY_NOT_READY');
          this.count('dropped.NOTIFY_NOT_READY');
          return;
        }
        slot.notifies++;
        this.kick(slot, i);
        return;
      }
      default:
        return this.drop(slot, 'UNKNOWN_MSG_ID', `msg_id 0x${m.msgId.toString(16)}`);
    }
  }

  // ---- status and queues ----------------------------------------------------------------------

  private setStatus(slot: DeviceSlot, m: P.Message, value: number): void {
    if (value === 0) return this.resetDevice(slot);
    if (slot.needsReset) return this.refuse(slot, m, 'device needs reset: only a write of 0 is accepted');
    if (value > 0xff || (value & DEVICE_NEEDS_RESET)) return this.refuse(slot, m, `invalid status 0x${value.toString(16)}`);
    if ((value & slot.status) !== slot.status) return this.refuse(slot, m, `driver may not clear status bits (0x${slot.status.toString(16)} → 0x${value.toString(16)}; virtio §2.1.1)`);
    let next = value;
    const added = value & ~slot.status;
    if (added & DRIVER && !(next & ACKNOWLEDGE)) {
      this.refuse(slot, m, 'DRIVER without ACKNOWLEDGE (virtio §3.1.1)');
      return;
    }
    if (added & FEATURES_OK) {
      const why = this.featureProblem(slot);
      if (why) {
        next &= ~(FEATURES_OK | DRIVER_OK);
        this.refuse(slot, m, `FEATURES_OK refused: ${why}`);
      }
    }
    if (added & DRIVER_OK && !(next & FEATURES_OK)) {
      next &= ~DRIVER_OK;
      this.refuse(slot, m, 'DRIVER_OK without FEATURES_OK (virtio §3.1.1)');
    }
    const goingLive = (next & DRIVER_OK) !== 0 && (slot.status & DRIVER_OK) === 0;
    slot.status = next;
    if (goingLive && !(next & FAILED)) this.activate(slot);
  }

  private featureProblem(slot: DeviceSlot): string {
    if ((slot.status & (ACKNOWLEDGE | DRIVER)) !== (ACKNOWLEDGE | DRIVER)) return 'ACKNOWLEDGE and DRIVER not set';
    const offered = slot.device.features | TRANSPORT_FEATURES;
    const f = slot.driverFeatures;
    if (slot.unknownFeatureBits || (f & ~offered) !== 0n) return `features 0x${(f & ~offered).toString(16)} were not offered (virtio §2.2.1)`;
    if (!(f & VIRTIO_F_VERSION_1)) return 'VIRTIO_F_VERSION_1 is required';
    if (!this.runDevice(slot, () => slot.device.acceptFeatures(f))) return 'device-specific feature dependencies not met';
    return '';
  }

  private setQueue(slot: DeviceSlot, m: P.Message): void {
    const p = m.payload;
    const i = p.getUint32(0, true);
    const size = p.getUint32(8, true);
    if (slot.needsReset || !(slot.status & FEATURES_OK)) return this.refuse(slot, m, `status 0x${slot.status.toString(16)}: queues are set up after FEATURES_OK`);
    if (i >= slot.queues.length) return this.refuse(slot, m, `queue ${i} does not exist`);
    if (p.getUint32(4, true) !== 0 || p.getUint32(12, true) !== 0) return this.refuse(slot, m, 'reserved fields not zero');
    const q = slot.queues[i]!;
    if (q.enabled) return this.refuse(slot, m, `queue ${i} is enabled: reset the device or the queue first`);
    const addrs: QueueAddresses = {
      descLo: p.getUint32(16, true),
      descHi: p.getUint32(20, true),
      driverLo: p.getUint32(24, true),
      driverHi: p.getUint32(28, true),
      deviceLo: p.getUint32(32, true),
      deviceHi: p.getUint32(36, true),
    };
    try {
      validateQueueConfig(this.win, slot.driverFeatures, size, slot.device.maxQueueSize, addrs);
    } catch (e) {
      if (!(e instanceof GuestProtocolError)) throw e;
      slot.count(`violation.${e.code}`);
      return this.refuse(slot, m, e.message);
    }
    slot.queues[i] = { size, addrs, enabled: true, live: null };
    if (slot.live) this.makeLive(slot, i);
  }

  private makeLive(slot: DeviceSlot, i: number): void {
    const q = slot.queues[i]!;
    q.live = openQueue(this.win, slot.driverFeatures, i, q.size, slot.device.maxQueueSize, q.addrs, this.host.fence);
    // A driver may have made buffers available before going live without a notify reaching us.
    this.kick(slot, i);
  }

  /** Marks queue `i` of `slot` for the next pass, with the summary flags `runQueues` looks at first. */
  private kick(slot: DeviceSlot, i: number): void {
    slot.kicked[i] = 1;
    slot.anyKicked = true;
    this.kickedAny = true;
  }

  /** Queues EVENT_CONFIG for `slot`, with the summary flags `flushPendingEvents` looks at first. */
  private queueConfigEvent(slot: DeviceSlot): void {
    slot.pendingConfigEvent = true;
    slot.anyEvents = true;
    this.eventsQueued = true;
  }

  /** Queues EVENT_USED for queue `i` of `slot`, with the same summary flags. */
  private queueUsedEvent(slot: DeviceSlot, i: number): void {
    slot.pendingUsedEvent[i] = 1;
    slot.anyEvents = true;
    this.eventsQueued = true;
  }

  private activate(slot: DeviceSlot): void {
    for (let i = 0; i < slot.queues.length; i++) if (slot.queues[i]!.enabled) this.makeLive(slot, i);
    const ctx: DeviceContext = {
      features: slot.driverFeatures,
      queue: (i) => (i < slot.queues.length ? slot.queues[i]!.live : null),
      configChanged: () => {
        slot.configGeneration = (slot.configGeneration + 1) >>> 0;
        this.queueConfigEvent(slot);
      },
      kick: (i) => {
        if (i < slot.kicked.length) this.kick(slot, i);
      },
    };
    this.runDevice(slot, () => slot.device.activate(ctx));
    this.host.log(LOG_INFO, `${slot.device.name}${slot.devNum}: DRIVER_OK, features 0x${slot.driverFeatures.toString(16)}`);
  }

  private resetDevice(slot: DeviceSlot): void {
    slot.status = 0;
    slot.driverFeatures = 0n;
    slot.unknownFeatureBits = false;
    for (let i = 0; i < slot.queues.length; i++) slot.queues[i] = emptyQueue();
    slot.kicked.fill(0);
    slot.pendingUsedEvent.fill(0);
    slot.pendingConfigEvent = false;
    slot.count('resets');
    this.runDevice(slot, () => slot.device.reset());
  }

  /** Queue- or device-level violation: DEVICE_NEEDS_RESET and EVENT_CONFIG (virtio §2.1.2). */
  private markNeedsReset(slot: DeviceSlot, why: string, code: string): void {
    slot.count(`violation.${code}`);
    this.count(`violation.${code}`);
    slot.lastViolation = why;
    this.host.log(LOG_WARN, `${slot.device.name}${slot.devNum}: DEVICE_NEEDS_RESET: ${why}`);
    if (slot.needsReset) return;
    slot.status |= DEVICE_NEEDS_RESET;
    slot.kicked.fill(0);
    slot.pendingUsedEvent.fill(0);
    this.queueConfigEvent(slot);
  }

  /** Runs device code; guest faults and device-model exceptions stop only this device. */
  private runDevice<T>(slot: DeviceSlot, fn: () => T): T | false {
    this.running = slot;
    try {
      const r = fn();
      this.running = null;
      return r;
    } catch (e) {
      this.deviceFailed(slot, e);
      return false;
    }
  }

  /**
   * `runDevice` of the per-pass calls without a closure per call: `processQueue(i)`, or `onService`
   * when `i` is SERVICE.
   */
  private runQueue(slot: DeviceSlot, i: number): boolean {
    this.running = slot;
    try {
      const b = this.budgetPerQueue;
      const r = i === SERVICE ? slot.device.onService(b) : slot.device.processQueue(i, b);
      this.running = null;
      return r;
    } catch (e) {
      this.deviceFailed(slot, e);
      return false;
    }
  }

  /** What `runDevice` does with an exception: a guest fault or a device-model failure of this device only. */
  private deviceFailed(slot: DeviceSlot, e: unknown): void {
    if (e instanceof GuestProtocolError) {
      this.running = null;
      this.markNeedsReset(slot, e.message, e.code);
    } else {
      this.quarantine(slot); // first: an out-of-memory model (QuickJS throws null) frees its memory here
      this.running = null;
      const detail = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
      this.host.log(LOG_ERROR, `${slot.device.name}${slot.devNum}: device model threw: ${detail}`);
      this.markNeedsReset(slot, `device model threw: ${e instanceof Error ? e.message : String(e)}`, 'DEVICE_MODEL_THREW');
    }
  }

  private runQueues(): boolean {
    if (!this.kickedAny) return false;
    this.kickedAny = false; // set again below for a queue with work left, and by ctx.kick
    let more = false;
    const n = this.slots.length;
    for (let k = 0; k < n; k++) {
      const slot = this.slots[(this.rr + k) % n]!;
      if (!slot.anyKicked || !slot.live) continue;
      slot.anyKicked = false; // set again for a queue with work left, and by ctx.kick
      for (let i = 0; i < slot.kicked.length; i++) {
        if (!slot.kicked[i]) continue;
        slot.kicked[i] = 0;
        if (!slot.queues[i]!.live) continue;
        const left = this.runQueue(slot, i);
        if (left && slot.live) {
          this.kick(slot, i);
          more = true;
        }
      }
      // Work left, or a device kicked one of its own queues while serving another (ctx.kick): next pass.
      if (slot.anyKicked && slot.live) more = true;
      this.flushUsed(slot);
    }
    this.rr = n > 1 ? (this.rr + 1) % n : 0;
    return more;
  }

  /** Publishes used entries of every live queue and queues EVENT_USED where the driver wants one. */
  private flushUsed(slot: DeviceSlot): void {
    if (!slot.live) return;
    for (let i = 0; i < slot.queues.length; i++) {
      const live = slot.queues[i]!.live;
      if (!live) continue;
      try {
        if (live.publishUsed()) this.queueUsedEvent(slot, i);
      } catch (e) {
        if (!(e instanceof GuestProtocolError)) throw e;
        this.markNeedsReset(slot, e.message, e.code);
        return;
      }
    }
  }

  // ---- device → driver ------------------------------------------------------------------------

  /**
   * Sends pending events while the FIFO has room. Events that find it full stay pending (one bit per
   * queue, so memory stays bounded); the frontend rings us when it frees slots of a full FIFO.
   */
  private flushPendingEvents(): void {
    if (!this.eventsQueued) return;
    let space = this.tx.space();
    if (space < 0) {
      this.count('violation.FIFO_TAIL'); // an impossible tail: treat the FIFO as full until it is sane
      return;
    }
    let deferred = false;
    const slots = this.slots;
    for (let k = 0; k < slots.length; k++) {
      const slot = slots[k]!;
      if (!slot.anyEvents) continue;
      slot.anyEvents = false;
      if (slot.pendingConfigEvent) {
        if (space === 0) {
          this.count('eventsDeferred');
          deferred = true;
          slot.anyEvents = true;
          continue;
        }
        const out = this.encoder.header(0, P.VIRTIO_MSG_EVENT_CONFIG, slot.devNum, 0, 16);
        out.setUint32(0, slot.status, true);
        out.setUint32(4, slot.configGeneration, true);
        out.setUint32(8, 0, true);
        out.setUint32(12, 0, true);
        this.send();
        space--;
        slot.pendingConfigEvent = false;
      }
      for (let i = 0; i < slot.pendingUsedEvent.length; i++) {
        if (!slot.pendingUsedEvent[i]) continue;
        if (space === 0) {
          this.count('eventsDeferred');
          deferred = true;
          slot.anyEvents = true;
          break;
        }
        this.encoder.header(0, P.VIRTIO_MSG_EVENT_USED, slot.devNum, 0, 4).setUint32(0, i, true);
        this.send();
        space--;
        slot.pendingUsedEvent[i] = 0;
        slot.usedEvents++;
      }
    }
    this.eventsQueued = deferred;
  }

  private doorbell(): void {
    if (!this.tx.dirty) return;
    this.host.fence(); // slots before head
    this.tx.publishHead();
    this.host.raise();
    this.doorbellsOut++;
  }
}
