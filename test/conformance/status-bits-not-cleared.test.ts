import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK } from '../../firmware/virtio';
import { negotiate, setStatus, sim } from '../helpers';

test('the driver cannot clear a status bit except by writing 0 (virtio §2.1.1)', async () => {
  const s = await sim();
  negotiate(s, 0);
  assert.is(setStatus(s, 0, ACKNOWLEDGE), ACKNOWLEDGE | DRIVER | FEATURES_OK, 'status unchanged');
  assert.is(s.stats().devices[0]!.counters['refused.SET_DEVICE_STATUS'], 1);
  s.dispose();
});

test('DRIVER_OK without FEATURES_OK is refused', async () => {
  const s = await sim();
  setStatus(s, 0, ACKNOWLEDGE);
  setStatus(s, 0, ACKNOWLEDGE | DRIVER);
  assert.is(setStatus(s, 0, ACKNOWLEDGE | DRIVER | DRIVER_OK) & DRIVER_OK, 0);
  s.dispose();
});

test.run();
