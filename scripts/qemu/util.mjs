// Small process and cache helpers shared by the QEMU runner (run.mjs) and the guest kits (guest-kit.mjs).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CACHE = path.join(ROOT, '.cache/qemu');

/** Runs a command to completion; throws with its output's tail unless it exits 0 (or opts.allowFail). */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${(r.stderr || '').slice(-2000)}${(r.stdout || '').slice(-1000)}`);
  return r;
}

/** The path of a command on PATH, or null. */
export function which(bin) {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** A short cache key over strings and buffers. */
export function hashOf(parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : p).update('\0');
  return h.digest('hex').slice(0, 16);
}
