// An interrupt unmasked without being enabled first is returned INVALID (§5.18.6.1 Set IRQ Type):
// the driver re-queues it after SET_IRQ_TYPE, as Linux's gpio-virtio does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_IRQ_STATUS_INVALID, VIRTIO_GPIO_IRQ_STATUS_VALID, VIRTIO_GPIO_MSG_SET_IRQ_TYPE } from '../../firmware/virtio';
import { arm, BUTTON0, gpioSim, liveGpio, request } from './_gpio';

test('a buffer before SET_IRQ_TYPE comes back INVALID; after it, the same line fires', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  assert.is(arm(eq!, BUTTON0, 0).status(), VIRTIO_GPIO_IRQ_STATUS_INVALID);
  request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 3);
  const e = arm(eq!, BUTTON0, 1);
  t.s.gpio().set(BUTTON0, 1);
  assert.is(e.status(), VIRTIO_GPIO_IRQ_STATUS_VALID);
  t.done();
});

test.run();
