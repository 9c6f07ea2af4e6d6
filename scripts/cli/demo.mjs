// `bulkhead demo` (`npm start`, `npm start -- --transport mmio`): the embedded default; the workload is scripts/demo.mjs.
import { Option } from 'commander';
import { TRANSPORTS } from './_options.mjs';

export const summary = 'the embedded default (`npm start`): firmware on host-sim serving the frontend model, with a summary';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .option('--board <board>', 'board name (boards/NAME.json) or path whose devices the demo serves', 'host-sim')
    .addOption(new Option('--transport <transport>', "replace the board's transport (docs/transport.md)").choices(TRANSPORTS))
    .option('--quiet', 'leave out the per-device counters at the end');
}

export async function run(opts) {
  const { run: demo } = await import('../demo.mjs');
  return demo(opts);
}
