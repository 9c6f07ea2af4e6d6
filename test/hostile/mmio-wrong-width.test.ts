// mmio-wrong-width: test/shared/mmio.suite.ts on the simulator (test/native/shared-transport-hostile.test.ts runs it natively).
import { onTransport, sim } from '../shared/backends';
import { behaviours } from '../shared/mmio.suite';

behaviours.wrongWidth(onTransport(sim, 'mmio'));
