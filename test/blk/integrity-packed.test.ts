// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) with packed rings negotiated and
// asynchronous storage (requests complete out of order, so used descriptors come back out of order), on
// the simulator; test/native/shared-blk-integrity-packed.test.ts runs it on the native runtime.
import { simPacked } from '../shared/backends';
import { register } from '../shared/blk-integrity.suite';

register(simPacked, 'async');
