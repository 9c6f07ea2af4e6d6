// Reset with requests in flight on an asynchronous storage: every request the reset orphans is
// cancelled before the reset returns (the storage stops touching the window for it), and its late
// completion writes nothing — no status byte, no used entry, even though the driver may already have
// reused the ring — while it still frees its record exactly once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_S_OK } from '../../firmware/devices/blk';
import { STORAGE_OP_READ } from '../../firmware/services';
import { asyncBlk, FakeAsyncStorage, VIRTIO_BLK_T_IN } from './_async';

test('device reset cancels what is in flight; late completions write nothing into the reused ring', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st);
  const reqs = [b.post(VIRTIO_BLK_T_IN, 0), b.post(VIRTIO_BLK_T_IN, 8), b.post(VIRTIO_BLK_T_IN, 16)];
  b.process();
  const tags = st.pending(STORAGE_OP_READ).map((r) => r.tag);
  st.finish(tags[0]!); // finished but not yet taken by the device when the reset comes
  b.resetAndReinit();
  assert.equal([...st.cancels].sort(), [...tags].sort(), 'the reset cancelled each request it orphaned');
  // The driver reuses the ring memory: a new request on the same queue area.
  const fresh = b.post(VIRTIO_BLK_T_IN, 64);
  for (const r of reqs) b.bytes[r.status] = 0x5a; // whatever the driver put there since
  for (const t of tags.slice(1)) st.finish(t);
  b.service();
  for (const r of reqs) assert.is(b.bytes[r.status], 0x5a, 'a late completion of an orphaned request writes no status');
  assert.equal(b.usedEntries(), [], 'and no used entry');
  assert.is(b.counters()['cancelled'], 3, 'each orphan counted once');
  b.process();
  const [r] = st.pending(STORAGE_OP_READ);
  assert.ok(r, 'the new request is submitted: the orphans freed their records');
  st.finish(r!.tag);
  b.service();
  assert.equal(b.usedEntries().map((u) => u.id), [fresh.head], 'only the new request completes');
  assert.is(b.bytes[fresh.status], VIRTIO_BLK_S_OK, 'with OK');
  assert.is(b.counters()['inFlight'], 0, 'nothing is left in flight: no completion lost or duplicated');
});

test('RESET_VQUEUE cancels only that queue\'s requests; the other queue completes normally', () => {
  const st = new FakeAsyncStorage();
  const b = asyncBlk(st, 2);
  const q0 = b.post(VIRTIO_BLK_T_IN, 0, 0);
  const q1 = b.post(VIRTIO_BLK_T_IN, 8, 1);
  b.process(0);
  b.process(1);
  const [t0, t1] = st.pending(STORAGE_OP_READ).map((r) => r.tag);
  b.resetQueue(0);
  assert.equal(st.cancels, [t0], 'only queue 0\'s request is cancelled');
  st.finish(t0!);
  st.finish(t1!);
  b.service();
  assert.is(b.bytes[q0.status], 0xee, 'the reset queue\'s request writes nothing');
  assert.is(b.bytes[q1.status], VIRTIO_BLK_S_OK, 'the other queue\'s request completes');
  assert.equal(b.usedEntries(1).map((u) => u.id), [q1.head], 'on its own used ring');
});

test.run();
