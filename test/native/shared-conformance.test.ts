// Every behaviour of test/shared/conformance.suite.ts on the native runtime (the simulator runs each
// from its own test/conformance/<name>.test.ts). Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { behaviours } from '../shared/conformance.suite';
import { registerAll } from '../shared/suite';

registerAll(behaviours, native);
