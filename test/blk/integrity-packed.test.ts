// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) with packed rings negotiated, on
// the simulator; test/native/shared-blk-integrity-packed.test.ts runs it on the native runtime.
import { simPacked } from '../shared/backends';
import { register } from '../shared/blk-integrity.suite';

register(simPacked);
