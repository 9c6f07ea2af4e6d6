// Values outside the spec's (direction 0/1/2, value 0/1, the six IRQ types: §5.18.6) fail with
// STATUS_ERR and leave the line as it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, VIRTIO_GPIO_MSG_SET_VALUE, VIRTIO_GPIO_STATUS_ERR } from '../../firmware/virtio';
import { BUTTON0, gpioSim, LED0, liveGpio, request } from './_gpio';

test('SET_DIRECTION 3, SET_VALUE 2 and 0x101, IRQ types 5, 7, 16 fail; the host sees no change', async () => {
  const t = await gpioSim();
  const { rq } = liveGpio(t.s);
  const before = t.s.gpio().list();
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_DIRECTION, LED0, 3).status, VIRTIO_GPIO_STATUS_ERR);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_VALUE, LED0, 2).status, VIRTIO_GPIO_STATUS_ERR);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_VALUE, LED0, 0x101).status, VIRTIO_GPIO_STATUS_ERR);
  for (const type of [5, 7, 16]) assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, type).status, VIRTIO_GPIO_STATUS_ERR, `irq type ${type}`);
  assert.equal(t.s.gpio().list(), before);
  t.done();
});

test.run();
