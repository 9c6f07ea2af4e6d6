import type { FrontendPort } from '../../frontend/port';

/** A FrontendPort over an ivshmem server, plus the peer bookkeeping the native tier uses. */
export interface NativePort extends FrontendPort {
  readonly peerId: number;
  peers(): number[];
  /** Rings one given peer's vector 0. */
  kickPeer(id: number): void;
}
/** Connects to an ivshmem server as the frontend peer. */
export function connectNative(opts: { socket: string }): Promise<NativePort>;
/** True when build/bulkhead_port.node is built. */
export function nativePortAvailable(): boolean;
