// SET_IRQ_TYPE is allowed only with VIRTIO_GPIO_F_IRQ negotiated (§5.18.6.1): without it the request
// fails with STATUS_ERR; the other requests work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTIO_GPIO_MSG_GET_VALUE, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, VIRTIO_GPIO_STATUS_ERR, VIRTIO_GPIO_STATUS_OK } from '../../firmware/virtio';
import { BUTTON0, gpioSim, liveGpio, request } from './_gpio';

test('without F_IRQ, SET_IRQ_TYPE fails and GET_VALUE works', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s, VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM);
  assert.is(eq, null);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 1).status, VIRTIO_GPIO_STATUS_ERR);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 0).status, VIRTIO_GPIO_STATUS_ERR, 'not even NONE');
  assert.is(request(rq, VIRTIO_GPIO_MSG_GET_VALUE, BUTTON0).status, VIRTIO_GPIO_STATUS_OK);
  t.done();
});

test.run();
