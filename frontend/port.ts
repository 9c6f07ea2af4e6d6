/**
 * How a frontend reaches a backend: the shared window and the two doorbell lines. The simulator
 * (frontend/sim.ts) and the native runtime's ivshmem peer (runtime/native/port.mjs) both provide one,
 * so the same driver model and test suites run against either backend.
 */
export interface FrontendPort {
  /** The whole window, aliased (writes are visible to the backend). */
  readonly bytes: Uint8Array;
  /** Rings the backend's doorbell line. */
  kick(): void;
  /** Resolves true when the backend rang us since the last wait (at once if it already did), false on timeout. */
  wait(timeoutMs: number): Promise<boolean>;
  close(): void;
}
