import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { liveRng } from '../helpers';

test('an available index more than the queue size ahead is a violation, not a loop (virtio §2.7.13.3)', async () => {
  const { s, ring } = await liveRng(8);
  ring.setAvailIdx(9);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset);
  assert.is(dev.counters['violation.AVAIL_IDX_JUMP'], 1);
  assert.ok(s.passes < 10, `backend stayed bounded (${s.passes} passes)`);
  s.dispose();
});

test.run();
