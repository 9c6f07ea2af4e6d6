// The driver MUST NOT send IRQ messages for a line configured for output (§5.18.6.1): such a
// SET_IRQ_TYPE fails with STATUS_ERR and no interrupt is enabled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_IRQ_STATUS_INVALID, VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, VIRTIO_GPIO_STATUS_ERR } from '../../firmware/virtio';
import { arm, gpioSim, LED0, liveGpio, request } from './_gpio';

test('SET_IRQ_TYPE on an output line fails; a buffer for it comes back INVALID (never enabled)', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  request(rq, VIRTIO_GPIO_MSG_SET_DIRECTION, LED0, 1);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, LED0, 3).status, VIRTIO_GPIO_STATUS_ERR);
  assert.is(arm(eq!, LED0).status(), VIRTIO_GPIO_IRQ_STATUS_INVALID);
  t.done();
});

test.run();
