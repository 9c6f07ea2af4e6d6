// vsock is served the same over every transport (firmware/transport/: virtio-msg, register block,
// trapped MMIO): a guest → host echo behind a small host socket carries every byte once, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, echo, openVsock, vsockSim } from './_vsock';

for (const transport of ['msg', 'regblock', 'mmio'] as const) {
  test(`${transport} transport: 512 KiB echoed through a 16 KiB host socket, every byte checked`, async () => {
    const s = await vsockSim({ transport });
    const host = s.vsock();
    host.socketBuffer = 16 * 1024;
    const l = host.listen(5000, (c) => (c.onData = (cc) => cc.write(cc.read())));
    const drv = await openVsock(s);
    const sock = await drv.connect(5000);
    await echo(drv, sock, { seed: 5, total: 512 * 1024, timeoutMs: 60000 });
    assert.is(l.connections[0]!.received, 512 * 1024, 'the host program received every byte once');
    assert.is(counters(s)['bytesToGuest'], 512 * 1024);
    s.dispose();
  });
}

test.run();
