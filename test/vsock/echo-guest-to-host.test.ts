// A guest connection to host port P reaches the host program listening on P; 2 MiB go each way
// through an echoing host program and arrive exactly once, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, echo, openVsock, vsockSim } from './_vsock';

test('guest → host echo, 2 MiB each way, every byte checked', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  const l = host.listen(5000, (c) => (c.onData = (cc) => cc.write(cc.read())));
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  assert.is(l.connections.length, 1, 'the host program accepted one connection');
  const total = 2 << 20;
  await echo(drv, sock, { seed: 7, total });
  assert.is(l.connections[0]!.received, total, 'the host program received every byte once');
  assert.is(drv.counters.creditOverruns, 0, 'the device never sent beyond the guest credit');
  const c = counters(s);
  assert.is(c['bytesToHost'], total);
  assert.is(c['bytesToGuest'], total);
  s.dispose();
});

test.run();
