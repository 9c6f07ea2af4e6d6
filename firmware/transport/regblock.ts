/**
 * Transport `regblock`: Jailhouse-style virtio register blocks in the window (docs/transport.md,
 * "regblock"; layout and pinned revision in regblock-layout.ts). The hypervisor traps nothing: the
 * driver writes a register in its device's block, names it in `write_transaction` and rings; this
 * transport applies the write to the shared device state machine (device-state.ts), writes back what
 * changed, and clears `write_transaction`.
 *
 * Every byte of a block is the frontend's to scribble on, so nothing is read back as state: a register
 * value is fetched once, when its transaction is processed, into this transport's private copy of the
 * device's registers (selectors, the staged queue configuration). A transaction that names no writable
 * register, has the wrong width or reserved bits set is dropped and counted (`dropped.<CODE>`) and
 * cleared like any other; the driver sees the register unchanged. Queue faults and device models that
 * throw are the runner's: that device goes NEEDS_RESET with a config event.
 *
 * Notifications: every queue reports device vector 0, the backend's one doorbell line, so a doorbell
 * does not say which queue has news. On each pass this transport looks at the available index of every
 * live queue (bounded by the board's devices and their queues) and kicks the ones that moved since it
 * last looked; the queue itself then fetches and validates the index as always. A packed queue has no
 * available index: it is kicked when its own check (`hasAvailable`, the next descriptor's flags against
 * its wrap counter) finds a buffer.
 */
import type { VirtioDevice } from '../devices/device';
import { LOG_WARN } from '../hal';
import { VIRTIO_F_RING_PACKED } from '../virtio';
import type { QueueAddresses } from '../virtqueue/queue';
import type { WindowLayout } from '../window/layout';
import { REGBLOCK_STRIDE } from '../window/layout';
import type { GuestWindow } from '../window/window';
import type { DeviceState } from './device-state';
import { VENDOR_ID } from './protocol';
import {
  DIR_BLOCK_OFFSET,
  DIR_BLOCK_SIZE,
  DIR_COUNT,
  DIR_DEVICE_ID,
  DIR_ENTRIES,
  DIR_ENTRY_SIZE,
  DIR_NUM_QUEUES,
  DIR_VENDOR_ID,
  RB,
  READ_ONLY,
  REGBLOCK_REVISION,
  TRANSACTION_OFFSET_MASK,
  TRANSACTION_WIDTH_SHIFT,
  WRITABLE,
} from './regblock-layout';
import { DeviceRunner, RunnerTransport } from './runner';
import type { TransportHost, TransportLimits } from './transport';

/** The queue configuration a driver stages register by register before queue_enable = 1. */
interface StagedQueue {
  size: number;
  addrs: QueueAddresses;
}

/** This transport's private copy of one device's registers. */
class BlockRegisters {
  deviceFeaturesSel = 0;
  driverFeaturesSel = 0;
  queueSel = 0;
  staged: StagedQueue = stagedEmpty();
  /** The available index of each queue as this transport last saw it (a notification is a change). */
  readonly seenAvail: Int32Array;
  /** The configuration space as last mirrored into the block, and the block's generation (even when stable). */
  config: Uint8Array = new Uint8Array(0);
  generation = 0;

  constructor(numQueues: number) {
    this.seenAvail = new Int32Array(numQueues).fill(-1);
  }

  reset(): void {
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    this.staged = stagedEmpty();
    this.seenAvail.fill(-1);
  }
}

function stagedEmpty(): StagedQueue {
  return { size: 0, addrs: { descLo: 0, descHi: 0, driverLo: 0, driverHi: 0, deviceLo: 0, deviceHi: 0 } };
}

/** The backend end of one window: a directory of register blocks, one per device. */
export class RegBlockTransport extends RunnerTransport {
  private readonly slots: DeviceState[];
  private readonly blocks: number[];
  private readonly regs: BlockRegisters[];
  /** Ring the frontend at the end of the pass (an event was set or a transaction completed). */
  private pendingInterrupt = false;
  /** The per-pass bus counters as numeric fields. */
  private transactions = 0;
  private doorbellsOut = 0;

  constructor(
    private readonly win: GuestWindow,
    private readonly layout: WindowLayout,
    devices: VirtioDevice[],
    private readonly host: TransportHost,
    limits: TransportLimits,
  ) {
    super(new DeviceRunner(win, devices, host, limits.budgetPerQueue));
    this.slots = this.runner.slots;
    this.blocks = devices.map((d, i) => {
      if (RB.config + d.configSize > REGBLOCK_STRIDE) throw new Error(`${d.name}${i}: config space of ${d.configSize} bytes does not fit a ${REGBLOCK_STRIDE}-byte register block`);
      return layout.areaOffset + REGBLOCK_STRIDE * (i + 1);
    });
    this.regs = devices.map((d) => new BlockRegisters(d.numQueues));
  }

  /** Writes the directory and every block as after a device reset (the boot step between header and READY). */
  boot(): void {
    const win = this.win;
    const dir = this.layout.areaOffset;
    win.fill(dir, this.layout.areaSize, 0);
    win.setU32(dir + DIR_COUNT, this.slots.length);
    for (let d = 0; d < this.slots.length; d++) {
      const dev = this.slots[d]!.device;
      const e = dir + DIR_ENTRIES + d * DIR_ENTRY_SIZE;
      win.setU32(e + DIR_DEVICE_ID, dev.deviceId);
      win.setU32(e + DIR_VENDOR_ID, VENDOR_ID);
      win.setU32(e + DIR_BLOCK_OFFSET, this.blocks[d]!);
      win.setU32(e + DIR_BLOCK_SIZE, RB.config + dev.configSize);
      win.setU32(e + DIR_NUM_QUEUES, dev.numQueues);
      const b = this.blocks[d]!;
      win.setU32(b + RB.revision, REGBLOCK_REVISION);
      win.setU32(b + RB.size, RB.config + dev.configSize);
      this.publishQueueWindow(d);
      this.mirrorConfig(d);
    }
  }

  stats() {
    return this.runner.stats(['transactions', this.transactions], ['doorbellsOut', this.doorbellsOut]);
  }

  // ---- driver → device ------------------------------------------------------------------------

  /**
   * Transactions, then notifications. Nothing is left for a next pass: a device has at most one
   * transaction pending (the driver waits for 0 before its next write).
   */
  protected readDriver(): boolean {
    this.readTransactions();
    this.readNotifications();
    return false;
  }

  private readTransactions(): void {
    const win = this.win;
    let any = false;
    for (let d = 0; d < this.slots.length; d++) {
      const b = this.blocks[d]!;
      const t = win.u32(b + RB.writeTransaction);
      if (t === 0) continue;
      if (!any) {
        this.host.fence(); // register values after the transaction word
        any = true;
      }
      this.transactions++;
      this.transaction(d, t);
      this.host.fence(); // what the write changed, before the driver sees the transaction done
      win.setU32(b + RB.writeTransaction, 0);
      this.pendingInterrupt = true;
    }
  }

  private drop(slot: DeviceState, code: string, detail: string): void {
    this.runner.count(`dropped.${code}`);
    slot.count(`dropped.${code}`);
    this.host.log(LOG_WARN, `${slot.label}: dropped register write: ${code}: ${detail} (docs/transport.md regblock)`);
  }

  private transaction(d: number, t: number): void {
    const slot = this.slots[d]!;
    const b = this.blocks[d]!;
    const off = t & TRANSACTION_OFFSET_MASK;
    const width = (t >>> TRANSACTION_WIDTH_SHIFT) & 0xff;
    if (t >>> 24) return this.drop(slot, 'BAD_TRANSACTION', `write_transaction 0x${t.toString(16)} has reserved bits set`);
    if (off >= RB.config) return this.configWrite(d, off - RB.config, width);
    const reg = WRITABLE[off];
    if (!reg) {
      const ro = READ_ONLY[off];
      return ro ? this.drop(slot, 'NOT_WRITABLE', `${ro} (0x${off.toString(16)}) is written by the device`) : this.drop(slot, 'BAD_OFFSET', `no register at 0x${off.toString(16)}`);
    }
    if (width !== 0 && width !== reg.width) return this.drop(slot, 'BAD_WIDTH', `${reg.name} is ${reg.width} bytes wide, not ${width}`);
    const win = this.win;
    // The one fetch of the value (64-bit registers as two halves).
    const lo = reg.width === 2 ? win.u16(b + off) : win.u32(b + off);
    const hi = reg.width === 8 ? win.u32(b + off + 4) : 0;
    this.apply(d, off, lo, hi);
  }

  private apply(d: number, off: number, v: number, hi: number): void {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    const b = this.blocks[d]!;
    const win = this.win;
    switch (off) {
      case RB.deviceFeaturesSel:
        r.deviceFeaturesSel = v;
        win.setU32(b + RB.deviceFeatures, slot.deviceFeatureWord(v));
        return;
      case RB.driverFeaturesSel:
        r.driverFeaturesSel = v;
        return;
      case RB.driverFeatures:
        if (slot.driverFeaturesWritable()) slot.setDriverFeatureWord(r.driverFeaturesSel, v);
        return;
      case RB.queueSel:
        r.queueSel = v;
        this.publishQueueWindow(d);
        return;
      case RB.queueSize:
      case RB.queueDesc:
      case RB.queueDriver:
      case RB.queueDevice:
        return this.stage(d, off, v, hi);
      case RB.queueDriverVector:
        return; // one line towards the frontend: every queue's interrupt arrives on it
      case RB.queueEnable:
        return this.queueEnable(d, v);
      case RB.deviceStatus: {
        slot.setStatus(v);
        if (slot.status === 0) r.reset();
        win.setU32(b + RB.deviceStatus, slot.status);
        this.publishQueueWindow(d);
        this.mirrorConfig(d);
        return;
      }
    }
  }

  /** queue_size and the three area addresses, staged privately for queue_enable = 1. */
  private stage(d: number, off: number, v: number, hi: number): void {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    const i = r.queueSel;
    if (i >= slot.queues.length) return slot.refuse('SET_VQUEUE', `queue ${i} does not exist`);
    if (slot.queues[i]!.enabled) return slot.refuse('SET_VQUEUE', `queue ${i} is enabled: its configuration is fixed until it is reset (virtio §4.2.2.2)`);
    const a = r.staged.addrs;
    if (off === RB.queueSize) r.staged.size = v;
    else if (off === RB.queueDesc) (a.descLo = v), (a.descHi = hi);
    else if (off === RB.queueDriver) (a.driverLo = v), (a.driverHi = hi);
    else (a.deviceLo = v), (a.deviceHi = hi);
  }

  private queueEnable(d: number, v: number): void {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    const i = r.queueSel;
    if (v === 1) {
      const s = r.staged;
      slot.setQueue(i, s.size, { ...s.addrs });
    } else if (v === 0) {
      if (i < slot.queues.length && slot.queues[i]!.enabled) slot.resetQueue(i, false);
    } else slot.refuse('SET_VQUEUE', `queue_enable ${v}: only 0 and 1 are defined`);
    if (i < r.seenAvail.length) r.seenAvail[i] = -1;
    this.publishQueueWindow(d);
  }

  /**
   * The queue window as the driver reads it after queue_sel: the maximum size (or the size in use),
   * our doorbell vector, whether the queue is enabled and its areas; the staging restarts from it.
   */
  private publishQueueWindow(d: number): void {
    const slot = this.slots[d]!;
    const r = this.regs[d]!;
    const b = this.blocks[d]!;
    const win = this.win;
    const i = r.queueSel;
    const q = i < slot.queues.length ? slot.queues[i]! : null;
    const a = q && q.enabled ? q.addrs : null;
    win.setU16(b + RB.queueSize, q ? (q.enabled ? q.size : slot.device.maxQueueSize) : 0);
    win.setU16(b + RB.queueDeviceVector, 0);
    win.setU16(b + RB.queueEnable, q && q.enabled ? 1 : 0);
    win.setU32(b + RB.queueDesc, a ? a.descLo : 0);
    win.setU32(b + RB.queueDesc + 4, a ? a.descHi : 0);
    win.setU32(b + RB.queueDriver, a ? a.driverLo : 0);
    win.setU32(b + RB.queueDriver + 4, a ? a.driverHi : 0);
    win.setU32(b + RB.queueDevice, a ? a.deviceLo : 0);
    win.setU32(b + RB.queueDevice + 4, a ? a.deviceHi : 0);
    r.staged = stagedEmpty();
    if (q && !q.enabled) r.staged.size = slot.device.maxQueueSize;
  }

  /** A config-space write: its width rides in write_transaction (regblock-layout.ts). */
  private configWrite(d: number, off: number, width: number): void {
    const slot = this.slots[d]!;
    const dev = slot.device;
    if (width !== 1 && width !== 2 && width !== 4 && width !== 8) {
      this.drop(slot, 'BAD_WIDTH', `config write of width ${width} at ${off} (1, 2, 4 or 8 in bits 16-23)`);
      return this.mirrorConfig(d); // the device's config again where the driver wrote
    }
    if (off + width > dev.configSize) {
      slot.refuse('SET_CONFIG', `[${off} +${width}] outside config space of ${dev.configSize}`);
      return this.mirrorConfig(d);
    }
    const data = this.win.copyOut(this.blocks[d]! + RB.config + off, width); // the one fetch
    const why = slot.writeConfig(off, data);
    if (why) slot.refuse('SET_CONFIG', why);
    this.mirrorConfig(d); // the device's view, whatever the driver wrote there
  }

  /** Kicks every live queue whose available index moved since the last look (module comment); a packed queue when it has a buffer available. */
  private readNotifications(): void {
    const win = this.win;
    for (let d = 0; d < this.slots.length; d++) {
      const slot = this.slots[d]!;
      if (!slot.live) continue;
      const seen = this.regs[d]!.seenAvail;
      const packed = (slot.driverFeatures & VIRTIO_F_RING_PACKED) !== 0n;
      for (let i = 0; i < slot.queues.length; i++) {
        const q = slot.queues[i]!;
        if (!q.live) continue;
        if (packed) {
          // a packed ring has no available index: the queue's own check (its next descriptor's flags
          // against its wrap counter, read once and validated there) says whether there is news
          if (q.live.hasAvailable()) slot.notify(i);
          continue;
        }
        const idx = win.u16(q.addrs.driverLo + 2); // a hint: the queue fetches and checks its own copy
        if (idx === seen[i]) continue;
        seen[i] = idx;
        slot.notify(i);
      }
    }
  }

  // ---- device → driver ------------------------------------------------------------------------

  /**
   * Rewrites the block's config space when the device's differs from what was mirrored, under an odd
   * generation (the driver's generation loop retries while it is odd or has changed).
   */
  private mirrorConfig(d: number): void {
    const r = this.regs[d]!;
    const b = this.blocks[d]!;
    const now = this.slots[d]!.device.readConfig();
    const win = this.win;
    if (sameBytes(now, r.config)) {
      win.copyIn(b + RB.config, now); // undo whatever the driver scribbled there
      return;
    }
    win.setU32(b + RB.configGeneration, (r.generation + 1) >>> 0);
    this.host.fence();
    win.copyIn(b + RB.config, now);
    this.host.fence();
    r.generation = (r.generation + 2) >>> 0;
    win.setU32(b + RB.configGeneration, r.generation);
    r.config = now.slice();
  }

  /** Pending notifications become the block's event bytes (idempotent flags: nothing is ever deferred). */
  protected flushEvents(): void {
    const runner = this.runner;
    if (!runner.eventsQueued) return;
    const win = this.win;
    for (let d = 0; d < this.slots.length; d++) {
      const slot = this.slots[d]!;
      if (!slot.anyEvents) continue;
      slot.anyEvents = false;
      const b = this.blocks[d]!;
      if (slot.pendingConfigEvent) {
        slot.pendingConfigEvent = false;
        this.mirrorConfig(d);
        win.setU32(b + RB.deviceStatus, slot.status);
        this.host.fence();
        win.setU8(b + RB.configEvent, 1);
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
        win.setU8(b + RB.queueEvent, 1);
        slot.usedEvents++;
        this.pendingInterrupt = true;
      }
    }
    runner.eventsQueued = false;
  }

  protected ringFrontend(): void {
    if (!this.pendingInterrupt) return;
    this.pendingInterrupt = false;
    this.host.fence(); // event bytes and cleared transactions before the interrupt
    this.host.raise();
    this.doorbellsOut++;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
