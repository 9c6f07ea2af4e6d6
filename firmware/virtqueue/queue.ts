/**
 * What a device model sees of a live virtqueue, whichever ring format the driver negotiated: the split
 * ring (virtio 1.3 §2.7, split.ts) or the packed ring (§2.8, packed.ts). Both hand out validated
 * `DescriptorChain`s (chain.ts) and take them back with a used length; a device never parses a ring.
 */
import type { DescriptorChain } from './chain';

/** Ring addresses as the frontend gave them in SET_VQUEUE: 64-bit values in u32 halves. */
export interface QueueAddresses {
  /** Split: descriptor table. Packed: descriptor ring. */
  descLo: number;
  descHi: number;
  /** Split: available ring. Packed: driver event suppression. */
  driverLo: number;
  driverHi: number;
  /** Split: used ring. Packed: device event suppression. */
  deviceLo: number;
  deviceHi: number;
}

/** The device side of one live virtqueue. */
export interface Virtqueue {
  /** Queue index within its device. */
  readonly index: number;
  /** Number of entries (descriptors) the driver configured. */
  readonly size: number;
  /** Chains handed out by `pop()` and not yet returned by `pushUsed()`. */
  readonly inFlightCount: number;
  /**
   * The next validated chain, or null when the driver has made nothing more available. Throws
   * GuestProtocolError on a queue-level violation (the transport then marks the device NEEDS_RESET).
   */
  pop(): DescriptorChain | null;
  /**
   * True when a `pop()` would return a chain (or throw): what the driver made available is read once
   * and kept, so the answer and the next `pop()` agree whatever the driver writes in between.
   */
  hasAvailable(): boolean;
  /** Returns a chain with `len` bytes written (≤ its writable bytes); visible after `publishUsed()`. */
  pushUsed(chain: DescriptorChain, len: number): void;
  /** Makes the chains pushed since the last call visible; true when the driver wants a used buffer notification. */
  publishUsed(): boolean;
  /**
   * The device is about to wait: asks for an available buffer notification for the next buffer (with
   * VIRTIO_F_RING_EVENT_IDX) and returns true if more arrived meanwhile (the caller keeps going).
   */
  armAvailEvent(): boolean;
}
