// mmio-bogus-offset: test/shared/mmio.suite.ts on the simulator (test/native/shared-transport-hostile.test.ts runs it natively).
import { onTransport, sim } from '../shared/backends';
import { behaviours } from '../shared/mmio.suite';

behaviours.bogusOffset(onTransport(sim, 'mmio'));
