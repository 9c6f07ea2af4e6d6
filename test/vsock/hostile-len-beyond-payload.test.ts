// A RW whose header `len` is more than the payload the chain carries is answered by resetting that
// connection: nothing of it reaches the host, the host end is closed, the device stays live. Payload
// beyond `len` is ignored.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_RW } from '../../firmware/virtio';
import { counters } from './_vsock';
import { vsockSim } from './_vsock';
import { rawConnection } from './_connect';

test('len 100 with 10 payload bytes: RST, nothing to the host', async () => {
  const s = await vsockSim();
  const { d, conn } = rawConnection(s);
  d.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1000, len: 100 }, new Uint8Array(10).fill(7));
  const rx = d.received();
  assert.equal(rx.map((p) => [p.op, p.dstPort]), [[VIRTIO_VSOCK_OP_RST, 1000]]);
  assert.is(conn.received, 0, 'the host got nothing');
  assert.is(conn.closedByDevice, true);
  assert.is(counters(s)['rst.badLength'], 1);
  assert.is(d.needsReset, false);
  s.dispose();
});

test('payload longer than len: only len bytes go to the host', async () => {
  const s = await vsockSim();
  const { d, conn } = rawConnection(s);
  d.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1000, len: 3 }, Uint8Array.of(1, 2, 3, 4, 5));
  assert.equal([...conn.read()], [1, 2, 3]);
  assert.is(conn.closedByDevice, false);
  s.dispose();
});

test.run();
