// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) on the native runtime, over
// 4 queues against a reference model and the image file. Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { register } from '../shared/blk-integrity.suite';

register(native, 'sync');
register(native, 'async');
