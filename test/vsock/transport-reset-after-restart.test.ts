// A backend booted over a window a previous instance left (a restart) sends one
// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET when its vsock device first goes live: the driver re-reads
// guest_cid and resets its connected sockets, while listeners stay (§5.10.6.7). A first boot sends none,
// and a later driver reset in the same boot sends none either (the driver reset the device itself).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, openVsock, vsockSim } from './_vsock';

test('first boot: no TRANSPORT_RESET', async () => {
  const s = await vsockSim();
  const drv = await openVsock(s);
  for (let i = 0; i < 3; i++) await drv.pump();
  assert.is(drv.counters.transportResets, 0);
  assert.is(counters(s)['transportResets'], undefined);
  s.dispose();
});

test('after a restart: one TRANSPORT_RESET; the guest CID is re-read; listeners keep working', async () => {
  const first = await vsockSim();
  await openVsock(first);
  const window = first.bytes.slice();
  first.dispose();
  const s = await vsockSim({ window });
  const drv = await openVsock(s);
  const listener = drv.listen(7000);
  await drv.until(() => drv.counters.transportResets === 1, 1000, () => 'no TRANSPORT_RESET');
  assert.is(counters(s)['transportResets'], 1);
  assert.is(counters(s)['transportResetOwed'], 0);
  const client = s.vsock().connectToGuest(7000)!;
  await listener.accept();
  await drv.until(() => client.state === 'open', 1000, () => 'listener did not accept after the reset');
  // The driver resets the device (a re-probe): no second event in this boot.
  const again = await openVsock(s);
  for (let i = 0; i < 3; i++) await again.pump();
  assert.is(again.counters.transportResets, 0, 'only once per boot');
  s.dispose();
});

test('a socket connected before the event: the guest resets it (ECONNRESET) and the device drops it too', async () => {
  const first = await vsockSim();
  const window = first.bytes.slice();
  first.dispose();
  // Boot over the window but let the driver connect before it posts its event buffers.
  const s = await vsockSim({ window });
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s, { eventBuffers: 0 });
  const sock = await drv.connect(5000);
  assert.is(counters(s)['transportResetOwed'], 1, 'owed while the driver has no event buffer');
  await drv.postEventBuffers(1);
  await drv.until(() => drv.counters.transportResets === 1, 1000, () => 'no event after the buffer arrived');
  assert.is(sock.state, 'closed');
  assert.is(sock.error, 'ECONNRESET');
  // Linux resets its sockets without sending anything: the device forgets its side at the same time.
  assert.is(l.connections[0]!.closedByDevice, true, 'host end closed');
  assert.is(counters(s)['open'], 0);
  assert.is(counters(s)['droppedByTransportReset'], 1);
  s.dispose();
});

test.run();
