// packed-wrap-laps: test/shared/packed.suite.ts on the simulator (test/native/shared-packed.test.ts runs it natively).
import { sim } from '../shared/backends';
import { behaviours } from '../shared/packed.suite';

behaviours.packedWrapLaps(sim);
