// A guest that writes and closes while the host program is not reading: the device answers the
// clean close only once every byte reached the host (§5.10.6.5), and the host then sees EOF.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPrng, openVsock, prng, vsockSim } from './_vsock';

test('RST after the last buffered byte reached the host', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  host.socketBuffer = 4096;
  const l = host.listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const conn = l.connections[0]!;
  sock.send(prng(3, 0, 100_000));
  const closing = sock.close(20000);
  for (let i = 0; i < 5; i++) await drv.pump();
  assert.is(sock.state, 'connected', 'no RST while bytes wait for the host');
  let got = 0;
  const parts: Uint8Array[] = [];
  await drv.until(
    () => {
      const r = conn.read();
      parts.push(r);
      got += r.length;
      return sock.state === 'closed';
    },
    20000,
    () => `host read ${got}`,
  );
  await closing;
  assert.is(got, 100_000, 'every byte');
  assert.ok(isPrng(3, 0, Buffer.concat(parts)), 'in order');
  assert.is(sock.error, null, 'closed cleanly');
  assert.is(conn.guestEnded, true, 'the host saw EOF');
  s.dispose();
});

test.run();
