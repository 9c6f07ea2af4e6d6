/**
 * virtio-rng — device ID 4, virtio 1.3 §5.4.
 * Queues: 0 requestq (driver posts device-writable buffers, we fill them with entropy).
 * Features: none device-specific. Config space: none.
 * Not supported: nothing in the spec is left out; requests are capped at RNG_MAX_BYTES_PER_REQUEST
 * (the spec allows the device to fill less than the whole buffer).
 */
import type { Logger } from '../hal';
import type { EntropyService } from '../services';
import { VIRTIO_ID_RNG } from '../virtio';
import { CHAIN_RANGES } from '../virtqueue/chain';
import { VirtioDevice } from './device';

/** Bytes filled per request at most: bounds the work one chain can cost. */
export const RNG_MAX_BYTES_PER_REQUEST = 64 * 1024;

export interface RngOptions {
  entropy: EntropyService;
  log: Logger;
}

export class RngDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_RNG;
  readonly name = 'rng';
  readonly numQueues = 1;
  readonly features = 0n;
  readonly configSize = 0;
  private readonly entropy: EntropyService;
  private bytes = 0;
  private requests = 0;

  constructor(opts: RngOptions) {
    super(opts.log);
    this.entropy = opts.entropy;
  }

  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    return this.drain(q, budget, (chain) => {
      const w = chain.writer();
      const nr = w.take(Math.min(w.remaining, RNG_MAX_BYTES_PER_REQUEST));
      const r = CHAIN_RANGES;
      let filled = 0;
      for (let k = 0; k < 2 * nr; k += 2) {
        const got = this.entropy.read(r[k]!, r[k + 1]!);
        if (got <= 0) break;
        filled += got;
        if (got < r[k + 1]!) break;
      }
      this.requests++;
      this.bytes += filled;
      return filled;
    });
  }

  override counters(): Record<string, number> {
    return { requests: this.requests, bytes: this.bytes };
  }
}
