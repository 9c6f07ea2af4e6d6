// A host program that shuts its write side: the guest gets SHUTDOWN(SEND) after the last byte and can
// still send; a host program that closes entirely: SHUTDOWN with both flags after its last bytes, and the
// guest's close is answered with RST (Linux answers at once when nothing is left to read).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE, VIRTIO_VSOCK_SHUTDOWN_F_SEND } from '../../firmware/virtio';
import { counters, openVsock, vsockSim } from './_vsock';

test('host half-close: the guest reads everything, sees SEND shut, and can still send', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const conn = l.connections[0]!;
  conn.write('last words');
  conn.end();
  await drv.until(() => sock.peerShutdown !== 0, 1000, () => 'no SHUTDOWN');
  assert.is(sock.peerShutdown, VIRTIO_VSOCK_SHUTDOWN_F_SEND, 'SEND only: the host still reads');
  assert.is(new TextDecoder().decode(sock.read()), 'last words', 'data before the SHUTDOWN');
  await sock.write('reply after EOF');
  assert.is(new TextDecoder().decode(conn.read()), 'reply after EOF');
  s.dispose();
});

test('host closes entirely: its last bytes, then SHUTDOWN both ways; the guest close frees the slot', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const conn = l.connections[0]!;
  conn.write('bye');
  conn.close();
  await drv.until(() => sock.peerShutdown !== 0, 1000, () => 'no SHUTDOWN');
  assert.is(sock.peerShutdown, VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE | VIRTIO_VSOCK_SHUTDOWN_F_SEND, 'both: the host neither sends nor receives');
  assert.is(new TextDecoder().decode(sock.read()), 'bye', 'bytes written before the close arrive');
  await sock.close();
  assert.is(sock.state, 'closed');
  assert.is(sock.error, null);
  assert.is(counters(s)['open'], 0, 'the slot is free');
  s.dispose();
});

test('host closes entirely with nothing unread: the guest resets at once (Linux), the slot is freed', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  l.connections[0]!.close();
  await drv.until(() => sock.state === 'closed', 1000, () => `still ${sock.state}`);
  assert.is(counters(s)['rstReceived'], 1, 'the guest answered the SHUTDOWN with RST');
  assert.is(counters(s)['open'], 0);
  s.dispose();
});

test.run();
