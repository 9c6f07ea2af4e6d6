// `bulkhead image`: a partition image for the native runtime (docs/image-format.md); the builder is
// scripts/image.mjs (buildImage, parseImage).
import { Option } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ensureBundle } from './_bundle.mjs';

export const summary = 'build a partition image: header, capability manifest, firmware bytecode, SHA-256';

export function define(cmd) {
  cmd
    .requiredOption('-o, --output <file>', 'the image file to write')
    .option('--board <board>', 'board name (boards/NAME.json) or path', 'host-sim')
    .option('--devices <types>', "keep only these of the board's devices, e.g. rng,console (default: all)")
    .option('--bundle <file>', 'the firmware bundle (default: dist/firmware.js, built when missing or stale)')
    .option('--source', 'store the bundle source instead of bytecode (no native runtime needed to build)')
    .addOption(new Option('--fw <binary>', 'the native runtime that compiles the bytecode').default(join(ROOT, 'build', 'bulkhead-fw'), 'build/bulkhead-fw'));
}

export async function run(o) {
  if (!o.source && !existsSync(o.fw)) throw new Error(`images hold bytecode compiled by the native runtime: ${o.fw} is missing (run \`npm run setup:native\`, or pass --source)`);
  const { stages } = await import('../progress.mjs');
  const p$ = stages({ title: 'image', total: 2 });
  if (!o.bundle) await p$.stage('bundle', () => ensureBundle());
  const { buildImage, parseImage } = await import('../image.mjs');
  const img = await p$.stage(o.source ? 'manifest + source + SHA-256' : 'bytecode (native runtime) + manifest + SHA-256', () => buildImage(o));
  p$.done();
  const p = parseImage(img);
  console.log(`${o.output}: ${img.length} bytes, board ${p.manifest.board.name} (id ${p.header.boardId}), devices ${p.manifest.board.devices.map((d) => d.type).join(',')}, ${p.manifest.firmware.kind} ${p.firmware.length} bytes (${p.manifest.engine})`);
  return 0;
}
