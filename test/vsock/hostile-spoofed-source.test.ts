// A packet whose src_cid is not the guest's (the driver MUST use guest_cid, §5.10.6.4), or whose CID has
// a non-zero upper half, is dropped: no reply to an address that is not the guest's, nothing opened.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeVsockHeader } from '../../firmware/devices/vsock';
import { CID, counters, RawVsock, vsockSim } from './_vsock';

test('wrong src_cid, or a CID with its upper half set: dropped and counted', async () => {
  const s = await vsockSim();
  const l = s.vsock().listen(5000);
  const d = new RawVsock(s);
  d.postRx(4);
  d.send({ srcCid: CID + 1 });
  const hi = encodeVsockHeader({ srcCid: CID, dstCid: 2, srcPort: 1, dstPort: 5000, len: 0, type: 1, op: 1, flags: 0, bufAlloc: 4096, fwdCnt: 0 });
  new DataView(hi.buffer).setUint32(4, 1, true); // src_cid upper half
  d.sendRaw(hi);
  assert.is(d.received().length, 0, 'no reply');
  assert.is(l.connections.length, 0, 'no host connection');
  assert.is(counters(s)['drop.spoofedSource'], 2);
  assert.is(d.txUsed(), 2, 'both chains completed');
  s.dispose();
});

test.run();
