import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { liveRng } from '../helpers';

test('an available ring head ≥ queue size is a violation (virtio §2.7.6)', async () => {
  const { s, ring } = await liveRng(8);
  ring.offer(8);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset);
  assert.is(dev.counters['violation.HEAD_OUT_OF_RANGE'], 1);
  s.dispose();
});

test.run();
