// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) on the simulator;
// test/native/shared-blk-integrity.test.ts runs it on the native runtime. BLK_SEED replays another seed.
import { sim } from '../shared/backends';
import { register } from '../shared/blk-integrity.suite';

register(sim, 'sync');
register(sim, 'async');
