/**
 * What every transport runs its devices with: the fault boundary (`runDevice`: guest faults and device
 * models that throw stop only their own device), DEVICE_NEEDS_RESET (virtio 1.3 §2.1.2), the
 * round-robin queue runner with a per-queue budget (DESIGN §6.4: a flooding queue cannot starve another
 * device), publishing used rings, and the summary flags that keep a pass with nothing to do cheap.
 *
 * A transport owns the wire: it turns what the frontend wrote into DeviceState operations and the
 * pending-event bits this runner sets into its own notifications (EVENT_USED messages, an interrupt
 * status word and a line). It reads those bits in its own `flushEvents`, so this file knows nothing
 * about any wire format.
 */
import type { VirtioDevice } from '../devices/device';
import { GuestProtocolError } from '../errors';
import { LOG_ERROR, LOG_WARN } from '../hal';
import { DEVICE_NEEDS_RESET } from '../virtio';
import type { GuestWindow } from '../window/window';
import { DeviceState, withCounts } from './device-state';
import type { Transport, TransportHost } from './transport';

/** `runQueue`'s queue index for a device's `onService`. */
const SERVICE = -1;

/** The devices of one window and the loop that runs them. */
export class DeviceRunner {
  readonly slots: DeviceState[];
  /** Bus-wide counters (per-device ones live in each DeviceState). */
  readonly counters: Record<string, number> = {};
  /** The device whose code is running (for faults the runtime reports after stopping a call). */
  private running: DeviceState | null = null;
  private rr = 0;
  /**
   * Set with every pending-event bit (EVENT_CONFIG, EVENT_USED) and cleared by the transport once all
   * went out, so a pass with nothing to announce does not look at every device's bits: the per-pass
   * cost stays that of the work the frontend asked for (a doorbell round trip is mostly this pass).
   */
  eventsQueued = false;
  /** Set with every `kicked` bit; a pass runs queues only when some queue was kicked. */
  private kickedAny = false;

  constructor(
    readonly win: GuestWindow,
    devices: VirtioDevice[],
    readonly host: TransportHost,
    private readonly budgetPerQueue: number,
  ) {
    this.slots = devices.map((d, i) => new DeviceState(i, d, this));
  }

  count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }

  /** Marks queue `i` of `slot` for the next pass, with the summary flags `runQueues` looks at first. */
  kick(slot: DeviceState, i: number): void {
    slot.kicked[i] = 1;
    slot.anyKicked = true;
    this.kickedAny = true;
  }

  /** Queues a configuration-change notification for `slot`, with the summary flags the transport looks at first. */
  queueConfigEvent(slot: DeviceState): void {
    slot.pendingConfigEvent = true;
    slot.anyEvents = true;
    this.eventsQueued = true;
  }

  /** Queues a used-buffer notification for queue `i` of `slot`, with the same summary flags. */
  queueUsedEvent(slot: DeviceState, i: number): void {
    slot.pendingUsedEvent[i] = 1;
    slot.anyEvents = true;
    this.eventsQueued = true;
  }

  /** Starts a pass: no device is running. */
  beginPass(): void {
    this.running = null;
  }

  /** Backing service `h` reported input, room or finished requests: let every live device that may own it look. Returns true if work is left. */
  serviceDevices(h: number): boolean {
    this.running = null;
    let more = false;
    for (const slot of this.slots) {
      if (!slot.live || !slot.device.ownsService(h)) continue;
      more = this.runQueue(slot, SERVICE) || more;
      this.flushUsed(slot);
    }
    return more;
  }

  /**
   * The runtime stopped the last call (watchdog or memory limit): blame the device that was running.
   * The stopped call never reached the end of its pass, so afterwards every bit is looked at again (the
   * pass may have been stopped after it cleared the summary flags); the transport then runs a pass.
   */
  blameFault(kind: string, detail: string): void {
    const slot = this.running;
    this.count(`fault.${kind}`);
    if (slot) {
      this.quarantine(slot);
      this.running = null;
      this.markNeedsReset(slot, `device model stopped by the runtime (${kind}): ${detail}`, `fault.${kind}`);
    } else this.host.log(LOG_ERROR, `runtime fault (${kind}) outside any device: ${detail}`);
    this.kickedAny = true;
    this.eventsQueued = true;
    for (let k = 0; k < this.slots.length; k++) {
      this.slots[k]!.anyKicked = true;
      this.slots[k]!.anyEvents = true;
    }
  }

  /**
   * A device model that threw or was stopped is untrusted: drop what it holds (its `reset()`) before
   * anything else allocates, so a model that exhausted memory gives it back and the partition can
   * report the fault and keep serving the others. The driver still sees NEEDS_RESET and must reset.
   */
  private quarantine(slot: DeviceState): void {
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
        this.host.log(LOG_ERROR, `${slot.label}: stop failed: ${String(e)}`);
      }
    }
  }

  /** Counters and device states, for `bulkhead.stats()` and the simulator; `bus` adds the transport's own counters. */
  stats(...bus: [string, number][]) {
    return {
      bus: withCounts({ ...this.counters }, ...bus),
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

  /** Queue- or device-level violation: DEVICE_NEEDS_RESET and a configuration-change notification (virtio §2.1.2). */
  markNeedsReset(slot: DeviceState, why: string, code: string): void {
    slot.count(`violation.${code}`);
    this.count(`violation.${code}`);
    slot.lastViolation = why;
    this.host.log(LOG_WARN, `${slot.label}: DEVICE_NEEDS_RESET: ${why}`);
    if (slot.needsReset) return;
    slot.status |= DEVICE_NEEDS_RESET;
    slot.kicked.fill(0);
    slot.pendingUsedEvent.fill(0);
    this.queueConfigEvent(slot);
  }

  /** Runs device code; guest faults and device-model exceptions stop only this device. */
  runDevice<T>(slot: DeviceState, fn: () => T): T | false {
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
  private runQueue(slot: DeviceState, i: number): boolean {
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
  private deviceFailed(slot: DeviceState, e: unknown): void {
    if (e instanceof GuestProtocolError) {
      this.running = null;
      this.markNeedsReset(slot, e.message, e.code);
    } else {
      this.quarantine(slot); // first: an out-of-memory model (QuickJS throws null) frees its memory here
      this.running = null;
      const detail = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
      this.host.log(LOG_ERROR, `${slot.label}: device model threw: ${detail}`);
      this.markNeedsReset(slot, `device model threw: ${e instanceof Error ? e.message : String(e)}`, 'DEVICE_MODEL_THREW');
    }
  }

  /** Runs kicked queues round-robin over devices, each within its budget. Returns true if work is left. */
  runQueues(): boolean {
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

  /** Publishes used entries of every live queue and queues a used-buffer notification where the driver wants one. */
  private flushUsed(slot: DeviceState): void {
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
}

/**
 * What every transport's pass looks like (a template: the wire's own steps are the abstract ones). Its
 * `runner` holds the devices; a transport reads what the driver wrote (`readDriver`), turns pending
 * notifications into its own (`flushEvents`, before and after the queues run, so events that waited
 * for room go first) and rings the frontend once at the end (`ringFrontend`).
 */
export abstract class RunnerTransport implements Transport {
  protected constructor(protected readonly runner: DeviceRunner) {}

  abstract boot(): void;
  abstract stats(): unknown;
  /** Reads what the driver wrote since the last pass; true if some is left for the next pass. */
  protected abstract readDriver(): boolean;
  protected abstract flushEvents(): void;
  protected abstract ringFrontend(): void;

  service(): boolean {
    this.runner.beginPass();
    this.flushEvents();
    let more = this.readDriver();
    more = this.runner.runQueues() || more;
    this.flushEvents();
    this.ringFrontend();
    return more;
  }

  serviceEvent(h: number): boolean {
    const more = this.runner.serviceDevices(h);
    return this.service() || more;
  }

  fault(kind: string, detail: string): boolean {
    this.runner.blameFault(kind, detail);
    return this.service();
  }

  stop(): void {
    this.runner.stop();
  }
}
