// SHUTDOWN from the guest (§5.10.6.5): SEND means the host program sees EOF after the last byte and can
// still answer; the connection ends with RST once both directions are shut.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_SHUTDOWN_F_SEND } from '../../firmware/virtio';
import { counters, openVsock, vsockSim } from './_vsock';

test('guest shuts its send side: host EOF after the data, the host still answers, then a clean close', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const conn = l.connections[0]!;
  sock.send('request');
  sock.shutdown(VIRTIO_VSOCK_SHUTDOWN_F_SEND);
  await drv.until(() => conn.guestEnded, 1000, () => 'no EOF on the host side');
  assert.is(new TextDecoder().decode(conn.read()), 'request', 'every byte before the EOF');
  conn.write('answer');
  conn.end();
  const a = await sock.readExactly(6);
  assert.is(new TextDecoder().decode(a), 'answer', 'the other direction still works');
  await drv.until(() => (sock.peerShutdown & VIRTIO_VSOCK_SHUTDOWN_F_SEND) !== 0, 1000, () => 'no SHUTDOWN(SEND) from the host side');
  await sock.close();
  assert.is(sock.state, 'closed');
  assert.is(sock.error, null, 'a clean close, not a reset');
  assert.is(conn.closedByDevice, true, 'the runtime connection is closed');
  assert.is(counters(s)['open'], 0);
  s.dispose();
});

test.run();
