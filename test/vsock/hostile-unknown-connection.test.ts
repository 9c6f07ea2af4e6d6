// Packets for a connection that does not exist (RW, SHUTDOWN, CREDIT_UPDATE, CREDIT_REQUEST, RESPONSE)
// are answered with RST; an RST for one is not answered (§5.10.6.5: never an RST for an RST).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_VSOCK_OP_RST } from '../../firmware/virtio';
import { counters, RawVsock, vsockSim } from './_vsock';

test('RW/SHUTDOWN/CREDIT_*/RESPONSE for no connection: RST; RST for none: silence', async () => {
  const s = await vsockSim();
  const d = new RawVsock(s);
  d.postRx(8);
  for (const op of [5, 4, 6, 7, 2]) d.send({ op, srcPort: 100 + op }, op === 5 ? new Uint8Array(10) : undefined);
  d.send({ op: VIRTIO_VSOCK_OP_RST, srcPort: 200 });
  const rx = d.received();
  assert.equal(rx.map((p) => [p.op, p.dstPort]), [5, 4, 6, 7, 2].map((op) => [VIRTIO_VSOCK_OP_RST, 100 + op]));
  assert.is(counters(s)['rst.noConnection'], 5);
  assert.is(counters(s)['rstIgnored'], 1, 'the RST is counted, not answered');
  assert.is(d.needsReset, false);
  s.dispose();
});

test.run();
