// A receive buffer smaller than the negotiated virtio_net_hdr (12 bytes) is a driver MUST violation: DEVICE_NEEDS_RESET.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_MRG_RXBUF } from '../../firmware/devices/net';
import { NetDriver } from '../../frontend/drivers/net';
import { BROADCAST, ether, HOST_MAC, NET0, NET1, netSim } from './_net';

for (const mrg of [false, true]) {
  test(`${mrg ? 'with' : 'without'} MRG_RXBUF: 11-byte receive buffers → NEEDS_RESET when a frame arrives; the other device keeps serving`, async () => {
    const s = await netSim();
    const fe = await s.frontend();
    await NetDriver.open(fe.devices[NET0]!, { queueSize: 16, rxBufferSize: 11, features: mrg ? VIRTIO_NET_F_MRG_RXBUF : 0n });
    const b = await NetDriver.open(fe.devices[NET1]!, { queueSize: 16 });
    const host = s.net();
    host.inject(ether(BROADCAST, HOST_MAC, 0x88b5, new Uint8Array(50)));
    assert.ok(s.needsReset(NET0), 'net0 marked DEVICE_NEEDS_RESET');
    assert.match(s.stats().devices[NET0]!.lastViolation, /NET_RX_BUFFER_TOO_SMALL/, 'violation names the rule');
    assert.is(s.needsReset(NET1), false, 'net1 unaffected');
    assert.is((await b.receive()).length, 1, 'net1 still received the broadcast');
    s.dispose();
  });
}

test.run();
