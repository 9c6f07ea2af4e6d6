/**
 * Transport `mmio`: trapped virtio-mmio forwarding (Gunyah / Xen IOREQ / ACRN class; docs/transport.md,
 * "mmio"; the wire in mmio-layout.ts). The hypervisor traps every guest access to a device's register
 * page and forwards it as a record through the ring in the window; this transport implements the
 * virtio-mmio version 2 register semantics (virtio 1.3 §4.2.2, §4.2.3) over the shared device state
 * machine (device-state.ts), answers each read in its record before completing it, and drives each
 * device's interrupt line level (its InterruptStatus not 0) for the hypervisor to inject.
 *
 * Each record is copied once into private memory and validated there. A malformed access — no register
 * at that offset, a control register not accessed as an aligned 32-bit word, a config access of another
 * width or past the config space, a read of a write-only register or a write of a read-only one, an
 * unknown device or direction — is ignored as virtio-mmio devices ignore them (a read answers 0),
 * completed with REC_IGNORED and counted as `dropped.<CODE>`. A ring head more than the ring's size
 * ahead is a bus violation (`violation.RECORD_HEAD`): the records are skipped, never read.
 */
import type { VirtioDevice } from '../devices/device';
import { LOG_WARN } from '../hal';
import type { QueueAddresses } from '../virtqueue/queue';
import type { WindowLayout } from '../window/layout';
import { RECORD_SIZE, RECORD_SLOTS_OFFSET } from '../window/layout';
import type { GuestWindow } from '../window/window';
import type { DeviceState } from './device-state';
import {
  MMIO,
  MMIO_MAX_DEVICES,
  MMIO_READ,
  MMIO_WRITE,
  REC_DONE,
  REC_IGNORED,
  REC_READ,
  REC_RESULT,
  REC_VALUE,
  REC_WRITE,
  RING_HEAD,
  RING_IRQ,
  RING_TAIL,
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION,
} from './mmio-layout';
import { VENDOR_ID } from './protocol';
import { DeviceRunner, RunnerTransport } from './runner';
import type { TransportHost, TransportLimits } from './transport';

/** The queue registers a driver writes before QueueReady = 1 (§4.2.3.2). */
interface StagedQueue {
  num: number;
  addrs: QueueAddresses;
}

/** This transport's private copy of one device's registers. */
class MmioRegisters {
  deviceFeaturesSel = 0;
  driverFeaturesSel = 0;
  queueSel = 0;
  shmSel = 0;
  interruptStatus = 0;
  readonly staged: StagedQueue[];

  constructor(numQueues: number) {
    this.staged = Array.from({ length: numQueues }, stagedEmpty);
  }

  /** Device reset (§4.2.2.1: InterruptStatus and every QueueReady cleared). */
  reset(): void {
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.shmSel = 0;
    this.interruptStatus = 0;
    for (let i = 0; i < this.staged.length; i++) this.staged[i] = stagedEmpty();
  }
}

function stagedEmpty(): StagedQueue {
  return { num: 0, addrs: { descLo: 0, descHi: 0, driverLo: 0, driverHi: 0, deviceLo: 0, deviceHi: 0 } };
}

/** Why an access is ignored, or '' when it is a valid access. */
type Verdict = '' | 'BAD_OFFSET' | 'BAD_WIDTH' | 'WRONG_DIRECTION';

/** The backend end of one window: virtio-mmio register pages reached through the access-record ring. */
export class MmioTransport extends RunnerTransport {
  private readonly slots: DeviceState[];
  private readonly regs: MmioRegisters[];
  private readonly ring: number;
  private readonly recSlots: number;
  /** Records completed (our index; the window's copy is only ever written). */
  private tail = 0;
  /** One record, copied once (four words). */
  private readonly rec = new Uint32Array(4);
  /** Interrupt line levels as last published (bit d = device d). */
  private irq = [0, 0];
  private pendingInterrupt = false;
  /** The per-pass bus counters as numeric fields. */
  private records = 0;
  private doorbellsOut = 0;

  constructor(
    private readonly win: GuestWindow,
    layout: WindowLayout,
    devices: VirtioDevice[],
    private readonly host: TransportHost,
    private readonly limits: TransportLimits,
  ) {
    super(new DeviceRunner(win, devices, host, limits.budgetPerQueue));
    if (devices.length > MMIO_MAX_DEVICES) throw new Error(`an mmio board has at most ${MMIO_MAX_DEVICES} devices, not ${devices.length}`);
    this.slots = this.runner.slots;
    this.regs = devices.map((d) => new MmioRegisters(d.numQueues));
    this.ring = layout.areaOffset;
    this.recSlots = (layout.areaSize - RECORD_SLOTS_OFFSET) / RECORD_SIZE; // a power of two (computeLayout)
  }

  /** An empty ring, every interrupt line low. */
  boot(): void {
    this.win.fill(this.ring, RECORD_SLOTS_OFFSET, 0);
    this.tail = 0;
  }

  stats() {
    return this.runner.stats(['records', this.records], ['doorbellsOut', this.doorbellsOut]);
  }

  // ---- records --------------------------------------------------------------------------------

  protected readDriver(): boolean {
    const win = this.win;
    const head = win.u32(this.ring + RING_HEAD);
    let n = (head - this.tail) >>> 0;
    if (n > this.recSlots) {
      this.runner.count('violation.RECORD_HEAD');
      this.host.log(LOG_WARN, `bus: access-record head ${head} runs ${n} ahead of tail ${this.tail} (${this.recSlots} slots); skipping them (docs/transport.md mmio)`);
      this.tail = head;
      win.setU32(this.ring + RING_TAIL, head);
      return false;
    }
    if (n === 0) return false;
    this.host.fence(); // records after head
    const rec = this.rec;
    const mask = this.recSlots - 1;
    let handled = 0;
    while (n > 0 && handled < this.limits.messagesPerPass) {
      const at = this.ring + RECORD_SLOTS_OFFSET + (this.tail & mask) * RECORD_SIZE;
      win.copyOutWords(at, 4, rec); // the one fetch of the record: REC_DEV, REC_OFFSET | REC_WIDTH, REC_OP | -, REC_VALUE
      const dev = rec[0]! & 0xffff;
      const off = rec[0]! >>> 16;
      const width = rec[1]! & 0xff;
      const op = (rec[1]! >>> 8) & 0xff;
      let value = 0;
      let result = REC_DONE;
      const slot = this.slots[dev];
      if (!slot) result = this.dropBus('UNKNOWN_DEVICE', `record for device ${dev}`);
      else if (op !== REC_READ && op !== REC_WRITE) result = this.drop(slot, 'BAD_OP', `record direction ${op}`);
      else {
        const why = this.check(slot, off, width, op);
        if (why) result = this.drop(slot, why, `${op === REC_READ ? 'read' : 'write'} of ${width} bytes at 0x${off.toString(16)}`);
        else if (op === REC_READ) value = this.read(dev, off, width);
        else this.write(dev, off, width, rec[2]!);
      }
      if (op === REC_READ) win.setU32(at + REC_VALUE, value >>> 0);
      win.setU32(at + REC_RESULT, result);
      this.tail = (this.tail + 1) >>> 0;
      n--;
      handled++;
      this.records++;
    }
    this.host.fence(); // answers before the tail that completes them
    win.setU32(this.ring + RING_TAIL, this.tail);
    this.pendingInterrupt = true;
    return n > 0 || win.u32(this.ring + RING_HEAD) !== this.tail;
  }

  private dropBus(code: string, detail: string): number {
    this.runner.count(`dropped.${code}`);
    this.host.log(LOG_WARN, `bus: ignored access: ${code}: ${detail} (virtio §4.2.2)`);
    return REC_IGNORED;
  }

  private drop(slot: DeviceState, code: string, detail: string): number {
    slot.count(`dropped.${code}`);
    this.runner.count(`dropped.${code}`);
    this.host.log(LOG_WARN, `${slot.label}: ignored access: ${code}: ${detail} (virtio §4.2.2)`);
    return REC_IGNORED;
  }

  /** §4.2.2.2: control registers as aligned 32-bit words; config fields at their own width and alignment. */
  private check(slot: DeviceState, off: number, width: number, op: number): Verdict {
    if (off >= MMIO.config) {
      if (width !== 1 && width !== 2 && width !== 4) return 'BAD_WIDTH';
      if (off & (width - 1)) return 'BAD_WIDTH';
      if (off - MMIO.config + width > slot.device.configSize) return 'BAD_OFFSET';
      return '';
    }
    const readable = MMIO_READ.has(off);
    const writable = MMIO_WRITE.has(off);
    if (!readable && !writable) return 'BAD_OFFSET';
    if (width !== 4 || off & 3) return 'BAD_WIDTH';
    if (op === REC_READ ? !readable : !writable) return 'WRONG_DIRECTION';
    return '';
  }

  private read(d: number, off: number, width: number): number {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    const dev = slot.device;
    const q = r.queueSel < slot.queues.length ? slot.queues[r.queueSel]! : null;
    switch (off) {
      case MMIO.magicValue:
        return VIRTIO_MMIO_MAGIC;
      case MMIO.version:
        return VIRTIO_MMIO_VERSION;
      case MMIO.deviceId:
        return dev.deviceId;
      case MMIO.vendorId:
        return VENDOR_ID;
      case MMIO.deviceFeatures:
        return slot.deviceFeatureWord(r.deviceFeaturesSel);
      case MMIO.queueNumMax:
        return q ? dev.maxQueueSize : 0;
      case MMIO.queueReady:
        return q && q.enabled ? 1 : 0;
      case MMIO.interruptStatus:
        return r.interruptStatus;
      case MMIO.status:
        return slot.status;
      case MMIO.shmLenLow:
      case MMIO.shmLenHigh:
      case MMIO.shmBaseLow:
      case MMIO.shmBaseHigh:
        return 0xffffffff; // no shared memory regions: length (and base) -1 for every SHMSel
      case MMIO.queueReset:
        return 0; // a queue reset completes within the write
      case MMIO.configGeneration:
        return slot.configGeneration;
      default: {
        const c = dev.readConfig();
        const o = off - MMIO.config;
        let v = 0;
        for (let k = width - 1; k >= 0; k--) v = (v << 8) | c[o + k]!;
        return v >>> 0;
      }
    }
  }

  private write(d: number, off: number, width: number, v: number): void {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    switch (off) {
      case MMIO.deviceFeaturesSel:
        r.deviceFeaturesSel = v;
        return;
      case MMIO.driverFeaturesSel:
        r.driverFeaturesSel = v;
        return;
      case MMIO.driverFeatures:
        if (slot.driverFeaturesWritable()) slot.setDriverFeatureWord(r.driverFeaturesSel, v);
        return;
      case MMIO.queueSel:
        r.queueSel = v;
        return;
      case MMIO.queueNum:
      case MMIO.queueDescLow:
      case MMIO.queueDescHigh:
      case MMIO.queueDriverLow:
      case MMIO.queueDriverHigh:
      case MMIO.queueDeviceLow:
      case MMIO.queueDeviceHigh:
        return this.stage(d, off, v);
      case MMIO.queueReady: {
        const i = r.queueSel;
        if (v === 1) {
          const s = i < r.staged.length ? r.staged[i]! : null;
          if (!s) return slot.refuse('SET_VQUEUE', `queue ${i} does not exist`);
          slot.setQueue(i, s.num, { ...s.addrs });
        } else if (v === 0) {
          if (i < slot.queues.length && slot.queues[i]!.enabled) slot.resetQueue(i, false); // §4.2.2.2: "to stop using the queue"
        } else slot.refuse('SET_VQUEUE', `QueueReady ${v}: only 0 and 1 are defined`);
        return;
      }
      case MMIO.queueNotify:
        return slot.notify(v); // without VIRTIO_F_NOTIFICATION_DATA the value is the queue index (§4.2.3.3)
      case MMIO.interruptAck:
        r.interruptStatus &= ~v;
        return;
      case MMIO.status:
        slot.setStatus(v);
        if (slot.status === 0) r.reset();
        return;
      case MMIO.shmSel:
        r.shmSel = v;
        return;
      case MMIO.queueReset:
        if (v === 1) slot.resetQueue(r.queueSel);
        return;
      default: {
        const data = new Uint8Array(width);
        for (let k = 0; k < width; k++) data[k] = (v >>> (8 * k)) & 0xff;
        const why = slot.writeConfig(off - MMIO.config, data);
        if (why) slot.refuse('SET_CONFIG', why);
      }
    }
  }

  /** QueueNum and the area registers, staged per queue until QueueReady = 1 (§4.2.3.2). */
  private stage(d: number, off: number, v: number): void {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    const i = r.queueSel;
    if (i >= slot.queues.length) return slot.refuse('SET_VQUEUE', `queue ${i} does not exist`);
    if (slot.queues[i]!.enabled) return slot.refuse('SET_VQUEUE', `queue ${i} is ready: its registers are fixed until it is reset (virtio §4.2.2.2)`);
    const s = r.staged[i]!;
    const a = s.addrs;
    switch (off) {
      case MMIO.queueNum:
        s.num = v;
        return;
      case MMIO.queueDescLow:
        a.descLo = v;
        return;
      case MMIO.queueDescHigh:
        a.descHi = v;
        return;
      case MMIO.queueDriverLow:
        a.driverLo = v;
        return;
      case MMIO.queueDriverHigh:
        a.driverHi = v;
        return;
      case MMIO.queueDeviceLow:
        a.deviceLo = v;
        return;
      default:
        a.deviceHi = v;
    }
  }

  // ---- device → driver ------------------------------------------------------------------------

  /** Pending notifications become InterruptStatus bits (§4.2.3.4); nothing is ever deferred. */
  protected flushEvents(): void {
    const runner = this.runner;
    if (!runner.eventsQueued) return;
    for (let d = 0; d < this.slots.length; d++) {
      const slot = this.slots[d]!;
      if (!slot.anyEvents) continue;
      slot.anyEvents = false;
      const r = this.regs[d]!;
      if (slot.pendingConfigEvent) {
        slot.pendingConfigEvent = false;
        r.interruptStatus |= VIRTIO_MMIO_INT_CONFIG;
        this.pendingInterrupt = true;
      }
      let used = false;
      const p = slot.pendingUsedEvent;
      for (let i = 0; i < p.length; i++) {
        if (!p[i]) continue;
        p[i] = 0;
        used = true;
      }
      if (used) {
        r.interruptStatus |= VIRTIO_MMIO_INT_VRING;
        slot.usedEvents++;
        this.pendingInterrupt = true;
      }
    }
    runner.eventsQueued = false;
  }

  /** Each device's line is asserted while its InterruptStatus is not 0 (§4.2.3.4). */
  private publishIrq(): void {
    let lo = 0;
    let hi = 0;
    for (let d = 0; d < this.regs.length; d++) {
      if (this.regs[d]!.interruptStatus === 0) continue;
      if (d < 32) lo |= 1 << d;
      else hi |= 1 << (d - 32);
    }
    if (lo === this.irq[0] && hi === this.irq[1]) return;
    this.irq = [lo, hi];
    this.win.setU32(this.ring + RING_IRQ, lo >>> 0);
    this.win.setU32(this.ring + RING_IRQ + 4, hi >>> 0);
    this.pendingInterrupt = true;
  }

  /** The line levels, then one interrupt for the pass. */
  protected ringFrontend(): void {
    this.publishIrq();
    if (!this.pendingInterrupt) return;
    this.pendingInterrupt = false;
    this.host.fence(); // completed records and line levels before the interrupt
    this.host.raise();
    this.doorbellsOut++;
  }
}
