// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) on the native runtime, over
// 4 queues against a reference model and the image file: once per transport and storage service (sync,
// async on a memory-backed image, served inline), and asynchronous on a disk file (io_uring, msg
// transport: the storage engine does not depend on the transport). Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { everyTransport } from '../shared/suite';
import { register } from '../shared/blk-integrity.suite';

for (const io of ['sync', 'async'] as const) everyTransport((kind) => register(kind, io), native);
register(native, 'async', 'disk'); // a disk file: io_uring
