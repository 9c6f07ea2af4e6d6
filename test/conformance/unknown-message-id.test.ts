import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrontendBus } from '../../frontend/bus';
import { P, raw, sim } from '../helpers';

test('an unknown msg_id is dropped and counted, never answered (virtio-msg §Error Signaling)', async () => {
  const s = await sim();
  assert.is(raw(s, FrontendBus.encode(0, 0x3f, 0, 9, new Uint8Array(8))).length, 0);
  assert.is(raw(s, FrontendBus.encode(P.TYPE_BUS, 0x7e, 0, 9, new Uint8Array(8))).length, 0);
  const st = s.stats();
  assert.is(st.bus['dropped.UNKNOWN_MSG_ID'], 1);
  assert.is(st.bus['dropped.UNKNOWN_BUS_MSG_ID'], 1);
  s.dispose();
});

test('a message for a device number that does not exist is dropped', async () => {
  const s = await sim();
  assert.is(raw(s, FrontendBus.encode(0, P.VIRTIO_MSG_GET_DEVICE_INFO, 42, 9)).length, 0);
  assert.is(s.stats().bus['dropped.UNKNOWN_DEVICE'], 1);
  s.dispose();
});

test.run();
