// With VIRTIO_F_RING_PACKED negotiated (virtio 1.3 §2.8), vsock's rx, tx and event queues are packed
// rings: a guest → host echo where the host program and the guest both read slowly, so credit runs out
// both ways and the rings wrap many times, still delivers every byte once, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEVICE_NEEDS_RESET, VIRTIO_F_RING_PACKED } from '../../firmware/virtio';
import { VsockDriver } from '../../frontend/drivers/vsock';
import { counters, echo, VSOCK, vsockSim } from './_vsock';

test('packed rings: 1 MiB echoed with credit running out both ways, every byte checked', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  host.socketBuffer = 16 * 1024;
  const l = host.listen(5000);
  const fe = await s.frontend({ ring: 'packed' });
  const drv = await VsockDriver.open(fe.devices[VSOCK]!);
  assert.ok(fe.devices[VSOCK]!.features & VIRTIO_F_RING_PACKED, 'the vsock device negotiated packed rings');
  const sock = await drv.connect(5000);
  const total = 1 << 20;
  // the host program echoes 8 KiB a turn, the guest reads 4 KiB every other turn: credit runs out both ways
  const turn = () => {
    const conn = l.connections[0];
    if (conn) conn.write(conn.read(8192));
  };
  await echo(drv, sock, { seed: 13, total, window: 512 * 1024, readMax: 4096, readEvery: 2, turn, timeoutMs: 60000 });
  assert.is(l.connections[0]!.received, total, 'the host program received every byte once');
  const c = counters(s);
  assert.is(c['bytesToHost'], total);
  assert.is(c['bytesToGuest'], total);
  assert.ok((c['guestOutOfCredit'] ?? 0) > 0, `guest → host credit ran out (guestOutOfCredit ${c['guestOutOfCredit']})`);
  assert.ok((c['guestCreditWaits'] ?? 0) > 0, `host → guest credit ran out (guestCreditWaits ${c['guestCreditWaits']})`);
  assert.is(drv.counters.creditOverruns, 0, 'the device never sent beyond the guest credit');
  assert.is(s.deviceStatus(VSOCK) & DEVICE_NEEDS_RESET, 0, 'the device never went DEVICE_NEEDS_RESET');
  assert.equal(Object.keys(c).filter((k) => k.startsWith('rst.') || k.startsWith('violation')), [], 'no resets or violations');
  s.dispose();
});

test.run();
