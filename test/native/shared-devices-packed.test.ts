// The driver-model suite (test/shared/devices.suite.ts) with packed rings negotiated, on the native
// runtime across the process boundary. Fails, not skips, without `npm run setup:native`.
import { nativePacked } from '../shared/backends';
import { register } from '../shared/devices.suite';
import { everyTransport } from '../shared/suite';

everyTransport(register, nativePacked);
