import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrontendBus } from '../../frontend/bus';
import { P, negotiate, raw, sim, u32s } from '../helpers';

test('EVENT_AVAIL for a queue that is not ready is dropped and counted', async () => {
  const s = await sim();
  negotiate(s, 0);
  raw(s, FrontendBus.encode(0, P.VIRTIO_MSG_EVENT_AVAIL, 0, 0, u32s(0, 0)));
  raw(s, FrontendBus.encode(0, P.VIRTIO_MSG_EVENT_AVAIL, 0, 0, u32s(7, 0)));
  const st = s.stats();
  assert.is(st.devices[0]!.counters['dropped.NOTIFY_NOT_READY'], 2);
  assert.not.ok(st.devices[0]!.needsReset, 'an early notify is not a reason to reset');
  s.dispose();
});

test.run();
