import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrontendBus } from '../../frontend/bus';
import { P, raw, sim } from '../helpers';

test('a message shorter than its fixed payload is dropped and counted, without an answer', async () => {
  const s = await sim();
  const out = raw(s, FrontendBus.encode(0, P.VIRTIO_MSG_SET_DEVICE_STATUS, 0, 7, new Uint8Array(2)));
  assert.is(out.length, 0, 'no answer to a truncated message');
  assert.is(s.stats().bus['dropped.TRUNCATED'], 1);
  assert.is(s.deviceStatus(0), 0, 'status unchanged');
  s.dispose();
});

test('a msg_size below the 8-byte header or above the slot size is dropped', async () => {
  const s = await sim();
  const m = FrontendBus.encode(0, P.VIRTIO_MSG_GET_DEVICE_STATUS, 0, 7);
  m[6] = 4;
  assert.is(raw(s, m).length, 0);
  const big = FrontendBus.encode(0, P.VIRTIO_MSG_GET_DEVICE_STATUS, 0, 8);
  new DataView(big.buffer).setUint16(6, 0xffff, true);
  assert.is(raw(s, big).length, 0);
  assert.is(s.stats().bus['dropped.BAD_SIZE'], 2);
  s.dispose();
});

test.run();
