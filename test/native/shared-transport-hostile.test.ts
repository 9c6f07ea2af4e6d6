// The register transports' own hostile cases (test/shared/regblock.suite.ts, test/shared/mmio.suite.ts)
// on the native runtime; the simulator runs each from test/hostile/<transport>-<name>.test.ts. Fails,
// not skips, without `npm run setup:native`.
import { native, onTransport } from '../shared/backends';
import { behaviours as mmio } from '../shared/mmio.suite';
import { behaviours as regblock } from '../shared/regblock.suite';
import { registerAll } from '../shared/suite';

registerAll(regblock, onTransport(native, 'regblock'));
registerAll(mmio, onTransport(native, 'mmio'));
