// The driver-model suite (test/shared/devices.suite.ts) against the rollup bundle inside QuickJS-WASM;
// test/native/shared-devices.test.ts runs the same suite on the native runtime.
import { sim } from '../shared/backends';
import { everyTransport } from '../shared/suite';
import { register } from '../shared/devices.suite';

everyTransport(register, sim);
