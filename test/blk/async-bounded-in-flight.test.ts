// The requests an asynchronous blk holds are bounded by the storage's queue depth (and the device's
// BLK_MAX_IN_FLIGHT), never by what the guest makes available: beyond it, chains stay in the ring and
// the queue is served again as soon as a request finishes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { STORAGE_OP_READ } from '../../firmware/services';
import { asyncBlk, FakeAsyncStorage, VIRTIO_BLK_T_IN } from './_async';

test('with a queue depth of 4, 12 available reads are taken 4 at a time, the rest as requests finish', () => {
  const st = new FakeAsyncStorage(4);
  const b = asyncBlk(st);
  for (let i = 0; i < 12; i++) b.post(VIRTIO_BLK_T_IN, i * 8);
  b.process();
  assert.is(st.inFlight.size, 4, 'only queueDepth requests are submitted');
  let finished = 0;
  while (st.inFlight.size > 0) {
    const [r] = st.pending(STORAGE_OP_READ);
    st.finish(r!.tag);
    finished++;
    b.service(); // the finished request frees a record: the stalled queue is kicked and served again
    assert.ok(st.inFlight.size <= 4, `never more than 4 in flight (after ${finished} finished: ${st.inFlight.size})`);
  }
  assert.is(finished, 12, 'all twelve reads were served');
  assert.is(b.usedEntries().length, 12, 'and completed');
  assert.is(b.counters()['inFlightPeak'], 4, 'the peak is the queue depth');
});

test.run();
