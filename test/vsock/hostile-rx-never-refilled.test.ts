// A guest that floods packets needing replies and never gives rx buffers: the device holds at most
// VSOCK_RST_BACKLOG replies, then leaves the guest's further packets in the tx ring (§5.10.6.1) instead
// of queueing without bound; when rx buffers come, the replies go out and tx resumes, each packet
// answered once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VSOCK_RST_BACKLOG } from '../../firmware/devices/vsock';
import { VIRTIO_VSOCK_OP_RST, VIRTIO_VSOCK_OP_RW } from '../../firmware/virtio';
import { counters, RawVsock, vsockSim } from './_vsock';

test('tx pauses at the reply backlog and resumes when rx buffers arrive', async () => {
  const s = await vsockSim();
  const d = new RawVsock(s);
  for (let k = 0; k < VSOCK_RST_BACKLOG + 4; k++) d.send({ op: VIRTIO_VSOCK_OP_RW, srcPort: 100 + k });
  assert.is(d.txUsed(), VSOCK_RST_BACKLOG, 'only as many packets as replies can be held were taken');
  assert.is(counters(s)['txPaused'], 1);
  d.postRx(16);
  const rx = d.received();
  d.postRx(8);
  rx.push(...d.received());
  assert.is(rx.length, VSOCK_RST_BACKLOG + 4, 'every packet answered once');
  assert.ok(rx.every((p) => p.op === VIRTIO_VSOCK_OP_RST));
  assert.equal(rx.map((p) => p.dstPort), Array.from({ length: VSOCK_RST_BACKLOG + 4 }, (_, k) => 100 + k), 'in order');
  assert.is(d.txUsed(), VSOCK_RST_BACKLOG + 4, 'the waiting packets were taken');
  assert.is(d.needsReset, false);
  s.dispose();
});

test.run();
