// Control commands whose data has the wrong length (or a missing class/command) are answered VIRTIO_NET_ERR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, NET0, netSim, twoNics } from './_net';

test('RX mode with 0 or 2 data bytes, ADDR_SET with 5, MQ without MQ, 1-byte command: VIRTIO_NET_ERR', async () => {
  const s = await netSim();
  const [a] = await twoNics(s);
  assert.is(await a.ctrl(0, 0, new Uint8Array(0)), 1, 'PROMISC without data → ERR');
  assert.is(await a.ctrl(0, 0, Uint8Array.of(0, 0)), 1, 'PROMISC with 2 bytes → ERR');
  assert.is(await a.ctrl(0, 0, Uint8Array.of(2)), 1, 'PROMISC with value 2 → ERR');
  assert.is(await a.ctrl(1, 1, new Uint8Array(5)), 1, 'MAC_ADDR_SET with 5 bytes → ERR');
  assert.is(await a.ctrl(1, 0, new Uint8Array(7)), 1, 'MAC_TABLE_SET with 7 bytes → ERR');
  assert.is(await a.ctrl(4, 0, Uint8Array.of(1, 0)), 1, 'MQ_VQ_PAIRS_SET without VIRTIO_NET_F_MQ → ERR');
  assert.is(await a.ctrl(0, 0, Uint8Array.of(1)), 0, 'a well-formed PROMISC on → OK');
  assert.is(counters(s, NET0)['ctrlErr'], 6, 'six errors counted');
  assert.is(s.needsReset(NET0), false, 'command errors are not device faults');
  s.dispose();
});

test.run();
