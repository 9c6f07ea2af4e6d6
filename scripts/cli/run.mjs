// `bulkhead run part.img --board B --ivshmem SOCKET [--service name=value]… [--arch aarch64]`
// Runs a partition image on the native runtime (build/bulkhead-fw; flags in docs/native.md).
// With --arch aarch64 the cross-built firmware runs under qemu-aarch64-static -cpu cortex-a57.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function run(args) {
  const a = args.indexOf('--arch');
  const arch = a >= 0 ? args[a + 1] : 'x86_64';
  const rest = a >= 0 ? [...args.slice(0, a), ...args.slice(a + 2)] : args;
  const fw = arch === 'aarch64' ? join(root, 'build', 'aarch64', 'bulkhead-fw') : join(root, 'build', 'bulkhead-fw');
  if (!['x86_64', 'aarch64'].includes(arch)) throw new Error(`--arch must be x86_64 or aarch64, not ${arch}`);
  if (!existsSync(fw)) throw new Error(`${fw} is not built: run \`npm run setup:native\``);
  const [cmd, argv] = arch === 'aarch64' ? ['qemu-aarch64-static', ['-cpu', 'cortex-a57', fw, ...rest]] : [fw, rest];
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? (r.signal ? 128 : 1);
}
