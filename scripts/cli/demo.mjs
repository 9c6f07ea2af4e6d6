// `bulkhead demo` (`npm start`): the embedded default; the workload is scripts/demo.mjs.
export const summary = 'the embedded default (`npm start`): firmware on host-sim serving the frontend model, with a summary';
export const needsBundle = true;

export function define(cmd) {
  cmd.option('--quiet', 'leave out the per-device counters at the end');
}

export async function run(opts) {
  const { run: demo } = await import('../demo.mjs');
  return demo(opts);
}
