// gpio must be below ngpio (§5.18.6): every request type on line ngpio or 0xffff fails with
// STATUS_ERR and changes no line; an eventq buffer for such a line comes back INVALID at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  VIRTIO_GPIO_IRQ_STATUS_INVALID,
  VIRTIO_GPIO_MSG_GET_DIRECTION,
  VIRTIO_GPIO_MSG_GET_VALUE,
  VIRTIO_GPIO_MSG_SET_DIRECTION,
  VIRTIO_GPIO_MSG_SET_IRQ_TYPE,
  VIRTIO_GPIO_MSG_SET_VALUE,
  VIRTIO_GPIO_STATUS_ERR,
} from '../../firmware/virtio';
import { arm, GPIO_DEV, gpioSim, LINES, liveGpio, request } from './_gpio';

test('requests on lines ≥ ngpio fail; eventq buffers for them are returned INVALID', async () => {
  const t = await gpioSim();
  const { rq, eq } = liveGpio(t.s);
  const before = t.s.gpio().list();
  for (const line of [LINES.length, 0xffff])
    for (const [type, value] of [[VIRTIO_GPIO_MSG_GET_DIRECTION, 0], [VIRTIO_GPIO_MSG_SET_DIRECTION, 1], [VIRTIO_GPIO_MSG_GET_VALUE, 0], [VIRTIO_GPIO_MSG_SET_VALUE, 1], [VIRTIO_GPIO_MSG_SET_IRQ_TYPE, 1]] as const)
      assert.is(request(rq, type, line, value).status, VIRTIO_GPIO_STATUS_ERR, `type ${type} line ${line}`);
  assert.equal(t.s.gpio().list(), before, 'no line changed');
  const e = arm(eq!, LINES.length);
  assert.equal([e.used?.len, e.status()], [1, VIRTIO_GPIO_IRQ_STATUS_INVALID]);
  assert.is(t.s.stats().devices[GPIO_DEV]!.counters['eventBad'], 1);
  assert.not.ok(t.s.needsReset(GPIO_DEV));
  t.done();
});

test.run();
