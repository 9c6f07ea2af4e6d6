// The driver-model suite (test/shared/devices.suite.ts) on the native runtime, across the process
// boundary. Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { everyTransport } from '../shared/suite';
import { register } from '../shared/devices.suite';

everyTransport(register, native);
