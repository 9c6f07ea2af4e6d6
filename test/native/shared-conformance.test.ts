// Every behaviour of test/shared/conformance.suite.ts on the native runtime, once per transport it holds
// on (the simulator runs each from its own test/conformance/<name>.test.ts). Fails, not skips, without
// `npm run setup:native`.
import { native, onTransport, TRANSPORTS } from '../shared/backends';
import { behaviours } from '../shared/conformance.suite';
import { registerAll } from '../shared/suite';

for (const t of TRANSPORTS) registerAll(behaviours, onTransport(native, t));
