// The seeded blk integrity workload (test/shared/blk-integrity.suite.ts) on the simulator, once per transport and
// storage service (sync, async);
// test/native/shared-blk-integrity.test.ts runs it on the native runtime. BLK_SEED replays another seed.
import { sim } from '../shared/backends';
import { everyTransport } from '../shared/suite';
import { register } from '../shared/blk-integrity.suite';

for (const io of ['sync', 'async'] as const) everyTransport((kind) => register(kind, io), sim);
