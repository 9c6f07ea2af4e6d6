// Shared by the bench scenarios (files starting with `_` are helpers, not scenarios).

/** The board the net scenarios use: host-sim's rng and console plus two net devices on switch sw0. */
export const TWO_NICS = {
  devices: [
    { type: 'rng', service: 'entropy0' },
    { type: 'console', service: 'console0' },
    { type: 'net', service: 'net0', mac: '52:54:00:00:00:01' },
    { type: 'net', service: 'net1', mac: '52:54:00:00:00:02' },
  ],
  services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
};

/**
 * The options every loadgen scenario takes: `--loadgen-seconds S` (measured seconds, default 1),
 * `--spin` (the loadgen spins instead of sleeping), `--pin` (backend on CPU 0, loadgen on CPU 1),
 * `--busy-poll US` (the firmware polls that long after each event before sleeping: bulkhead-fw
 * --busy-poll). Returns the seconds, the extra loadgen arguments and the extra firmware arguments.
 */
export function loadgenOptions(args) {
  const si = args.indexOf('--loadgen-seconds');
  const seconds = si >= 0 ? Number(args[si + 1]) : 1;
  if (!(seconds > 0)) throw new Error('--loadgen-seconds must be a positive number');
  const extra = [...(args.includes('--spin') ? ['--spin'] : []), ...(args.includes('--pin') ? ['--cpu', '1', '--pin-backend', '0'] : [])];
  const bi = args.indexOf('--busy-poll');
  const busyPollUs = bi >= 0 ? Number(args[bi + 1]) : 0;
  if (!(busyPollUs >= 0)) throw new Error('--busy-poll takes microseconds (0 or more)');
  const fwArgs = busyPollUs > 0 ? ['--busy-poll', String(busyPollUs)] : [];
  return { seconds, extra, fwArgs };
}

/**
 * `--ring split|packed|split,packed` (default split): the virtqueue formats a scenario measures, side by
 * side in one run. Returns the list and the scenario-name suffix of each (`-packed`; split keeps the
 * plain name, so existing figures keep theirs).
 */
export function ringsOption(args) {
  const i = args.indexOf('--ring');
  const rings = i >= 0 ? String(args[i + 1] ?? '').split(',') : ['split'];
  for (const r of rings) if (r !== 'split' && r !== 'packed') throw new Error(`--ring takes split, packed or split,packed, not ${args[i + 1]}`);
  return rings;
}

/** The scenario name for `ring` (`name` for split, `name-packed` for packed). */
export function ringScenario(name, ring) {
  return ring === 'split' ? name : `${name}-${ring}`;
}
