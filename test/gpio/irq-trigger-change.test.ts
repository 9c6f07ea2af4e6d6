// To change the trigger of an enabled interrupt the driver MUST disable it first (§5.18.6.1): a direct
// change fails with STATUS_ERR and the old trigger stays; the same trigger again is accepted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_IRQ_STATUS_VALID, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, VIRTIO_GPIO_STATUS_ERR, VIRTIO_GPIO_STATUS_OK } from '../../firmware/virtio';
import { arm, BUTTON0, gpioSim, liveGpio, request } from './_gpio';

test('RISING → FALLING without NONE fails; RISING stays in force', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 1).status, VIRTIO_GPIO_STATUS_OK);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 1).status, VIRTIO_GPIO_STATUS_OK, 'the same trigger again');
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 2).status, VIRTIO_GPIO_STATUS_ERR);
  const e = arm(eq!, BUTTON0);
  t.s.gpio().set(BUTTON0, 1);
  assert.is(e.status(), VIRTIO_GPIO_IRQ_STATUS_VALID, 'a rising edge still fires');
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 0).status, VIRTIO_GPIO_STATUS_OK);
  assert.is(request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 2).status, VIRTIO_GPIO_STATUS_OK, 'after NONE the change is fine');
  t.done();
});

test.run();
