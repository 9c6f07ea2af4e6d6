// reset-releases-queues: test/shared/conformance.suite.ts on the simulator, once per transport it holds on (test/native/shared-conformance.test.ts runs it natively).
import { sim } from '../shared/backends';
import { behaviours } from '../shared/conformance.suite';
import { everyTransport } from '../shared/suite';

everyTransport(behaviours.resetReleasesQueues, sim);
