// After a restart the device owes the driver a TRANSPORT_RESET; a driver that never posts event buffers
// keeps a working device: the event stays owed (one flag, nothing queued) and connections still work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, VIRTIO_VSOCK_OP_RW } from '../../firmware/virtio';
import { counters, vsockSim } from './_vsock';
import { rawConnection } from './_connect';

test('no event buffers: the reset stays owed, the device serves; a buffer posted later gets it', async () => {
  const first = await vsockSim();
  const window = first.bytes.slice();
  first.dispose();
  const s = await vsockSim({ window });
  const { d, conn } = rawConnection(s);
  for (let k = 0; k < 50; k++) d.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1000 }, new Uint8Array(100).fill(k));
  assert.is(conn.received, 5000, 'data flows');
  assert.is(counters(s)['transportResetOwed'], 1, 'still owed');
  assert.is(d.eventsReceived().length, 0);
  d.postEvents(1);
  assert.equal(d.eventsReceived(), [VIRTIO_VSOCK_EVENT_TRANSPORT_RESET], 'delivered once a buffer came');
  assert.is(counters(s)['transportResetOwed'], 0);
  assert.is(conn.closedByDevice, true, 'the connection made before the event is dropped with it');
  d.postEvents(1);
  assert.equal(d.eventsReceived(), [], 'only once');
  s.dispose();
});

test.run();
