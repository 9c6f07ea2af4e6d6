// MRG_RXBUF: a frame larger than one buffer is spread over several, num_buffers says how many, all but the last full.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_MRG_RXBUF } from '../../firmware/devices/net';
import { NetDriver } from '../../frontend/drivers/net';
import { ether, MAC0, MAC1, NET0, NET1, netSim, receiveN } from './_net';

test('1514-byte frames into 256-byte buffers: num_buffers 6, reassembled byte-exact; small frames take one buffer', async () => {
  const s = await netSim();
  const fe = await s.frontend();
  const a = await NetDriver.open(fe.devices[NET0]!, { queueSize: 64 });
  const b = await NetDriver.open(fe.devices[NET1]!, { queueSize: 64, rxBufferSize: 256, features: VIRTIO_NET_F_MRG_RXBUF });
  const big = ether(MAC1, MAC0, 0x88b5, new Uint8Array(1500).map((_, i) => i & 0xff));
  const small = ether(MAC1, MAC0, 0x88b5, new Uint8Array(46).fill(9));
  await a.send([big, small, big]);
  const got = await receiveN(b, 3);
  assert.equal(got.map((f) => f.numBuffers), [6, 1, 6], 'num_buffers per frame');
  assert.equal(got.map((f) => f.data), [big, small, big], 'frames reassembled byte-exact');
  s.dispose();
});

test.run();
