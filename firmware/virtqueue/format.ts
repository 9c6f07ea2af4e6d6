/**
 * The ring format of a device's queues, fixed by the features the driver accepted: packed (virtio 1.3
 * §2.8) with VIRTIO_F_RING_PACKED, split (§2.7) otherwise. The transport validates SET_VQUEUE and opens
 * live queues through here, so it never knows a ring's layout.
 */
import { VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_RING_PACKED } from '../virtio';
import type { GuestWindow } from '../window/window';
import { PackedQueue, validatePackedConfig } from './packed';
import type { QueueAddresses, Virtqueue } from './queue';
import { SplitQueue, validateSplitConfig } from './split';

/**
 * Validates a queue configuration of `size` entries for the ring format of `features` (SET_VQUEUE);
 * throws GuestProtocolError. Returns the window offsets of the three areas.
 */
export function validateQueueConfig(win: GuestWindow, features: bigint, size: number, maxSize: number, a: QueueAddresses): { desc: number; driver: number; device: number } {
  if (features & VIRTIO_F_RING_PACKED) return validatePackedConfig(win, size, maxSize, a);
  const r = validateSplitConfig(win, size, maxSize, a);
  return { desc: r.desc, driver: r.avail, device: r.used };
}

/** The live queue `index` of `size` entries at the validated addresses `a`, for the negotiated `features`. */
export function openQueue(win: GuestWindow, features: bigint, index: number, size: number, maxSize: number, a: QueueAddresses, fence: () => void): Virtqueue {
  const r = validateQueueConfig(win, features, size, maxSize, a);
  const eventIdx = (features & VIRTIO_F_RING_EVENT_IDX) !== 0n;
  const indirect = (features & VIRTIO_F_RING_INDIRECT_DESC) !== 0n;
  if (features & VIRTIO_F_RING_PACKED) return new PackedQueue(win, index, size, r.desc, r.driver, r.device, eventIdx, indirect, fence);
  return new SplitQueue(win, index, size, r.desc, r.driver, r.device, eventIdx, indirect, fence);
}
