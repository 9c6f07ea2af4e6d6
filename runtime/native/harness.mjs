/**
 * Starts and stops the native runtime for tests and benchmarks: an ivshmem server on a private
 * socket and POSIX shm object, build/bulkhead-fw attached to it as the backend, and (optionally) a
 * FrontendPort connected as the frontend. Everything it starts it stops, by pid.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectNative } from './port.mjs';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const FW = {
  x86_64: join(ROOT, 'build/bulkhead-fw'),
  aarch64: join(ROOT, 'build/aarch64/bulkhead-fw'),
};
export const SERVER = join(ROOT, 'build/bulkhead-ivshmem-server');

/** True when the native binaries are built (npm run setup:native). */
export function nativeBuilt() {
  return existsSync(FW.x86_64) && existsSync(SERVER) && existsSync(join(ROOT, 'build/bulkhead_port.node'));
}

let seq = 0;

/** Resolves a board name (boards/NAME.json), path, or object (written to `dir`) to { path, json }. */
export function loadBoard(board = 'host-sim', dir = tmpdir()) {
  if (typeof board === 'object' && board) {
    const path = join(dir, `board-${process.pid}-${++seq}.json`);
    writeFileSync(path, JSON.stringify(board));
    return { path, json: board };
  }
  const path = board.includes('/') || board.endsWith('.json') ? resolve(board) : join(ROOT, 'boards', `${board}.json`);
  return { path, json: JSON.parse(readFileSync(path, 'utf8')) };
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Spawns a process and collects its stderr/stdout; `exited` resolves with { code, signal }. */
export function run(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal, ...out })));
  return { child, out, exited };
}

/** Runs a command to completion: { code, signal, stdout, stderr }. */
export function runToEnd(cmd, args, opts = {}) {
  return run(cmd, args, opts).exited;
}

export const PINGPONG = join(ROOT, 'build/bulkhead-pingpong');

/**
 * The raw eventfd ping-pong floor in µs with its two processes pinned to CPUs `a` and `b` (equal: one
 * core switching between them; different: a wake-up across cores): the best of `runs` runs of
 * `rounds` round trips (other jobs only ever add to it).
 */
export async function eventfdFloor(a, b, { rounds = 5000, runs = 1 } = {}) {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const pp = await runToEnd(PINGPONG, ['eventfd', String(rounds), String(a), String(b)]);
    if (pp.code !== 0) throw new Error(`bulkhead-pingpong: ${pp.stderr}`);
    best = Math.min(best, Number(pp.stdout.trim()) / 1000);
  }
  return best;
}

async function until(pred, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Starts server + firmware. Options:
 *   board      name, path or board object (default host-sim)
 *   bundle     firmware source (default dist/firmware.js) — or image: a partition image
 *   services   { name: value } → --service name=value
 *   arch       'x86_64' (default) | 'aarch64' (runs under qemu-aarch64-static -cpu cortex-a57, no seccomp)
 *   seccomp    default true
 *   args       extra firmware arguments
 *   connect    also connect a FrontendPort (default true)
 *   readyTimeoutMs (default 10000; aarch64 emulation is slower)
 * Returns { socket, fw, port, stderr(), stats, stop(signal), kill() }.
 */
export async function startNative(opts = {}) {
  const arch = opts.arch ?? 'x86_64';
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-native-'));
  const board = loadBoard(opts.board, dir);
  const socket = join(dir, 'ivshmem.sock');
  const shm = `bulkhead-${process.pid}-${++seq}`;
  const server = run(SERVER, ['-S', socket, '-M', shm, '-l', String(board.json.window.size), '-n', '1', '-F']);
  let fw = null;
  let port = null;
  const cleanup = () => {
    port?.close();
    for (const p of [fw, server]) if (p && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(`/dev/shm/${shm}`, { force: true });
  };
  const fwArgs = [];
  if (opts.image) fwArgs.push(opts.image);
  else fwArgs.push('--bundle', opts.bundle ?? join(ROOT, 'dist/firmware.js'));
  fwArgs.push('--board', board.path, '--ivshmem', socket);
  for (const [k, v] of Object.entries(opts.services ?? {})) fwArgs.push('--service', `${k}=${v}`);
  if (opts.seccomp === false || arch === 'aarch64') fwArgs.push('--no-seccomp');
  fwArgs.push(...(opts.args ?? []));
  // (re)boots the firmware on the server's window; resolves when it runs
  const bootFw = async () => {
    fw =
      arch === 'aarch64'
        ? run('qemu-aarch64-static', ['-cpu', 'cortex-a57', FW.aarch64, ...fwArgs], { cwd: opts.cwd ?? ROOT })
        : run(FW.x86_64, fwArgs, { cwd: opts.cwd ?? ROOT });
    await until(() => / running, peer id /.test(fw.out.stderr) || fw.child.exitCode !== null, opts.readyTimeoutMs ?? 10000, 'the firmware to boot');
    if (fw.child.exitCode !== null) throw new Error(`firmware exited (${fw.child.exitCode}): ${fw.out.stderr.trim()}`);
  };
  try {
    await until(() => existsSync(socket) || server.child.exitCode !== null, 5000, 'the ivshmem server');
    if (!existsSync(socket)) throw new Error(`ivshmem server failed: ${server.out.stderr}`);
    await bootFw();
    if (opts.connect !== false) port = await connectNative({ socket });
  } catch (e) {
    cleanup();
    throw e;
  }
  /** SIGUSR1, then the JSON of the `[fw] <what>` line it makes the firmware write (runtime/native/loop.c). */
  const sigusr1Line = async (what, timeoutMs) => {
    const from = fw.out.stderr.length;
    fw.child.kill('SIGUSR1');
    const t0 = Date.now();
    const re = new RegExp(`\\[fw\\] ${what} (\\{.*\\})\\n`);
    for (;;) {
      const m = re.exec(fw.out.stderr.slice(from));
      if (m) return JSON.parse(m[1]);
      if (Date.now() - t0 > timeoutMs) throw new Error(`the firmware wrote no [fw] ${what} line after SIGUSR1`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    socket,
    shm,
    /** The firmware process (the current one, after `restart`). */
    get fw() {
      return fw.child;
    },
    server: server.child,
    port,
    /** Firmware stderr so far. */
    stderr: () => fw.out.stderr,
    stdout: () => fw.out.stdout,
    /** Firmware exit: { code, signal, stdout, stderr }. */
    get exited() {
      return fw.exited;
    },
    /**
     * Stops the firmware with `signal` (default SIGKILL: no clean stop), waits for it, and boots a fresh
     * one on the same server, so on the window the previous instance left; resolves with the old exit.
     */
    async restart(signal = 'SIGKILL') {
      if (fw.child.exitCode === null && fw.child.signalCode === null) fw.child.kill(signal);
      const r = await fw.exited;
      await bootFw();
      return r;
    },
    /** Peak resident set of the firmware process (VmHWM, bytes), while it runs. */
    peakRss() {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${fw.child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : NaN;
      } catch {
        return NaN;
      }
    },
    /**
     * Calls into the bundle so far and the time they took, per entry point ({ onInterrupt: { calls, us },
     * ... }): SIGUSR1 makes the firmware write a `[fw] calls` line (runtime/native/loop.c).
     */
    async callTimes(timeoutMs = 2000) {
      return sigusr1Line('calls', timeoutMs);
    },
    /** Each storage service's engine and counters (`[fw] storage` line after SIGUSR1, runtime/native/services.c). */
    async storageStats(timeoutMs = 2000) {
      return sigusr1Line('storage', timeoutMs);
    },
    /** Sends `signal` (default SIGTERM) to the firmware and waits for it; then stops the server. */
    async stop(signal = 'SIGTERM', timeoutMs = 10000) {
      port?.close();
      port = null;
      if (fw.child.exitCode === null && fw.child.signalCode === null) fw.child.kill(signal);
      const t = setTimeout(() => fw.child.kill('SIGKILL'), timeoutMs);
      const r = await fw.exited;
      clearTimeout(t);
      server.child.kill('SIGTERM');
      await server.exited;
      cleanup();
      return r;
    },
    kill: cleanup,
  };
}
