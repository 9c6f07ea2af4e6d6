// A host program that echoes from onData, behind a host socket smaller than what the guest sends at
// once: the runtime buffers the rest, the program's own reads let it through, and every byte comes
// back once, in order (the node runtime once left the rest buffered for good when the program read
// inside the delivery, and echoed a drained remainder ahead of the bytes before it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, echo, openVsock, vsockSim } from './_vsock';

test('echo from onData through a 16 KiB host socket: 1 MiB back, in order', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  host.socketBuffer = 16 * 1024;
  const l = host.listen(5000, (c) => (c.onData = (cc) => cc.write(cc.read())));
  const drv = await openVsock(s);
  const sock = await drv.connect(5000);
  const total = 1 << 20;
  await echo(drv, sock, {
    seed: 17,
    total,
    timeoutMs: 20000,
    what: () => `the host program received ${l.connections[0]?.received ?? 0}, the runtime holds ${l.connections[0]?.buffered.bytes ?? 0} for it`,
  });
  assert.is(l.connections[0]!.received, total, 'the host program received every byte once');
  assert.is(counters(s)['bytesToGuest'], total);
  s.dispose();
});

test.run();
