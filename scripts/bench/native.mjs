// Native runtime figures (runtime/native/bench.mjs): the raw eventfd ping-pong floor, a JS-free
// ivshmem echo peer, the doorbell round trip through the firmware and its ratios to both, the
// firmware's peak RSS, and blk 4 KiB random reads at QD32 — all measured in one run.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const runtimes = ['native'];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function run({ emit }) {
  const { nativeBuilt } = await import(pathToFileURL(join(root, 'runtime', 'native', 'harness.mjs')).href);
  if (!nativeBuilt()) throw new Error('the native runtime is not built: run `npm run setup:native`');
  const { benchNative } = await import(pathToFileURL(join(root, 'runtime', 'native', 'bench.mjs')).href);
  for (const f of await benchNative({ rounds: 5000 })) emit(f.scenario, f.metric, f.value, f.unit);
}
