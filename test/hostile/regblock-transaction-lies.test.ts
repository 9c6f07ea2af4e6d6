// regblock-transaction-lies: test/shared/regblock.suite.ts on the simulator (test/native/shared-transport-hostile.test.ts runs it natively).
import { onTransport, sim } from '../shared/backends';
import { behaviours } from '../shared/regblock.suite';

behaviours.transactionLies(onTransport(sim, 'regblock'));
