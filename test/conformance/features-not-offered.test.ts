import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACKNOWLEDGE, DRIVER, FEATURES_OK, VIRTIO_F_VERSION_1 } from '../../firmware/virtio';
import { P, request, setStatus, sim, u32s } from '../helpers';

test('FEATURES_OK is refused when the driver accepts a feature the device did not offer (virtio §2.2.1)', async () => {
  const s = await sim();
  setStatus(s, 0, ACKNOWLEDGE);
  setStatus(s, 0, ACKNOWLEDGE | DRIVER);
  const f = VIRTIO_F_VERSION_1 | (1n << 5n); // bit 5 is not an rng feature
  request(s, 0, P.VIRTIO_MSG_SET_DRIVER_FEATURES, u32s(0, 2, Number(f & 0xffffffffn), Number(f >> 32n)));
  const st = setStatus(s, 0, ACKNOWLEDGE | DRIVER | FEATURES_OK);
  assert.is(st & FEATURES_OK, 0, 'FEATURES_OK not set in the answer');
  s.dispose();
});

test('FEATURES_OK is refused without VIRTIO_F_VERSION_1', async () => {
  const s = await sim();
  setStatus(s, 0, ACKNOWLEDGE);
  setStatus(s, 0, ACKNOWLEDGE | DRIVER);
  request(s, 0, P.VIRTIO_MSG_SET_DRIVER_FEATURES, u32s(0, 2, 0, 0));
  assert.is(setStatus(s, 0, ACKNOWLEDGE | DRIVER | FEATURES_OK) & FEATURES_OK, 0);
  s.dispose();
});

test('GET_DEVICE_FEATURES answers zero for blocks beyond 64 bits', async () => {
  const s = await sim();
  const a = request(s, 0, P.VIRTIO_MSG_GET_DEVICE_FEATURES, u32s(1, 3))!;
  assert.is(a.getUint32(4, true), 3);
  assert.ok(a.getUint32(8, true) & 1, 'block 1 has VERSION_1 (bit 32)');
  assert.is(a.getUint32(12, true), 0);
  assert.is(a.getUint32(16, true), 0);
  s.dispose();
});

test.run();
