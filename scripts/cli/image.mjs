// `bulkhead image --board B [--devices t1,t2] [--bundle dist/firmware.js] [--source] -o part.img`
// Builds a partition image for the native runtime (docs/image-format.md); see scripts/image.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function run(args) {
  if (!existsSync(join(root, 'build', 'bulkhead-fw')) && !args.includes('--source') && !args.includes('--help')) {
    throw new Error('images hold bytecode compiled by the native runtime: run `npm run setup:native` first (or pass --source)');
  }
  return spawnSync(process.execPath, [join(root, 'scripts', 'image.mjs'), ...args], { stdio: 'inherit' }).status ?? 1;
}
