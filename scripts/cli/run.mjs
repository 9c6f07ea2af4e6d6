// `bulkhead run IMAGE`: a partition image on the native runtime (build/bulkhead-fw; docs/native.md).
// With --arch aarch64 the cross-built firmware runs under qemu-aarch64-static -cpu cortex-a57.
import { Option } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './_bundle.mjs';
import { collect, nonNegative } from './_options.mjs';

export const summary = 'run a partition image on the native runtime (the partition firmware)';

export function define(cmd) {
  cmd
    .argument('<image>', 'the partition image (bulkhead image -o …)')
    .requiredOption('--board <board>', 'the board this partition runs on: its name must match the image (boards/NAME.json or a path)')
    .option('--ivshmem <socket>', "the ivshmem server's unix socket (the window and doorbells); without it, --shm")
    .option('--shm <file>', 'a file (e.g. /dev/shm/NAME) as the window, for tests without an ivshmem server')
    .option('--uio <device>', 'an ivshmem-doorbell device inside a VM: /dev/uioN (runtime/native/linux/bulkhead_uio.ko)')
    .option('--service <name=value>', "override a service's backing: disk0=PATH[,ro][,direct][,sync|,async] (or ro:PATH); console0=stdio|null|pty|unix:PATH; net0=tap:IF|switch:NAME; gpio0=unix:PATH (its control socket); an i2c target's name=PATH (a 24c02's file) (repeatable)", collect, [])
    .addOption(new Option('--aio <engine>', 'asynchronous storage engine: auto (inline for an image on tmpfs, else io_uring where the kernel allows it, else a thread pool), threads, or uring (io_uring for every image); BULKHEAD_AIO too').choices(['auto', 'threads', 'uring']))
    .option('--busy-poll <us>', "poll this many microseconds after each event before sleeping (default: the board's runtime.busyPollUs)", nonNegative)
    .option('--log-level <n>', 'log level: 0 errors … 3 debug', (v) => String(Number(v)))
    .option('--no-seccomp', 'do not lock down with seccomp (debugging only)')
    .option('--record <file.bhtrace>', 'write a trace of everything that enters the firmware (`bulkhead replay` re-runs it; docs/trace-format.md)')
    .option('--check', 'verify the image against this runtime and board, then exit')
    .option('--arch <arch>', 'x86_64, or aarch64 (the cross-built firmware under qemu-aarch64-static)', 'x86_64');
}

export function run(o, [image]) {
  if (!['x86_64', 'aarch64'].includes(o.arch)) throw new Error(`--arch must be x86_64 or aarch64, not ${o.arch}`);
  const fw = o.arch === 'aarch64' ? join(ROOT, 'build', 'aarch64', 'bulkhead-fw') : join(ROOT, 'build', 'bulkhead-fw');
  if (!existsSync(fw)) throw new Error(`${fw} is not built: run \`npm run setup:native\``);
  const args = o.check ? ['--check', image, '--board', o.board] : [image, '--board', o.board];
  for (const k of ['ivshmem', 'shm', 'uio']) if (o[k]) args.push(`--${k}`, o[k]);
  for (const s of o.service) args.push('--service', s);
  if (o.busyPoll !== undefined) args.push('--busy-poll', String(o.busyPoll));
  if (o.aio) args.push('--aio', o.aio);
  if (o.record) args.push('--record', o.record);
  if (o.logLevel !== undefined) args.push('--log-level', o.logLevel);
  if (!o.seccomp) args.push('--no-seccomp');
  const [cmd, argv] = o.arch === 'aarch64' ? ['qemu-aarch64-static', ['-cpu', 'cortex-a57', fw, ...args]] : [fw, args];
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? (r.signal ? 128 : 1);
}
