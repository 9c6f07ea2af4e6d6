import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { liveRng } from '../helpers';

test('a descriptor chain that loops marks the device NEEDS_RESET (virtio §2.7.5.2)', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  ring.setDesc(1, ring.data + 16, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
  ring.offer(0);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset, 'device should be NEEDS_RESET after a looping chain');
  assert.is(dev.counters['violation.CHAIN_LOOP'], 1, 'violation counted as CHAIN_LOOP');
  assert.is(ring.usedIdx(), 0, 'nothing completed from a looping chain');
  s.dispose();
});

test.run();
