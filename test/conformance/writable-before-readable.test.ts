import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { liveRng } from '../helpers';

test('a device-readable descriptor after a writable one is a violation (virtio §2.7.4.2)', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  ring.setDesc(1, ring.data + 16, 16, 0);
  ring.offer(0);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset);
  assert.is(dev.counters['violation.READABLE_AFTER_WRITABLE'], 1);
  assert.equal([...s.bytes.subarray(ring.data, ring.data + 16)], new Array(16).fill(0), 'nothing written into the chain');
  s.dispose();
});

test.run();
