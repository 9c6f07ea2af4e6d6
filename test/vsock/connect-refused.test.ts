// Nobody listening is a refusal either way: a guest connect to a host port without a host program is
// answered with RST (ECONNREFUSED); a host client for a guest port without a listener is refused (it
// sees the connection closed without OK, as Firecracker's clients do).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, openVsock, vsockSim } from './_vsock';

test('guest → host port nobody listens on: ECONNREFUSED', async () => {
  const s = await vsockSim();
  const drv = await openVsock(s);
  let err = '';
  await drv.connect(5999).catch((e: Error) => (err = e.message));
  assert.match(err, /ECONNREFUSED/);
  assert.is(counters(s)['rst.refused'], 1);
  assert.is(counters(s)['open'], 0, 'nothing held');
  s.dispose();
});

test('host client → guest port nobody listens on: refused, the slot is free again', async () => {
  const s = await vsockSim();
  const drv = await openVsock(s);
  const client = s.vsock().connectToGuest(7777)!;
  await drv.until(() => client.state !== 'pending', 1000, () => 'still pending');
  assert.is(client.state, 'refused');
  assert.is(client.closedByDevice, true);
  assert.is(counters(s)['open'], 0);
  assert.is(s.vsock().connections().length, 0, 'the runtime closed it');
  s.dispose();
});

test.run();
