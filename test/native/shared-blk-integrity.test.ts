// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) on the native runtime, over
// 4 queues against a reference model and the image file; asynchronous on a memory-backed image (served
// inline) and on a disk file (io_uring). Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { register } from '../shared/blk-integrity.suite';

register(native, 'sync');
register(native, 'async'); // /dev/shm: the inline engine
register(native, 'async', 'disk'); // a disk file: io_uring
