// Shared by the bench scenarios (files starting with `_` are helpers, not scenarios).
import { nonNegative, positive } from '../cli/_options.mjs';

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

/** The options every loadgen scenario takes (bench's --help lists them once). */
export const LOADGEN_OPTIONS = [
  ['--loadgen-seconds <s>', 'measured seconds per loadgen scenario, after a warm-up of S/5', positive, 1],
  ['--spin', 'the loadgen spins instead of sleeping on its eventfd'],
  ['--pin', 'backend on CPU 0, loadgen on CPU 1 (helps only on an otherwise idle machine)'],
  ['--busy-poll <us>', 'the firmware polls that long after each event before sleeping (bulkhead-fw --busy-poll)', nonNegative, 0],
];

/** The loadgen options as the seconds, the extra loadgen arguments and the extra firmware arguments. */
export function loadgenOptions(opts) {
  const extra = [...(opts.spin ? ['--spin'] : []), ...(opts.pin ? ['--cpu', '1', '--pin-backend', '0'] : [])];
  const fwArgs = opts.busyPoll > 0 ? ['--busy-poll', String(opts.busyPoll)] : [];
  return { seconds: opts.loadgenSeconds, extra, fwArgs };
}
