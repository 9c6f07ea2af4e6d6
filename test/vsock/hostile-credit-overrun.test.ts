// A guest that sends more than the buf_alloc the device advertised (VSOCK_BUF_ALLOC) while the host does
// not read has that connection reset: the runtime never buffers more than VSOCK_HOST_BUFFER, the host
// gets exactly the bytes within the credit, the device stays live.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VSOCK_BUF_ALLOC } from '../../firmware/devices/vsock';
import { VSOCK_HOST_BUFFER } from '../../firmware/services';
import { VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_RW } from '../../firmware/virtio';
import { counters, vsockSim } from './_vsock';
import { rawConnection } from './_connect';

test('beyond the credit: RST, the buffered bytes stay within the bound', async () => {
  const s = await vsockSim();
  s.vsock().socketBuffer = 0; // the host program reads nothing
  const { d, conn } = rawConnection(s);
  const chunk = 2048;
  let sent = 0;
  for (let k = 0; k <= VSOCK_BUF_ALLOC / chunk; k++) {
    d.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 1000 }, new Uint8Array(chunk).fill(k & 0xff));
    sent += chunk;
    assert.ok(conn.buffered.bytes <= VSOCK_HOST_BUFFER, `buffered ${conn.buffered.bytes}`);
  }
  assert.is(sent, VSOCK_BUF_ALLOC + chunk, 'one packet beyond the credit');
  const rx = d.received();
  assert.is(rx.at(-1)!.op, VIRTIO_VSOCK_OP_RST, 'the connection was reset');
  assert.is(counters(s)['rst.creditOverrun'], 1);
  assert.is(conn.closedByDevice, true, 'host end closed');
  assert.is(d.needsReset, false);
  s.dispose();
});

test.run();
