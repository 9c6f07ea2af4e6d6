// Every behaviour of test/shared/packed.suite.ts on the native runtime (the simulator runs each from its
// own test/conformance/packed-<name>.test.ts). Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { behaviours } from '../shared/packed.suite';
import { registerAll } from '../shared/suite';

registerAll(behaviours, native);
