// A message type outside §5.18.6's list completes with VIRTIO_GPIO_STATUS_ERR (and a zero value: the
// response is two bytes, as Linux checks); the device keeps serving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_MSG_GET_DIRECTION, VIRTIO_GPIO_STATUS_ERR, VIRTIO_GPIO_STATUS_OK } from '../../firmware/virtio';
import { GPIO_DEV, gpioSim, liveGpio, request } from './_gpio';

test('types 0, 7 and 0xffff fail with STATUS_ERR, used length 2; GET_DIRECTION still works', async () => {
  const t = await gpioSim();
  const { rq } = liveGpio(t.s);
  for (const type of [0, 7, 0xffff]) {
    const r = request(rq, type, 0);
    assert.equal([r.status, r.value, r.used?.len], [VIRTIO_GPIO_STATUS_ERR, 0, 2], `type ${type}`);
  }
  assert.is(request(rq, VIRTIO_GPIO_MSG_GET_DIRECTION, 0).status, VIRTIO_GPIO_STATUS_OK);
  assert.not.ok(t.s.needsReset(GPIO_DEV));
  assert.is(t.s.stats().devices[GPIO_DEV]!.counters['errors'], 3);
  t.done();
});

test.run();
