// On an asynchronous storage, blk completes requests in the order the storage finishes them, not the
// order they were made available (virtio 1.3 §2.7.8 allows it): the used ring says which chain each
// entry is, with its own used length and status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK } from '../../firmware/devices/blk';
import { STORAGE_OP_READ } from '../../firmware/services';
import { asyncBlk, FakeAsyncStorage, VIRTIO_BLK_T_IN } from './_async';

test('requests finished in reverse order complete in reverse order, each with its own status and length', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st);
  const a = b.post(VIRTIO_BLK_T_IN, 8);
  const c = b.post(VIRTIO_BLK_T_IN, 16);
  const e = b.post(VIRTIO_BLK_T_IN, 24);
  b.process();
  const reads = st.pending(STORAGE_OP_READ);
  assert.is(reads.length, 3, 'all three reads are in flight at once');
  assert.equal(reads.map((r) => r.fileOffset), [8 * 512, 16 * 512, 24 * 512], 'each read starts at its own sector');
  assert.equal(b.usedEntries(), [], 'nothing completes before the storage finishes');
  assert.is(b.bytes[a.status], 0xee, 'no status is written while the request is in flight');
  st.finish(reads[2]!.tag);
  st.finish(reads[1]!.tag, -5);
  b.service();
  assert.equal(b.usedEntries(), [{ id: e.head, len: 4097 }, { id: c.head, len: 1 }], 'the last request first, then the failed one');
  assert.is(b.bytes[e.status], VIRTIO_BLK_S_OK, 'the read that finished OK says OK');
  assert.is(b.bytes[c.status], VIRTIO_BLK_S_IOERR, 'the read the storage failed says IOERR');
  assert.is(b.bytes[a.status], 0xee, 'the first request is still in flight');
  st.finish(reads[0]!.tag);
  b.service();
  assert.equal(b.usedEntries().map((u) => u.id), [e.head, c.head, a.head], 'the first request completes last');
  assert.is(b.counters()['inFlight'], 0, 'no request is held any more');
  assert.is(b.counters()['inFlightPeak'], 3, 'three were held at once');
});

test('a storage completion for a request that is not in flight is a host bug that fails loudly', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st);
  b.post(VIRTIO_BLK_T_IN, 8);
  b.process();
  const [r] = st.pending(STORAGE_OP_READ);
  st.finish(r!.tag);
  (st as unknown as { done: number[] }).done.push(r!.tag, 0); // the storage reports the same request twice
  assert.throws(() => b.service(), /not in flight/, 'a duplicated completion is refused');
});

test.run();
