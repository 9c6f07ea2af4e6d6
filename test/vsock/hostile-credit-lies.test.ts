// Credit values that lie (§5.10.6.3): a fwd_cnt claiming more bytes than the device sent resets the
// connection; a buf_alloc of 4 GiB costs the device nothing: it sends host bytes only into the rx buffers
// the guest posts and holds none itself, the rest stays in the host connection.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_OP_CREDIT_UPDATE, VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_RW } from '../../firmware/virtio';
import { counters, vsockSim } from './_vsock';
import { rawConnection } from './_connect';

test('fwd_cnt beyond what was sent: RST', async () => {
  const s = await vsockSim();
  const { d, conn } = rawConnection(s);
  d.send({ op: VIRTIO_VSOCK_OP_CREDIT_UPDATE, srcPort: 1000, fwdCnt: 1000 });
  assert.equal(d.received().map((p) => p.op), [VIRTIO_VSOCK_OP_RST]);
  assert.is(counters(s)['rst.creditLie'], 1);
  assert.is(conn.closedByDevice, true);
  s.dispose();
});

test('fwd_cnt moving backwards (a wrap that claims 4 GiB consumed): RST', async () => {
  const s = await vsockSim();
  const { d, conn } = rawConnection(s);
  conn.write(new Uint8Array(100));
  d.postRx(1);
  assert.is(d.received().at(-1)!.len, 100, '100 bytes sent to the guest');
  d.send({ op: VIRTIO_VSOCK_OP_CREDIT_UPDATE, srcPort: 1000, fwdCnt: 0xffffffff });
  assert.is(d.received().at(-1)!.op, VIRTIO_VSOCK_OP_RST);
  assert.is(counters(s)['rst.creditLie'], 1);
  s.dispose();
});

test('buf_alloc 0xffffffff: host bytes only as rx buffers arrive, the device holds none', async () => {
  const s = await vsockSim();
  const { d, conn } = rawConnection(s, { bufAlloc: 0xffffffff, rxBuffers: 1 });
  const total = 1 << 20;
  conn.write(new Uint8Array(total));
  d.postRx(4);
  const rx = d.received();
  assert.is(rx.length, 4, 'one packet per rx buffer');
  assert.ok(rx.every((p) => p.op === VIRTIO_VSOCK_OP_RW && p.len === 4096), 'each a full buffer');
  assert.is(conn.fromHost.bytes, total - 4 * 4096, 'the rest waits on the host side');
  assert.is(counters(s)['bytesToGuest'], 4 * 4096);
  assert.is(d.needsReset, false);
  s.dispose();
});

test.run();
