/**
 * faulty-test — a TEST-ONLY device model that misbehaves on request, to prove fault isolation
 * (DESIGN §6.5, docs/security.md). It is built only when a board's manifest lists `faulty-test`;
 * no shipped board does. Never put it on a production board.
 *
 * Device ID 0xFFFE (outside the virtio 1.3 §5 registry). Queues: 0 requestq. Features: none.
 * Config space: none. Each chain's first device-readable byte selects what the model does:
 *   0 FAULTY_OK     complete the chain with 0 bytes (a well-behaved request)
 *   1 FAULTY_THROW  throw a plain Error (a device-model bug)
 *   2 FAULTY_LOOP   loop forever (stopped by the runtime's watchdog)
 *   3 FAULTY_ALLOC  allocate until the runtime's memory limit stops it (garbage once stopped)
 *   4 FAULTY_LEAK   like ALLOC but keeps what it allocated until the device is reset
 *   5 FAULTY_BUFFERS keeps allocating 1 MiB typed arrays until the device is reset
 *   6 FAULTY_HOLD    keep the chain in flight (a device waiting for its backing service)
 *   7 FAULTY_RELEASE complete every held chain, newest first (out of order), then this one
 * ALLOC and LEAK allocate small objects (QuickJS's own limit counts them); BUFFERS allocates storage
 * that limit does not count in quickjs-emscripten 0.32, which the node runtime's heap guard catches.
 */
import type { Logger } from '../hal';
import type { DescriptorChain } from '../virtqueue/chain';
import { VirtioDevice } from './device';

export const VIRTIO_ID_FAULTY_TEST = 0xfffe;
export const FAULTY_OK = 0;
export const FAULTY_THROW = 1;
export const FAULTY_LOOP = 2;
export const FAULTY_ALLOC = 3;
export const FAULTY_LEAK = 4;
export const FAULTY_BUFFERS = 5;
export const FAULTY_HOLD = 6;
export const FAULTY_RELEASE = 7;

/** A linked list of small objects: what the QuickJS memory limit counts. */
interface Cell {
  n: number;
  next: Cell | null;
}

export class FaultyTestDevice extends VirtioDevice {
  readonly deviceId = VIRTIO_ID_FAULTY_TEST;
  readonly name = 'faulty-test';
  readonly numQueues = 1;
  readonly features = 0n;
  readonly configSize = 0;
  private leaked: Cell | null = null;
  private buffers: Uint8Array[] = [];
  /** Chains kept by FAULTY_HOLD (at most the queue size: they are in flight). */
  private held: DescriptorChain[] = [];
  private leakedCells = 0;
  private allocatedCells = 0;
  private served = 0;

  constructor(opts: { log: Logger }) {
    super(opts.log);
  }

  readConfig(): Uint8Array {
    return new Uint8Array(0);
  }

  processQueue(i: number, budget: number): boolean {
    const q = this.ctx?.queue(i);
    if (!q) return false;
    return this.drain(q, budget, (chain) => {
      const rd = chain.reader();
      const mode = rd.remaining > 0 ? rd.read(1)[0]! : FAULTY_OK;
      if (mode === FAULTY_THROW) throw new Error('faulty-test: device model bug (requested)');
      if (mode === FAULTY_LOOP) for (;;) this.served = (this.served + 1) | 0;
      if (mode === FAULTY_ALLOC) {
        let local: Cell | null = null;
        for (;;) local = { n: this.allocatedCells++, next: local }; // the counter keeps the bundler from dropping the loop
      }
      if (mode === FAULTY_LEAK) for (;;) this.leaked = { n: this.leakedCells++, next: this.leaked };
      if (mode === FAULTY_BUFFERS) for (;;) this.buffers.push(new Uint8Array(1 << 20).fill(1));
      this.served++;
      if (mode === FAULTY_HOLD) {
        this.held.push(chain);
        return null;
      }
      if (mode === FAULTY_RELEASE) for (let c = this.held.pop(); c; c = this.held.pop()) q.pushUsed(c, 0);
      return 0;
    });
  }

  override reset(): void {
    super.reset();
    this.leaked = null;
    this.leakedCells = 0;
    this.buffers = [];
    this.held = [];
  }

  override counters(): Record<string, number> {
    return { served: this.served, leakedCells: this.leakedCells, allocatedCells: this.allocatedCells, buffers: this.buffers.length, held: this.held.length };
  }
}
