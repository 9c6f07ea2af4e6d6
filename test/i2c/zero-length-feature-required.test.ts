// The device MUST reject a driver that does not negotiate VIRTIO_I2C_F_ZERO_LENGTH_REQUEST
// (virtio §5.19.6.2): FEATURES_OK does not stick without it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import { negotiate } from '../helpers';
import { I2C_DEV, I2C_FEATURES, i2cSim } from './_i2c';

test('FEATURES_OK is refused without ZERO_LENGTH_REQUEST and accepted with it', async () => {
  const t = await i2cSim();
  assert.is(negotiate(t.s, I2C_DEV, VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM) & FEATURES_OK, 0, 'refused');
  assert.is(negotiate(t.s, I2C_DEV, I2C_FEATURES) & FEATURES_OK, FEATURES_OK, 'accepted');
  t.done();
});

test.run();
