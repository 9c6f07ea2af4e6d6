// The driver MUST NOT add more than one pair of buffers for a line (§5.18.7.1): a second one comes
// back INVALID at once, the first stays armed and fires.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_IRQ_STATUS_INVALID, VIRTIO_GPIO_IRQ_STATUS_VALID, VIRTIO_GPIO_MSG_SET_IRQ_TYPE } from '../../firmware/virtio';
import { arm, BUTTON0, GPIO_DEV, gpioSim, liveGpio, request } from './_gpio';

test('a second eventq pair for the same line is returned INVALID; the first fires', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  request(rq, VIRTIO_GPIO_MSG_SET_IRQ_TYPE, BUTTON0, 1);
  const first = arm(eq!, BUTTON0, 0);
  const second = arm(eq!, BUTTON0, 1);
  assert.equal([second.used?.len, second.status()], [1, VIRTIO_GPIO_IRQ_STATUS_INVALID]);
  assert.is(first.status(), 0xee, 'the first is still held');
  t.s.gpio().set(BUTTON0, 1);
  assert.is(first.status(), VIRTIO_GPIO_IRQ_STATUS_VALID);
  assert.is(t.s.stats().devices[GPIO_DEV]!.counters['eventDuplicate'], 1);
  t.done();
});

test.run();
