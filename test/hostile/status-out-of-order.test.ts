import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK } from '../../firmware/virtio';
import { assertHealthy, hostile, RNG } from './harness';

test('status written out of order never makes a device live (virtio §3.1.1)', async () => {
  const { sim, drv, area } = await hostile();
  assert.is(drv.setStatus(RNG, DRIVER_OK), 0, 'DRIVER_OK alone accepted');
  assert.is(drv.setStatus(RNG, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK) & DRIVER_OK, 0, 'DRIVER_OK without a prior FEATURES_OK accepted');
  drv.setStatus(RNG, 0);
  assert.is(drv.setStatus(RNG, DRIVER), 0, 'DRIVER without ACKNOWLEDGE accepted');
  drv.setStatus(RNG, ACKNOWLEDGE);
  // SET_VQUEUE before FEATURES_OK is refused.
  drv.setQueue(RNG, 0, 8, area(0), area(0) + 128, area(0) + 4096);
  assert.is(drv.queueSize(RNG, 0), 0, 'a queue was configured before FEATURES_OK');
  // EVENT_AVAIL to a device that is not live is ignored, not processed.
  drv.notify(RNG, 0);
  assert.is(sim.stats().devices[RNG]!.counters['dropped.NOTIFY_NOT_READY'], 1, 'notify before DRIVER_OK not dropped');
  // Statuses above 8 bits or with NEEDS_RESET set by the driver are refused.
  assert.is(drv.setStatus(RNG, 0x1ff), ACKNOWLEDGE, 'status above 0xff accepted');
  assert.is(drv.setStatus(RNG, ACKNOWLEDGE | 64), ACKNOWLEDGE, 'driver set DEVICE_NEEDS_RESET');
  assertHealthy(sim, RNG, 'after refused status writes');
  sim.dispose();
});

test.run();
