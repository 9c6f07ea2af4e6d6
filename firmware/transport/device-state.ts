/**
 * The per-device virtio state machine every transport shares: device status (virtio 1.3 §2.1, §3.1),
 * feature negotiation (§2.2), the configuration generation (§2.5), queue configuration and its turn
 * into a live queue at DRIVER_OK (§2.6; split §2.7 or packed §2.8 as negotiated: virtqueue/format.ts),
 * queue reset (§2.6.1) and DEVICE_NEEDS_RESET (§2.1.2).
 *
 * A transport decodes its own wire format (virtio-msg messages, register-block write transactions,
 * trapped MMIO access records) into these operations and encodes what they answer; it never changes a
 * device's state any other way, so a hostile value gets the same treatment on every transport. An
 * operation the state refuses is counted as `refused.<OP>` with OP the virtio-msg name of the operation
 * (SET_DEVICE_STATUS, SET_VQUEUE, …) on every transport, and logged with the reason.
 */
import type { DeviceContext, VirtioDevice } from '../devices/device';
import { GuestProtocolError } from '../errors';
import { LOG_INFO, LOG_WARN } from '../hal';
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
import type { GuestWindow } from '../window/window';
import type { TransportHost } from './transport';

/** One virtqueue as the driver configured it, and the live queue once the device runs it. */
export interface QueueState {
  size: number;
  addrs: QueueAddresses;
  enabled: boolean;
  live: Virtqueue | null;
}

/** A queue nobody configured (after reset). */
export function emptyQueue(): QueueState {
  return { size: 0, addrs: { descLo: 0, descHi: 0, driverLo: 0, driverHi: 0, deviceLo: 0, deviceHi: 0 }, enabled: false, live: null };
}

/**
 * What a DeviceState asks of the runner that owns it (runner.ts's DeviceRunner is one): declared here,
 * so that the state machine does not import its runner (no import cycle between the two).
 */
export interface DeviceStateOwner {
  readonly win: GuestWindow;
  readonly host: TransportHost;
  count(name: string): void;
  kick(slot: DeviceState, i: number): void;
  queueConfigEvent(slot: DeviceState): void;
  runDevice<T>(slot: DeviceState, fn: () => T): T | false;
}

/** The transport-independent state of one device and the operations a driver can apply to it. */
export class DeviceState {
  status = 0;
  driverFeatures = 0n;
  /** The driver wrote feature bits beyond 64: FEATURES_OK will be refused. */
  unknownFeatureBits = false;
  configGeneration = 0;
  readonly queues: QueueState[];
  readonly kicked: Uint8Array;
  readonly pendingUsedEvent: Uint8Array;
  pendingConfigEvent = false;
  /** Some `kicked` bit may be set (set with every bit; the pass that runs this device clears it). */
  anyKicked = false;
  /** Some pending-event bit may be set (set with every bit; cleared once this device's events went out). */
  anyEvents = false;
  readonly counters: Record<string, number> = {};
  /** The per-pass counters as numeric fields (merged into `counters` by `countersNow()`). */
  notifies = 0;
  usedEvents = 0;
  lastViolation = '';

  constructor(
    readonly devNum: number,
    readonly device: VirtioDevice,
    private readonly runner: DeviceStateOwner,
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
  /** `dev` + number, for log lines. */
  get label(): string {
    return `${this.device.name}${this.devNum}`;
  }
  count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }
  countersNow(): Record<string, number> {
    return withCounts({ ...this.counters }, ['notifies', this.notifies], ['usedEvents', this.usedEvents]);
  }

  /** A well-formed request the state does not allow: answered with no effect, counted and logged. */
  refuse(op: string, why: string): void {
    this.count(`refused.${op}`);
    this.runner.host.log(LOG_WARN, `${this.label}: refused ${op}: ${why}`);
  }

  /** The 32 offered feature bits of block `block` (0 beyond bit 63). */
  deviceFeatureWord(block: number): number {
    if (block >= 2) return 0;
    const offered = this.device.features | TRANSPORT_FEATURES;
    return Number((offered >> BigInt(32 * block)) & 0xffffffffn);
  }

  /** Driver features may be written only between DRIVER and FEATURES_OK (virtio §3.1.1); refuses otherwise. */
  driverFeaturesWritable(): boolean {
    if ((this.status & (DRIVER | FEATURES_OK | DEVICE_NEEDS_RESET)) === DRIVER) return true;
    this.refuse('SET_DRIVER_FEATURES', `status 0x${this.status.toString(16)}: features are set between DRIVER and FEATURES_OK (virtio §3.1.1)`);
    return false;
  }

  /** Sets the 32 driver feature bits of block `block` (after `driverFeaturesWritable()`). */
  setDriverFeatureWord(block: number, bits: number): void {
    if (block < 2) {
      const shift = BigInt(32 * block);
      this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(bits >>> 0) << shift);
    } else if (bits !== 0) this.unknownFeatureBits = true;
  }

  /** A status write (virtio §2.1, §3.1.1): 0 resets; otherwise bits may only be added, in order. */
  setStatus(value: number): void {
    if (value === 0) return this.reset();
    if (this.needsReset) return this.refuse('SET_DEVICE_STATUS', 'device needs reset: only a write of 0 is accepted');
    if (value > 0xff || (value & DEVICE_NEEDS_RESET)) return this.refuse('SET_DEVICE_STATUS', `invalid status 0x${value.toString(16)}`);
    if ((value & this.status) !== this.status) return this.refuse('SET_DEVICE_STATUS', `driver may not clear status bits (0x${this.status.toString(16)} → 0x${value.toString(16)}; virtio §2.1.1)`);
    let next = value;
    const added = value & ~this.status;
    if (added & DRIVER && !(next & ACKNOWLEDGE)) return this.refuse('SET_DEVICE_STATUS', 'DRIVER without ACKNOWLEDGE (virtio §3.1.1)');
    if (added & FEATURES_OK) {
      const why = this.featureProblem();
      if (why) {
        next &= ~(FEATURES_OK | DRIVER_OK);
        this.refuse('SET_DEVICE_STATUS', `FEATURES_OK refused: ${why}`);
      }
    }
    if (added & DRIVER_OK && !(next & FEATURES_OK)) {
      next &= ~DRIVER_OK;
      this.refuse('SET_DEVICE_STATUS', 'DRIVER_OK without FEATURES_OK (virtio §3.1.1)');
    }
    const goingLive = (next & DRIVER_OK) !== 0 && (this.status & DRIVER_OK) === 0;
    this.status = next;
    if (goingLive && !(next & FAILED)) this.activate();
  }

  private featureProblem(): string {
    if ((this.status & (ACKNOWLEDGE | DRIVER)) !== (ACKNOWLEDGE | DRIVER)) return 'ACKNOWLEDGE and DRIVER not set';
    const offered = this.device.features | TRANSPORT_FEATURES;
    const f = this.driverFeatures;
    if (this.unknownFeatureBits || (f & ~offered) !== 0n) return `features 0x${(f & ~offered).toString(16)} were not offered (virtio §2.2.1)`;
    if (!(f & VIRTIO_F_VERSION_1)) return 'VIRTIO_F_VERSION_1 is required';
    if (!this.runner.runDevice(this, () => this.device.acceptFeatures(f))) return 'device-specific feature dependencies not met';
    return '';
  }

  /**
   * A driver write into the configuration space; '' when the device took it, else the reason it was
   * refused (counted by the caller's `refuse`, which knows the operation's name on its wire).
   */
  writeConfig(off: number, data: Uint8Array): string {
    if (off + data.length > this.device.configSize) return `[${off} +${data.length}] outside config space of ${this.device.configSize}`;
    if (this.needsReset) return 'device needs reset';
    if (!this.runner.runDevice(this, () => this.device.writeConfig(off, data))) return 'field not writable';
    return '';
  }

  /**
   * Configures queue `i` (SET_VQUEUE; virtio-mmio's QueueReady = 1): validated when received (virtio
   * §2.7: size a power of two ≤ the device's maximum, areas aligned and inside the pool); refused (and
   * left unset) when invalid, before FEATURES_OK, or while the queue is enabled. A queue configured
   * after DRIVER_OK goes live at once (virtio-msg §Virtqueue Changes).
   */
  setQueue(i: number, size: number, addrs: QueueAddresses): boolean {
    if (this.needsReset || !(this.status & FEATURES_OK)) {
      this.refuse('SET_VQUEUE', `status 0x${this.status.toString(16)}: queues are set up after FEATURES_OK`);
      return false;
    }
    if (i >= this.queues.length) {
      this.refuse('SET_VQUEUE', `queue ${i} does not exist`);
      return false;
    }
    if (this.queues[i]!.enabled) {
      this.refuse('SET_VQUEUE', `queue ${i} is enabled: reset the device or the queue first`);
      return false;
    }
    try {
      validateQueueConfig(this.runner.win, this.driverFeatures, size, this.device.maxQueueSize, addrs);
    } catch (e) {
      if (!(e instanceof GuestProtocolError)) throw e;
      this.count(`violation.${e.code}`);
      this.refuse('SET_VQUEUE', e.message);
      return false;
    }
    this.queues[i] = { size, addrs, enabled: true, live: null };
    if (this.live) this.makeLive(i);
    return true;
  }

  /**
   * Resets queue `i` (RESET_VQUEUE, §2.6.1; with `needRingReset` false, the "stop using the queue" of
   * virtio-mmio's QueueReady = 0): the queue is unset and the device drops what it holds of it.
   */
  resetQueue(i: number, needRingReset = true): void {
    if (needRingReset && (!(this.driverFeatures & VIRTIO_F_RING_RESET) || !(this.status & FEATURES_OK))) return this.refuse('RESET_VQUEUE', 'VIRTIO_F_RING_RESET not negotiated');
    if (i >= this.queues.length) return this.refuse('RESET_VQUEUE', `queue ${i} does not exist`);
    this.queues[i] = emptyQueue();
    this.kicked[i] = 0;
    this.pendingUsedEvent[i] = 0;
    this.runner.runDevice(this, () => this.device.queueReset(i));
  }

  /** An available-buffer notification for queue `i`; one for a queue that is not live is dropped and counted. */
  notify(i: number): void {
    const q = i < this.queues.length ? this.queues[i]! : null;
    if (!q || !q.live || !this.live) {
      this.count('dropped.NOTIFY_NOT_READY');
      this.runner.count('dropped.NOTIFY_NOT_READY');
      return;
    }
    this.notifies++;
    this.runner.kick(this, i);
  }

  private makeLive(i: number): void {
    const q = this.queues[i]!;
    q.live = openQueue(this.runner.win, this.driverFeatures, i, q.size, this.device.maxQueueSize, q.addrs, this.runner.host.fence);
    // A driver may have made buffers available before going live without a notify reaching us.
    this.runner.kick(this, i);
  }

  private activate(): void {
    for (let i = 0; i < this.queues.length; i++) if (this.queues[i]!.enabled) this.makeLive(i);
    const runner = this.runner;
    const ctx: DeviceContext = {
      features: this.driverFeatures,
      queue: (i) => (i < this.queues.length ? this.queues[i]!.live : null),
      configChanged: () => {
        this.configGeneration = (this.configGeneration + 1) >>> 0;
        runner.queueConfigEvent(this);
      },
      kick: (i) => {
        if (i < this.kicked.length) runner.kick(this, i);
      },
    };
    runner.runDevice(this, () => this.device.activate(ctx));
    runner.host.log(LOG_INFO, `${this.label}: DRIVER_OK, features 0x${this.driverFeatures.toString(16)}`);
  }

  /** Status 0: queues released, in-flight work dropped, features cleared; the generation is kept (§2.1, §2.5). */
  reset(): void {
    this.status = 0;
    this.driverFeatures = 0n;
    this.unknownFeatureBits = false;
    for (let i = 0; i < this.queues.length; i++) this.queues[i] = emptyQueue();
    this.kicked.fill(0);
    this.pendingUsedEvent.fill(0);
    this.pendingConfigEvent = false;
    this.count('resets');
    this.runner.runDevice(this, () => this.device.reset());
  }
}

/** Adds the non-zero numeric counters to `c` (a counter that never counted does not appear, as with `count()`). */
export function withCounts(c: Record<string, number>, ...fields: [string, number][]): Record<string, number> {
  for (const [k, v] of fields) if (v) c[k] = v;
  return c;
}
