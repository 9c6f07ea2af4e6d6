/**
 * Shared set-up for the native tier: boards derived from host-sim, a temporary directory per test,
 * and a guard that fails (not skips) when the native build is missing, so a broken setup is seen.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBuilt, ROOT, startNative } from '../../runtime/native/harness.mjs';
import type { NativeInstance, StartOptions } from '../../runtime/native/harness.mjs';

export { ROOT, startNative };
export type { NativeInstance };

export const FW = join(ROOT, 'build/bulkhead-fw');
export const BUNDLE = join(ROOT, 'dist/firmware.js');
export const FIXTURES = join(ROOT, 'test/native/fixtures');

export function requireNative(): void {
  if (!nativeBuilt()) throw new Error('native runtime not built: run npm run setup:native');
}

/** host-sim with extra devices/services and limit overrides. */
export function board(o: { devices?: object[]; services?: Record<string, object>; limits?: object; id?: number; name?: string } = {}) {
  const b = JSON.parse(readFileSync(join(ROOT, 'boards/host-sim.json'), 'utf8'));
  if (o.devices) b.devices = [...b.devices, ...o.devices];
  if (o.services) b.services = { ...b.services, ...o.services };
  if (o.limits) b.limits = { ...b.limits, ...o.limits };
  if (o.id !== undefined) b.id = o.id;
  if (o.name) b.name = o.name;
  return b;
}

/** A temporary directory (in /dev/shm when there is one) removed by `done()`. */
export function scratch() {
  const dir = mkdtempSync(join('/dev/shm', 'bulkhead-native-t-'));
  return {
    dir,
    file(name: string, bytes: Uint8Array) {
      const p = join(dir, name);
      writeFileSync(p, bytes);
      return p;
    },
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs `fn` against a started native runtime and always stops it (SIGTERM, then SIGKILL). */
export async function withNative<T>(opts: StartOptions, fn: (n: NativeInstance) => Promise<T>): Promise<T> {
  requireNative();
  const n = await startNative(opts);
  try {
    return await fn(n);
  } finally {
    await n.stop();
  }
}

export { tmpdir };
