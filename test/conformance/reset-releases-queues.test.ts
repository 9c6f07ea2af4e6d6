import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { liveRng, P, request, setStatus, u32s } from '../helpers';

test('writing status 0 releases queues and in-flight work', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE);
  ring.offer(0);
  ring.notify(0, 0);
  assert.is(ring.usedIdx(), 1);
  setStatus(s, 0, 0);
  const q = request(s, 0, P.VIRTIO_MSG_GET_VQUEUE, u32s(0))!;
  assert.is(q.getUint32(8, true), 0, 'queue size back to 0');
  const d = s.stats().devices[0]!;
  assert.is(d.status, 0);
  assert.equal(d.queues[0], { size: 0, enabled: false, live: false, inFlight: 0 });
  s.dispose();
});

test('the config generation is not reset by a device reset', async () => {
  const { s } = await liveRng(8);
  const before = request(s, 1, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 4))!.getUint32(0, true);
  setStatus(s, 1, 0);
  assert.is(request(s, 1, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 4))!.getUint32(0, true), before);
  s.dispose();
});

test.run();
