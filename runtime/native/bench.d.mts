/** One benchmark figure (DESIGN.md §7). */
export interface Figure { scenario: string; runtime: 'native'; metric: string; value: number; unit: string }
/** Runs the native benchmarks (doorbell RTT with eventfd and echo baselines, blk randread, peak RSS). */
export function benchNative(opts?: { rounds?: number }): Promise<Figure[]>;
