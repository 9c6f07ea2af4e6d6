// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) on the native runtime, once per
// transport and storage service (sync, async), over 4 queues against a reference model and the image file. Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { everyTransport } from '../shared/suite';
import { register } from '../shared/blk-integrity.suite';

for (const io of ['sync', 'async'] as const) everyTransport((kind) => register(kind, io), native);
