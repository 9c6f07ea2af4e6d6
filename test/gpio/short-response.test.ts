// A response buffer with room for the status but not the value (or, for GET_LINE_NAMES, not the whole
// names block) gets STATUS_ERR in its one byte: used length 1, and the request is not executed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_MSG_GET_LINE_NAMES, VIRTIO_GPIO_MSG_SET_VALUE, VIRTIO_GPIO_STATUS_ERR, VIRTIO_GPIO_STATUS_OK } from '../../firmware/virtio';
import { gpioSim, LED0, LINES, liveGpio, request } from './_gpio';

test('a one-byte response: STATUS_ERR, used 1, nothing set; a short names buffer: STATUS_ERR', async () => {
  const t = await gpioSim();
  const { rq } = liveGpio(t.s);
  const a = request(rq, VIRTIO_GPIO_MSG_SET_VALUE, LED0, 1, 1);
  assert.equal([a.status, a.used?.len], [VIRTIO_GPIO_STATUS_ERR, 1]);
  assert.is(t.s.gpio().get(LED0).output, 0);
  const namesSize = LINES.reduce((n, l) => n + l.length + 1, 0);
  const short = request(rq, VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, namesSize);
  assert.equal([short.status, short.used?.len], [VIRTIO_GPIO_STATUS_ERR, 2]);
  const ok = request(rq, VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, 1 + namesSize);
  assert.equal([ok.status, ok.used?.len], [VIRTIO_GPIO_STATUS_OK, 1 + namesSize]);
  t.done();
});

test.run();
