import type { ChildProcess } from 'node:child_process';
import type { NativePort } from './port.mjs';

export const ROOT: string;
export const FW: { x86_64: string; aarch64: string };
export const SERVER: string;
export interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
export interface StartOptions {
  board?: string | object;
  bundle?: string;
  image?: string;
  services?: Record<string, string>;
  arch?: 'x86_64' | 'aarch64';
  seccomp?: boolean;
  args?: string[];
  connect?: boolean;
  readyTimeoutMs?: number;
  cwd?: string;
}
export interface NativeInstance {
  socket: string;
  shm: string;
  fw: ChildProcess;
  server: ChildProcess;
  port: NativePort | null;
  stderr(): string;
  stdout(): string;
  exited: Promise<Exit>;
  peakRss(): number;
  /** Calls into the bundle and their time per entry point so far (SIGUSR1 → `[fw] calls`). */
  callTimes(timeoutMs?: number): Promise<Record<string, { calls: number; us: number }>>;
  /** Stops the firmware (default SIGKILL), boots a fresh one on the same window; the old one's exit. */
  restart(signal?: NodeJS.Signals): Promise<Exit>;
  /** Per storage service: io (sync/async), engine (io_uring/threads/none), direct, blockSize and request, cancel, error and bounce counters. */
  storageStats(timeoutMs?: number): Promise<Record<string, { io: string; engine: string; direct: boolean; blockSize: number; submitted: number; completed: number; cancelled: number; errors: number; peakInFlight: number; bounced: number; bouncedBytes: number }>>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  kill(): void;
}
/** True when build/bulkhead-fw, the ivshmem server and the port addon are built. */
export function nativeBuilt(): boolean;
export function loadBoard(board?: string | object, dir?: string): { path: string; json: any };
export function run(cmd: string, args: string[], opts?: object): { child: ChildProcess; out: { stdout: string; stderr: string }; exited: Promise<Exit> };
export function runToEnd(cmd: string, args: string[], opts?: object): Promise<Exit>;
export const PINGPONG: string;
/** The eventfd ping-pong floor (µs) pinned to CPUs a and b: the best of `runs` runs of `rounds` round trips. */
export function eventfdFloor(a: number, b: number, opts?: { rounds?: number; runs?: number }): Promise<number>;
/** Starts an ivshmem server and the firmware on it, and connects a FrontendPort (unless connect: false). */
export function startNative(opts?: StartOptions): Promise<NativeInstance>;
