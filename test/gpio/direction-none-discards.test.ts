// SET_DIRECTION NONE deactivates a line and the device "MUST discard all state information" of it
// (§5.18.6.2): its interrupt is disabled (a held buffer comes back INVALID), its output value is reset.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  VIRTIO_GPIO_IRQ_STATUS_INVALID,
  VIRTIO_GPIO_MSG_GET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
  VIRTIO_GPIO_MSG_SET_VALUE,
} from '../../firmware/virtio';
import { arm, BUTTON0, gpioSim, LED0, liveGpio, request } from './_gpio';

test('NONE returns the held buffer INVALID, disables the interrupt and clears the output value', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 1);
  const held = arm(eq!, BUTTON0, 0);
  request(rq, VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON0, 0);
  assert.is(held.status(), VIRTIO_GPIO_IRQ_STATUS_INVALID, 'held buffer returned');
  assert.is(arm(eq!, BUTTON0, 1).status(), VIRTIO_GPIO_IRQ_STATUS_INVALID, 'the interrupt is no longer enabled');
  request(rq, VIRTIO_GPIO_MSG_SET_VALUE, LED0, 1);
  request(rq, VIRTIO_GPIO_MSG_SET_DIRECTION, LED0, 1);
  assert.is(t.s.gpio().get(LED0).value, 1);
  request(rq, VIRTIO_GPIO_MSG_SET_DIRECTION, LED0, 0);
  assert.equal([t.s.gpio().get(LED0).direction, t.s.gpio().get(LED0).output], ['none', 0]);
  assert.is(request(rq, VIRTIO_GPIO_MSG_GET_DIRECTION, LED0).value, 0, 'GET_DIRECTION says none');
  request(rq, VIRTIO_GPIO_MSG_SET_DIRECTION, LED0, 1);
  assert.is(t.s.gpio().get(LED0).value, 0, 'an output again drives the reset value, not the old one');
  t.done();
});

test.run();
