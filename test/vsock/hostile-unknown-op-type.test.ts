// A packet of unknown type (§5.10.6.4: a device MUST answer RST) or unknown op, or addressed to a CID
// that is not the host, is answered with an RST carrying its type and the swapped ports; nothing is
// opened on the host side and the device stays live.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_TYPE_SEQPACKET, VMADDR_CID_HOST } from '../../firmware/virtio';
import { counters, RawVsock, vsockSim } from './_vsock';

test('unknown type (SEQPACKET, 77), unknown op (0, 8, 0xffff), wrong destination: RST each', async () => {
  const s = await vsockSim();
  s.vsock().listen(5000);
  const d = new RawVsock(s);
  d.postRx(8);
  d.send({ type: VIRTIO_VSOCK_TYPE_SEQPACKET, srcPort: 1 });
  d.send({ type: 77, srcPort: 2 });
  d.send({ op: 0, srcPort: 3 });
  d.send({ op: 8, srcPort: 4 });
  d.send({ op: 0xffff, srcPort: 5 });
  d.send({ dstCid: 7, srcPort: 6 });
  const rx = d.received();
  assert.is(rx.length, 6, 'six replies');
  assert.equal(rx.map((p) => [p.op, p.dstPort, p.srcPort, p.type]), [
    [VIRTIO_VSOCK_OP_RST, 1, 5000, VIRTIO_VSOCK_TYPE_SEQPACKET],
    [VIRTIO_VSOCK_OP_RST, 2, 5000, 77],
    [VIRTIO_VSOCK_OP_RST, 3, 5000, 1],
    [VIRTIO_VSOCK_OP_RST, 4, 5000, 1],
    [VIRTIO_VSOCK_OP_RST, 5, 5000, 1],
    [VIRTIO_VSOCK_OP_RST, 6, 5000, 1],
  ]);
  assert.equal(rx.map((p) => p.srcCid), [VMADDR_CID_HOST, VMADDR_CID_HOST, VMADDR_CID_HOST, VMADDR_CID_HOST, VMADDR_CID_HOST, 7], 'from the address the packet went to');
  assert.ok(rx.every((p) => p.usedLen === 44 && p.len === 0), 'header only');
  const c = counters(s);
  assert.is(c['rst.unknownType'], 2);
  assert.is(c['rst.unknownOp'], 3);
  assert.is(c['rst.unknownDestination'], 1);
  assert.is(s.vsock().connections().length, 0, 'nothing opened on the host');
  assert.is(d.needsReset, false, 'per-packet outcomes, not a device fault');
  s.dispose();
});

test.run();
