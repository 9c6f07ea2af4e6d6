// Host → guest with a guest that does not read: the device sends at most the guest's buf_alloc and
// leaves the rest in the host connection (it holds none of it); when the guest reads, the rest follows,
// every byte once and in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VSOCK_DRIVER_BUF_ALLOC } from '../../frontend/drivers/vsock';
import { counters, isPrng, openVsock, prng, vsockSim } from './_vsock';

test('the guest credit bounds what the device sends; the host keeps the rest', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  const l = host.listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const conn = l.connections[0]!;
  const total = 1 << 20;
  conn.write(prng(5, 0, total));
  for (let i = 0; i < 10; i++) await drv.pump();
  assert.is(sock.rxQueued, VSOCK_DRIVER_BUF_ALLOC, 'exactly the guest buffer was filled');
  assert.is(drv.counters.creditOverruns, 0, 'never beyond the credit');
  assert.is(conn.fromHost.bytes, total - VSOCK_DRIVER_BUF_ALLOC, 'the rest is still on the host side');
  assert.ok((counters(s)['guestCreditWaits'] ?? 0) > 0, 'counted as waiting for guest credit');
  let got = 0;
  await drv.until(
    () => {
      const r = sock.read(10000);
      if (!isPrng(5, got, r)) throw new Error(`bytes ${got}..${got + r.length} differ`);
      got += r.length;
      return got === total;
    },
    30000,
    () => `guest read ${got} of ${total}`,
  );
  assert.is(sock.received, total, 'each byte once');
  assert.is(drv.counters.creditOverruns, 0);
  s.dispose();
});

test.run();
