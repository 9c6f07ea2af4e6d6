// Control commands of an unknown class or command, or of a class whose feature was not negotiated, are VIRTIO_NET_ERR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_CTRL_RX, VIRTIO_NET_F_CTRL_VQ } from '../../firmware/devices/net';
import { NetDriver } from '../../frontend/drivers/net';
import { NET0, netSim } from './_net';

test('unknown classes and commands → ERR; RX_EXTRA commands without the feature → ERR', async () => {
  const s = await netSim();
  const fe = await s.frontend();
  const a = await NetDriver.open(fe.devices[NET0]!, { queueSize: 16, features: VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX });
  for (const [cls, cmd] of [[2, 0], [3, 0], [5, 0], [6, 0], [0xff, 0], [0, 6], [1, 2], [4, 1]] as const) {
    assert.is(await a.ctrl(cls, cmd, Uint8Array.of(1)), 1, `class ${cls} command ${cmd} → VIRTIO_NET_ERR`);
  }
  assert.is(await a.ctrl(0, 2, Uint8Array.of(1)), 1, 'ALLUNI without CTRL_RX_EXTRA → ERR');
  assert.is(await a.ctrl(1, 1, new Uint8Array(6)), 1, 'MAC_ADDR_SET without CTRL_MAC_ADDR → ERR');
  assert.is(await a.ctrl(0, 1, Uint8Array.of(1)), 0, 'ALLMULTI with CTRL_RX → OK');
  s.dispose();
});

test.run();
