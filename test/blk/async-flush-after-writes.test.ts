// FLUSH on an asynchronous storage (virtio 1.3 §5.2.6.1, DESIGN §6.6): the flush is submitted to the
// storage only once every write submitted before it has finished, so its fdatasync covers them — the
// storage itself runs a flush beside writes still in flight. Writes submitted after it do not hold it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_OK } from '../../firmware/devices/blk';
import { STORAGE_OP_FLUSH, STORAGE_OP_WRITE } from '../../firmware/services';
import { asyncBlk, FakeAsyncStorage, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_OUT } from './_async';

test('a FLUSH that arrives while writes are in flight waits for all of them, not for later writes', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st);
  b.post(VIRTIO_BLK_T_OUT, 0);
  b.post(VIRTIO_BLK_T_OUT, 8);
  const f = b.post(VIRTIO_BLK_T_FLUSH);
  b.post(VIRTIO_BLK_T_OUT, 16); // after the flush: not covered, must not delay it
  b.process();
  const [w1, w2, w3] = st.pending(STORAGE_OP_WRITE);
  assert.ok(w1 && w2 && w3, 'the three writes are in flight');
  assert.is(st.pending(STORAGE_OP_FLUSH).length, 0, 'the flush is not submitted while earlier writes are in flight');
  st.finish(w2!.tag);
  b.service();
  assert.is(st.pending(STORAGE_OP_FLUSH).length, 0, 'one earlier write is still in flight: the flush still waits');
  st.finish(w1!.tag);
  b.service();
  const [fl] = st.pending(STORAGE_OP_FLUSH);
  assert.ok(fl, 'once both earlier writes finished the flush is submitted, although the later write is still in flight');
  assert.is(b.bytes[f.status], 0xee, 'the FLUSH is not acknowledged before the storage finished it');
  st.finish(fl!.tag);
  b.service();
  assert.is(b.bytes[f.status], VIRTIO_BLK_S_OK, 'then it completes OK');
  assert.is(st.syncFlushes, 0, 'no synchronous flush was used');
  st.finish(w3!.tag);
  b.service();
  assert.is(b.counters()['inFlight'], 0, 'everything completed');
  assert.is(b.counters()['flushesDeferred'], 1, 'the flush was counted as deferred');
});

test('a FLUSH with no write in flight is submitted at once', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st);
  b.post(VIRTIO_BLK_T_FLUSH);
  b.process();
  assert.is(st.pending(STORAGE_OP_FLUSH).length, 1, 'submitted straight away');
});

test('writethrough: an OUT completes only after its own flush finished', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st);
  b.dev.acceptFeatures(0n); // FLUSH not negotiated: writethrough (§5.2.5.1)
  const w = b.post(VIRTIO_BLK_T_OUT, 0);
  b.process();
  const [wr] = st.pending(STORAGE_OP_WRITE);
  st.finish(wr!.tag);
  b.service();
  const [fl] = st.pending(STORAGE_OP_FLUSH);
  assert.ok(fl, 'the data written, its flush is submitted');
  assert.is(b.bytes[w.status], 0xee, 'the OUT is not acknowledged before its flush finished');
  st.finish(fl!.tag);
  b.service();
  assert.is(b.bytes[w.status], VIRTIO_BLK_S_OK, 'then the OUT completes OK');
});

test.run();
