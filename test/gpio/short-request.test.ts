// A request without its 8-byte struct virtio_gpio_request, or without a device-writable byte for the
// response, cannot be answered: DEVICE_NEEDS_RESET of the gpio device only (§5.18.6, §2.1.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_GPIO_MSG_SET_VALUE } from '../../firmware/virtio';
import { submitChain } from '../helpers';
import { GPIO_DEV, gpioReq, gpioSim, LED0, liveGpio } from './_gpio';

test('a 6-byte request marks the device NEEDS_RESET', async () => {
  const t = await gpioSim();
  const { rq } = liveGpio(t.s);
  const r = submitChain(rq, GPIO_DEV, 0, [{ bytes: gpioReq(VIRTIO_GPIO_MSG_SET_VALUE, LED0, 1).subarray(0, 6) }, { len: 2 }]);
  assert.is(r.used, null);
  assert.ok(t.s.needsReset(GPIO_DEV));
  assert.is(t.s.stats().devices[GPIO_DEV]!.counters['violation.GPIO_NO_REQUEST'], 1);
  assert.is(t.s.gpio().get(LED0).output, 0, 'nothing was set');
  assert.not.ok(t.s.needsReset(1), 'the i2c device is not affected');
  t.done();
});

test('a request without a writable byte marks the device NEEDS_RESET and is not executed', async () => {
  const t = await gpioSim();
  const { rq } = liveGpio(t.s);
  const r = submitChain(rq, GPIO_DEV, 0, [{ bytes: gpioReq(VIRTIO_GPIO_MSG_SET_VALUE, LED0, 1) }]);
  assert.is(r.used, null);
  assert.ok(t.s.needsReset(GPIO_DEV));
  assert.is(t.s.stats().devices[GPIO_DEV]!.counters['violation.GPIO_NO_RESPONSE'], 1);
  assert.is(t.s.gpio().get(LED0).output, 0);
  t.done();
});

test.run();
