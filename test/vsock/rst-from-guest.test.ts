// RST from the guest aborts the connection at once: the host connection is closed, bytes still buffered
// for the host are dropped, and the slot is free for a new connection on the same ports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, openVsock, vsockSim } from './_vsock';

test('guest RST closes the host side and frees the slot', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000, { localPort: 4444 });
  drv.reset(sock);
  await drv.pump();
  assert.is(l.connections[0]!.closedByDevice, true, 'host side closed');
  assert.is(counters(s)['open'], 0);
  const again = await drv.connect(5000, { localPort: 4444 });
  assert.is(again.state, 'connected', 'the same tuple can connect again');
  assert.is(l.connections.length, 2);
  s.dispose();
});

test.run();
