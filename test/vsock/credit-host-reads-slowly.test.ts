// Guest → host with a host program that stops reading: the runtime buffers at most VSOCK_HOST_BUFFER
// bytes, the guest runs out of credit and waits (nothing is refused or dropped), and once the host reads
// again every byte arrives once, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VSOCK_BUF_ALLOC } from '../../firmware/devices/vsock';
import { VSOCK_HOST_BUFFER } from '../../firmware/services';
import { counters, isPrng, openVsock, prng, vsockSim } from './_vsock';

test('credit runs out while the host does not read; no byte is lost or duplicated', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  host.socketBuffer = 16 * 1024; // a small kernel socket: the runtime's buffer fills quickly
  const l = host.listen(5000);
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const total = 1 << 20;
  sock.send(prng(11, 0, total));
  for (let i = 0; i < 10; i++) await drv.pump();
  const conn = l.connections[0]!;
  assert.is(conn.readable, 16 * 1024, 'the host socket is full');
  assert.ok(conn.buffered.bytes <= VSOCK_HOST_BUFFER, `runtime buffer ${conn.buffered.bytes} within ${VSOCK_HOST_BUFFER}`);
  assert.is(sock.credit, 0, 'the guest has no credit left');
  assert.is(sock.txPending, total - 16 * 1024 - VSOCK_BUF_ALLOC, 'the rest waits in the guest');
  // The host reads again, a little at a time.
  let got = 0;
  await drv.until(
    () => {
      const r = conn.read(8192);
      if (!isPrng(11, got, r)) throw new Error(`bytes ${got}..${got + r.length} differ`);
      got += r.length;
      assert.ok(conn.buffered.bytes <= VSOCK_HOST_BUFFER);
      return got === total;
    },
    30000,
    () => `host read ${got} of ${total}`,
  );
  assert.is(conn.received, total, 'each byte reached the host socket once');
  assert.ok((counters(s)['creditUpdates'] ?? 0) > 0, 'the device told the guest of freed space');
  assert.is(counters(s)['rst.creditOverrun'], undefined, 'the honest guest was never reset');
  s.dispose();
});

test.run();
