// A device reset (status 0) drops every connection: host programs see their connections closed, a host
// client still waiting for the guest is refused, and the host listener socket stays for the next driver.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setStatus } from '../helpers';
import { counters, openVsock, VSOCK, vsockSim } from './_vsock';

test('status 0 closes the host ends of every connection', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s);
  await drv.connect(5000);
  await drv.connect(5000);
  const waiting = s.vsock().connectToGuest(9999); // nobody listens: answered later, or never
  setStatus(s, VSOCK, 0);
  assert.ok(l.connections.every((c) => c.closedByDevice), 'both host connections closed');
  assert.is(counters(s)['open'], 0);
  const again = await openVsock(s);
  assert.is(waiting!.state, 'refused', 'the waiting host client was refused');
  const sock = await again.connect(5000);
  assert.is(sock.state, 'connected', 'a new driver connects again');
  s.dispose();
});

test.run();
