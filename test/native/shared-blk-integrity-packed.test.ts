// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) with packed rings negotiated and
// asynchronous storage (out-of-order completions), on the native runtime. Fails, not skips, without
// `npm run setup:native`.
import { nativePacked } from '../shared/backends';
import { register } from '../shared/blk-integrity.suite';

register(nativePacked, 'async');
