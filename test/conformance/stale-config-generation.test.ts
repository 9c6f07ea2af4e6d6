// stale-config-generation: test/shared/conformance.suite.ts on the simulator (test/native/shared-conformance.test.ts runs it natively).
import { sim } from '../shared/backends';
import { behaviours } from '../shared/conformance.suite';

behaviours.staleConfigGeneration(sim);
