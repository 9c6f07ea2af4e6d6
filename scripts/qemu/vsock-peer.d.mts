import type { Server } from 'node:net';

/** Bytes [from, from + n) of the check stream `seed` (test/qemu/guest/tools/vsock-test.c's). */
export function streamBytes(seed: number, from: number, n: number): Uint8Array;
export interface EchoResult { bytes: number; error: string | null; pauses: number; ended: boolean }
export function echoServer(path: string, seed: number): { connections: number; results: EchoResult[]; server: Server; close(): void };
export function connectClient(uds: string, port: number, bytes: number, seed: number, timeoutMs?: number): Promise<{ ok: boolean; detail: string; localPort: number | null; bytes: number; seconds: number }>;
