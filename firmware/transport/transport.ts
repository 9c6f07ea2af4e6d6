/**
 * What a transport is to main.ts, and what it gets from it. A transport is a thin front onto the shared
 * device state machine (device-state.ts) and runner (runner.ts): it reads what the frontend wrote in
 * its own wire format, applies it to the devices' state, and announces used buffers and configuration
 * changes its own way. The transports (docs/transport.md; the board's `transport` picks one):
 *
 *   msg       virtio-msg over the window's two FIFOs (virtio-msg.ts)
 *   regblock  Jailhouse-style register blocks in the window, a write transaction word and a doorbell (regblock.ts)
 *   mmio      trapped virtio-mmio accesses forwarded as records through a ring in the window (mmio.ts)
 *
 * Every transport is the one place where guest faults of its wire are caught: nothing a frontend writes
 * can throw out of `service()`, and no device's fault touches another device.
 */
import type { Logger } from '../hal';

/** Limits of one transport instance. */
export interface TransportLimits {
  /** Chains a queue may consume per service pass (fairness between devices). */
  budgetPerQueue: number;
  /** Messages (or register transactions, access records) read per service pass. */
  messagesPerPass: number;
}

/** Host facilities a transport needs. */
export interface TransportHost {
  fence(): void;
  raise(): void;
  log: Logger;
}

/** The backend end of one window, whatever its wire. */
export interface Transport {
  /** Initialises the transport's area of the window at boot, after the header and before READY. */
  boot(): void;
  /**
   * One pass of work after a doorbell, a timer or a service event: read what the frontend wrote, run
   * kicked queues within their budgets, send notifications, ring the frontend once. True if work is left.
   */
  service(): boolean;
  /** Backing service `h` reported input, room or finished requests: let every live device that may own it look, then `service()`. */
  serviceEvent(h: number): boolean;
  /**
   * The runtime stopped the last call (watchdog or memory limit): blame the device that was running,
   * then finish the interrupted pass for the others. True if work is left, like `service()`.
   */
  fault(kind: string, detail: string): boolean;
  /** Clean shutdown: every device makes its acknowledged data durable. */
  stop(): void;
  /** Counters and device states, for `bulkhead.stats()` and the simulator. */
  stats(): unknown;
}
