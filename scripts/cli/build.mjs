// `bulkhead build`: the firmware bundle and the host library (dist/) with rollup.
export const summary = 'bundle the firmware and the host library with rollup (dist/)';
export const description = `${summary}. Every other command does this by itself when dist/ is missing or older than its sources.`;

export function define() {}

export async function run() {
  const { build } = await import('./_bundle.mjs');
  build();
  return 0;
}
