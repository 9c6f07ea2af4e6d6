// vsock on packed virtqueues (VIRTIO_F_RING_PACKED): the device negotiates them like every other device,
// and a guest → host echo carries its bytes exactly once, in order, over packed rx/tx/event queues.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEVICE_NEEDS_RESET, VIRTIO_F_RING_PACKED } from '../../firmware/virtio';
import { VsockDriver } from '../../frontend/drivers/vsock';
import { isPrng, prng, VSOCK, vsockSim } from './_vsock';

test('a vsock connection over packed rings echoes 512 KiB intact', async () => {
  const s = await vsockSim();
  const host = s.vsock();
  host.listen(5000, (c) => (c.onData = (cc) => cc.write(cc.read())));
  const dev = (await s.frontend()).devices[VSOCK]!;
  dev.ring = 'packed';
  const drv = await VsockDriver.open(dev);
  assert.ok((dev.features & VIRTIO_F_RING_PACKED) !== 0n, 'the vsock device accepted VIRTIO_F_RING_PACKED');
  const sock = await drv.connect(5000);
  const total = 512 << 10;
  let sent = 0;
  let got = 0;
  await drv.until(
    () => {
      if (sent < total && sock.txPending < 128 * 1024) {
        const n = Math.min(65536, total - sent);
        sock.send(prng(11, sent, n));
        sent += n;
      }
      const r = sock.read();
      if (!isPrng(11, got, r)) throw new Error(`echoed bytes ${got}..${got + r.length} differ`);
      got += r.length;
      return got === total;
    },
    30000,
    () => `${got} of ${total} echoed bytes on packed rings`,
  );
  assert.is(s.deviceStatus(VSOCK) & DEVICE_NEEDS_RESET, 0, 'the device never went DEVICE_NEEDS_RESET');
  s.dispose();
});

test.run();
