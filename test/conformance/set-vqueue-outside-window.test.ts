import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { negotiate, P, request, sim, u32s } from '../helpers';

test('SET_VQUEUE with a ring outside the window is refused and the queue stays unset', async () => {
  const s = await sim();
  negotiate(s, 0);
  const end = s.layout.windowSize;
  const a = request(s, 0, P.VIRTIO_MSG_SET_VQUEUE, u32s(0, 0, 8, 0, end - 64, 0, s.layout.poolOffset + 4096, 0, s.layout.poolOffset + 8192, 0));
  assert.ok(a, 'SET_VQUEUE is answered (so a driver does not hang)');
  const q = request(s, 0, P.VIRTIO_MSG_GET_VQUEUE, u32s(0))!;
  assert.is(q.getUint32(8, true), 0, 'GET_VQUEUE shows no size: the queue was not configured');
  const dev = s.stats().devices[0]!;
  assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
  assert.is(dev.counters['refused.SET_VQUEUE'], 1);
  s.dispose();
});

test('SET_VQUEUE with a size that is not a power of two is refused', async () => {
  const s = await sim();
  negotiate(s, 0);
  const p = s.layout.poolOffset;
  request(s, 0, P.VIRTIO_MSG_SET_VQUEUE, u32s(0, 0, 12, 0, p, 0, p + 4096, 0, p + 8192, 0));
  assert.is(request(s, 0, P.VIRTIO_MSG_GET_VQUEUE, u32s(0))!.getUint32(8, true), 0);
  assert.is(s.stats().devices[0]!.counters['violation.QUEUE_SIZE'], 1);
  s.dispose();
});

test.run();
