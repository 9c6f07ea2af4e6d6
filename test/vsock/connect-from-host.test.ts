// A host client asking for a listening guest port (Firecracker's `CONNECT P`) reaches it: the guest sees
// a REQUEST from the host CID, the host client learns its local port once the guest accepted, and
// bytes flow both ways.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VMADDR_CID_HOST } from '../../firmware/virtio';
import { VSOCK_LOCAL_PORT_FIRST } from '../../firmware/devices/vsock';
import { counters, openVsock, vsockSim } from './_vsock';

test('host client → guest listener: open, local port from the host range, data both ways', async () => {
  const s = await vsockSim();
  const drv = await openVsock(s);
  const listener = drv.listen(7000);
  const client = s.vsock().connectToGuest(7000)!;
  assert.is(client.state, 'pending', 'pending until the guest answers');
  const sock = await listener.accept();
  assert.is(sock.peerCid, VMADDR_CID_HOST, 'from the host CID');
  await drv.until(() => client.state === 'open', 1000, () => 'the host client never learnt the guest accepted');
  assert.is(client.localPort, sock.peerPort, 'OK <port> names the source port the guest saw');
  assert.ok(client.localPort >= VSOCK_LOCAL_PORT_FIRST, 'host-initiated ports come from the local range');
  client.write('ping');
  assert.is(new TextDecoder().decode(await sock.readExactly(4)), 'ping');
  await sock.write('pong');
  await drv.pump();
  assert.is(new TextDecoder().decode(client.read()), 'pong');
  assert.is(counters(s)['hostConnects'], 1);
  s.dispose();
});

test('two host clients to the same guest port get distinct local ports', async () => {
  const s = await vsockSim();
  const drv = await openVsock(s);
  const listener = drv.listen(7000);
  const a = s.vsock().connectToGuest(7000)!;
  const b = s.vsock().connectToGuest(7000)!;
  const sa = await listener.accept();
  const sb = await listener.accept();
  await drv.until(() => a.state === 'open' && b.state === 'open', 1000, () => 'not both open');
  assert.is.not(a.localPort, b.localPort);
  assert.is.not(sa.peerPort, sb.peerPort);
  s.dispose();
});

test.run();
