/**
 * Transport `msg`: virtio-msg over the window's two FIFOs (docs/transport.md; message layouts in
 * protocol.ts, the FIFO plumbing in fifo.ts). The bus (GET_DEVICES, PING) and the dispatcher live here;
 * every transport message becomes an operation of the shared device state machine (device-state.ts).
 *
 * The dispatcher is where this wire's faults are caught: a malformed message is dropped and counted
 * (virtio-msg §Error Signaling), a request the device's state refuses is answered with no effect; queue
 * faults and device models that throw are the runner's (runner.ts): that device goes NEEDS_RESET, with
 * an EVENT_CONFIG from here.
 */
import { GuestProtocolError } from '../errors';
import { LOG_WARN } from '../hal';
import type { QueueAddresses } from '../virtqueue/queue';
import type { WindowLayout } from '../window/layout';
import type { GuestWindow } from '../window/window';
import type { VirtioDevice } from '../devices/device';
import type { DeviceState } from './device-state';
import { FifoConsumer, FifoProducer } from './fifo';
import * as P from './protocol';
import { DeviceRunner, RunnerTransport } from './runner';
import type { TransportHost, TransportLimits } from './transport';

/** The backend end of one window: a virtio-msg bus with its devices. */
export class VirtioMsgTransport extends RunnerTransport {
  private readonly rx: FifoConsumer;
  private readonly tx: FifoProducer;
  private readonly slots: DeviceState[];
  /** Private copies of one message each way, as bytes and as words over the same memory (FIFO copies are by word). */
  private readonly inWords: Uint32Array;
  private readonly inBuf: Uint8Array;
  private readonly outWords = new Uint32Array((P.HEADER_BYTES + 256) >>> 2);
  private readonly outBuf = new Uint8Array(this.outWords.buffer);
  private readonly decoder: P.MessageDecoder;
  private readonly encoder = new P.MessageEncoder(this.outBuf);
  /** The per-pass bus counters as numeric fields. */
  private messages = 0;
  private sent = 0;
  private doorbellsOut = 0;

  constructor(
    win: GuestWindow,
    layout: WindowLayout,
    devices: VirtioDevice[],
    private readonly host: TransportHost,
    private readonly limits: TransportLimits,
  ) {
    super(new DeviceRunner(win, devices, host, limits.budgetPerQueue));
    this.rx = new FifoConsumer(win, layout.fifoD2V, layout.slotSize);
    this.tx = new FifoProducer(win, layout.fifoV2D, layout.slotSize);
    this.inWords = new Uint32Array(layout.slotSize >>> 2);
    this.inBuf = new Uint8Array(this.inWords.buffer);
    this.decoder = new P.MessageDecoder(this.inBuf, layout.slotSize);
    this.slots = this.runner.slots;
  }

  /** Empty FIFOs: both control blocks zeroed (docs/window-layout.md, boot order). */
  boot(): void {
    this.rx.reset();
    this.tx.reset();
  }

  stats() {
    return this.runner.stats(['messages', this.messages], ['sent', this.sent], ['doorbellsOut', this.doorbellsOut]);
  }

  // ---- messages -------------------------------------------------------------------------------

  protected readDriver(): boolean {
    let n = this.rx.ready();
    if (n < 0) {
      this.runner.count('violation.FIFO_HEAD');
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
        this.runner.count('backpressure');
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

  private drop(slot: DeviceState | null, code: string, detail: string): void {
    this.runner.count(`dropped.${code}`);
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

  private handleTransport(slot: DeviceState, m: P.Message): void {
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
        const out = this.answer(m, 8 + 4 * num);
        out.setUint32(0, index, true);
        out.setUint32(4, num, true);
        for (let i = 0; i < num; i++) out.setUint32(8 + 4 * i, slot.deviceFeatureWord(index + i), true);
        return this.send();
      }
      case P.VIRTIO_MSG_SET_DRIVER_FEATURES: {
        const index = p.getUint32(0, true);
        const num = p.getUint32(4, true);
        if (p.byteLength < 8 + 4 * num) return this.drop(slot, 'TRUNCATED', `SET_DRIVER_FEATURES of ${num} blocks in ${p.byteLength} bytes`);
        this.answer(m, 0);
        this.send();
        if (!slot.driverFeaturesWritable()) return;
        for (let i = 0; i < num; i++) slot.setDriverFeatureWord(index + i, p.getUint32(8 + 4 * i, true));
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
        else slot.refuse('GET_CONFIG', `[${off} +${len}] outside config space of ${dev.configSize}`);
        return this.send();
      }
      case P.VIRTIO_MSG_SET_CONFIG: {
        const gen = p.getUint32(0, true);
        const off = p.getUint32(4, true);
        const len = p.getUint32(8, true);
        if (p.byteLength < 12 + len) return this.drop(slot, 'TRUNCATED', `SET_CONFIG of ${len} bytes in ${p.byteLength}`);
        let why = '';
        if (gen !== slot.configGeneration) why = `stale generation ${gen} (now ${slot.configGeneration})`;
        else if (len > this.outBuf.length - P.HEADER_BYTES - 12) why = `[${off} +${len}] outside config space`;
        else why = slot.writeConfig(off, new Uint8Array(p.buffer, p.byteOffset + 12, len).slice());
        const okLen = why ? 0 : len;
        const out = this.answer(m, 12 + okLen);
        out.setUint32(0, slot.configGeneration, true);
        out.setUint32(4, off, true);
        out.setUint32(8, okLen, true);
        if (okLen) this.outBuf.set(dev.readConfig().subarray(off, off + len), P.HEADER_BYTES + 12);
        if (why) slot.refuse('SET_CONFIG', why);
        return this.send();
      }
      case P.VIRTIO_MSG_GET_DEVICE_STATUS: {
        this.answer(m, 4).setUint32(0, slot.status, true);
        return this.send();
      }
      case P.VIRTIO_MSG_SET_DEVICE_STATUS: {
        slot.setStatus(p.getUint32(0, true));
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
        if (p.getUint32(4, true) !== 0 || p.getUint32(12, true) !== 0) return slot.refuse('SET_VQUEUE', 'reserved fields not zero');
        const addrs: QueueAddresses = {
          descLo: p.getUint32(16, true),
          descHi: p.getUint32(20, true),
          driverLo: p.getUint32(24, true),
          driverHi: p.getUint32(28, true),
          deviceLo: p.getUint32(32, true),
          deviceHi: p.getUint32(36, true),
        };
        slot.setQueue(p.getUint32(0, true), p.getUint32(8, true), addrs);
        return;
      }
      case P.VIRTIO_MSG_RESET_VQUEUE: {
        this.answer(m, 0);
        this.send();
        return slot.resetQueue(p.getUint32(0, true));
      }
      case P.VIRTIO_MSG_GET_SHM: {
        const out = this.answer(m, P.GET_SHM_ANSWER);
        out.setUint32(0, p.getUint32(0, true), true);
        out.setUint32(4, 0, true);
        out.setUint32(8, 0, true);
        return this.send();
      }
      case P.VIRTIO_MSG_EVENT_AVAIL:
        return slot.notify(p.getUint32(0, true));
      default:
        return this.drop(slot, 'UNKNOWN_MSG_ID', `msg_id 0x${m.msgId.toString(16)}`);
    }
  }

  // ---- device → driver ------------------------------------------------------------------------

  /**
   * Sends pending events while the FIFO has room. Events that find it full stay pending (one bit per
   * queue, so memory stays bounded); the frontend rings us when it frees slots of a full FIFO.
   */
  protected flushEvents(): void {
    const runner = this.runner;
    if (!runner.eventsQueued) return;
    let space = this.tx.space();
    if (space < 0) {
      runner.count('violation.FIFO_TAIL'); // an impossible tail: treat the FIFO as full until it is sane
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
          runner.count('eventsDeferred');
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
          runner.count('eventsDeferred');
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
    runner.eventsQueued = deferred;
  }

  protected ringFrontend(): void {
    if (!this.tx.dirty) return;
    this.host.fence(); // slots before head
    this.tx.publishHead();
    this.host.raise();
    this.doorbellsOut++;
  }
}
