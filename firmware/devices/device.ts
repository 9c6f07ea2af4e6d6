/**
 * What a device model is to the transport. A device talks to validated virtqueues and to its backing
 * service; it never parses rings or messages and never touches the window except through a chain's
 * reader and writer.
 */
import type { Logger } from '../hal';
import type { DescriptorChain } from '../virtqueue/chain';
import type { Virtqueue } from '../virtqueue/queue';

/** What the transport gives a device while it is live (after DRIVER_OK). */
export interface DeviceContext {
  /** The negotiated features. */
  readonly features: bigint;
  /** The live queue `i`, or null while the driver has not set it up. */
  queue(i: number): Virtqueue | null;
  /** The device changed its configuration: bump the generation and send EVENT_CONFIG. */
  configChanged(): void;
  /** Ask the transport to call `processQueue(i)` again soon (e.g. a service became ready). */
  kick(i: number): void;
}

/** Base class of every device model. */
export abstract class VirtioDevice {
  /** Virtio device ID (virtio 1.3 §5). */
  abstract readonly deviceId: number;
  /** Short name for logs (`rng`, `console`, `blk`). */
  abstract readonly name: string;
  /** Number of virtqueues. */
  abstract readonly numQueues: number;
  /** Largest queue size the device accepts. */
  readonly maxQueueSize: number = 256;
  /** Device-specific feature bits offered (the transport adds VERSION_1 & co). */
  abstract readonly features: bigint;
  /** Size of the configuration space in bytes. */
  abstract readonly configSize: number;

  protected ctx: DeviceContext | null = null;

  constructor(protected readonly log: Logger) {}

  /** The whole configuration space as it is now. */
  abstract readConfig(): Uint8Array;

  /** A driver write into the configuration space; false refuses it (read-only field). */
  writeConfig(_offset: number, _data: Uint8Array): boolean {
    return false;
  }

  /** Feature dependencies beyond "subset of offered" (virtio 1.3 §2.2): false refuses FEATURES_OK. */
  acceptFeatures(_features: bigint): boolean {
    return true;
  }

  /** DRIVER_OK: the device goes live. */
  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
  }

  /** Handles buffers on queue `i`, at most `budget` chains; returns true if work is left. */
  abstract processQueue(i: number, budget: number): boolean;

  /** A backing service has input or room; returns true if the device has more to do. */
  onService(_budget: number): boolean {
    return false;
  }

  /** True when runtime service handle `h` may be one of this device's (its `onService` then runs); by default every device looks. */
  ownsService(_h: number): boolean {
    return true;
  }

  /** Queue `i` was reset (RESET_VQUEUE): drop what the device holds of it. */
  queueReset(_i: number): void {}

  /** Device reset (status 0 or NEEDS_RESET recovery): drop in-flight work, back to initial state. */
  reset(): void {
    this.ctx = null;
  }

  /** Clean shutdown: make acknowledged data durable. */
  stop(): void {}

  /** Device counters for stats. */
  counters(): Record<string, number> {
    return {};
  }

  /**
   * Pops and handles up to `budget` chains of `q`. `handle` returns the used length, or null when the
   * device keeps the chain to complete later. Returns true if the budget ran out with work left. With
   * `full`, no chain is popped while it answers true (the device holds as many as it can): the chains
   * stay in the ring and the device kicks the queue once it has room again.
   */
  protected drain(q: Virtqueue, budget: number, handle: (chain: DescriptorChain) => number | null, full?: () => boolean): boolean {
    let n = 0;
    for (;;) {
      while (n < budget) {
        if (full && full()) return false;
        const chain = q.pop();
        if (!chain) break;
        n++;
        const used = handle(chain);
        if (used !== null) q.pushUsed(chain, used);
      }
      if (n >= budget) return true;
      if (!q.armAvailEvent()) return false;
    }
  }
}
