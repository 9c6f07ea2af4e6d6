// The split virtqueue against the TS sources in V8, with a window that is a plain ArrayBuffer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestProtocolError } from '../../firmware/errors';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { SplitQueue, validateSplitConfig } from '../../firmware/virtqueue/split';
import { GuestWindow } from '../../firmware/window/window';

const POOL = 0x1000;
function setup(size = 8, eventIdx = false) {
  const buf = new ArrayBuffer(1 << 20);
  const v = new DataView(buf);
  const win = new GuestWindow(buf, POOL);
  const desc = POOL;
  const avail = POOL + 16 * size;
  const used = POOL + 0x1000;
  const data = POOL + 0x2000;
  let fences = 0;
  const q = new SplitQueue(win, 0, size, desc, avail, used, eventIdx, true, () => fences++);
  let idx = 0;
  return {
    q,
    v,
    data,
    used,
    avail,
    fences: () => fences,
    d(i: number, addr: number, len: number, flags: number, next = 0) {
      v.setUint32(desc + 16 * i, addr, true);
      v.setUint32(desc + 16 * i + 8, len, true);
      v.setUint16(desc + 16 * i + 12, flags, true);
      v.setUint16(desc + 16 * i + 14, next, true);
    },
    offer(head: number) {
      v.setUint16(avail + 4 + 2 * (idx % size), head, true);
      idx = (idx + 1) & 0xffff;
      v.setUint16(avail + 2, idx, true);
    },
  };
}

test('pop returns a validated chain: readable segments first, then writable', () => {
  const t = setup();
  t.d(0, t.data, 16, VIRTQ_DESC_F_NEXT, 1);
  t.d(1, t.data + 16, 0, VIRTQ_DESC_F_NEXT, 2); // zero-length: carries nothing
  t.d(2, t.data + 32, 100, VIRTQ_DESC_F_WRITE);
  t.offer(0);
  const c = t.q.pop()!;
  assert.is(c.headIndex, 0);
  assert.is(c.readableBytes, 16);
  assert.is(c.writableBytes, 100);
  assert.equal(c.offsets, [t.data, t.data + 32]);
  assert.is(t.q.pop(), null);
});

test('the reader copies what the driver wrote; the writer writes only into writable buffers', () => {
  const t = setup();
  t.d(0, t.data, 4, VIRTQ_DESC_F_NEXT, 1);
  t.d(1, t.data + 8, 4, VIRTQ_DESC_F_WRITE);
  new Uint8Array(t.v.buffer).set([1, 2, 3, 4], t.data);
  t.offer(0);
  const c = t.q.pop()!;
  assert.equal([...c.reader().read(4)], [1, 2, 3, 4]);
  const w = c.writer();
  w.write(new Uint8Array([9, 9]));
  assert.is(w.written, 2);
  assert.equal([...new Uint8Array(t.v.buffer, t.data, 12)], [1, 2, 3, 4, 0, 0, 0, 0, 9, 9, 0, 0]);
  assert.throws(() => w.write(new Uint8Array(3)), /beyond/);
});

test('pushUsed + publishUsed write the used element and index, and honour NO_INTERRUPT', () => {
  const t = setup();
  t.d(0, t.data, 8, VIRTQ_DESC_F_WRITE);
  t.offer(0);
  const c = t.q.pop()!;
  t.q.pushUsed(c, 8);
  assert.is(t.v.getUint16(t.used + 2, true), 0, 'not visible before publish');
  assert.ok(t.q.publishUsed(), 'driver wants an interrupt');
  assert.is(t.v.getUint16(t.used + 2, true), 1);
  assert.is(t.v.getUint32(t.used + 4, true), 0);
  assert.is(t.v.getUint32(t.used + 8, true), 8);
  t.v.setUint16(t.avail, VIRTQ_AVAIL_F_NO_INTERRUPT, true);
  t.offer(0);
  t.q.pushUsed(t.q.pop()!, 0);
  assert.not.ok(t.q.publishUsed(), 'suppressed by VIRTQ_AVAIL_F_NO_INTERRUPT');
});

test('with EVENT_IDX the device notifies only when used_event is crossed (§2.7.10)', () => {
  const t = setup(8, true);
  const usedEvent = (v: number) => t.v.setUint16(t.avail + 4 + 2 * 8, v, true);
  t.d(0, t.data, 8, VIRTQ_DESC_F_WRITE);
  t.d(1, t.data + 8, 8, VIRTQ_DESC_F_WRITE);
  usedEvent(1); // driver wants to hear when used idx passes 1
  t.offer(0);
  t.q.pushUsed(t.q.pop()!, 0);
  assert.not.ok(t.q.publishUsed(), 'used idx 1 does not cross used_event 1');
  t.offer(1);
  t.q.pushUsed(t.q.pop()!, 0);
  assert.ok(t.q.publishUsed(), 'used idx 2 crosses used_event 1');
});

test('the available index wraps from 65535 to 0 legitimately', () => {
  const t = setup(4);
  t.d(0, t.data, 8, VIRTQ_DESC_F_WRITE);
  t.q.nextAvail = 0xffff;
  (t.q as unknown as { availIdx: number }).availIdx = 0xffff;
  t.v.setUint16(t.avail + 4 + 2 * 3, 0, true);
  t.v.setUint16(t.avail + 2, 0, true); // one entry: 0xffff → 0
  const c = t.q.pop()!;
  assert.is(c.headIndex, 0);
  assert.is(t.q.nextAvail, 0);
});

test('a head popped twice while in flight is a violation', () => {
  const t = setup();
  t.d(0, t.data, 8, VIRTQ_DESC_F_WRITE);
  t.offer(0);
  t.offer(0);
  t.q.pop();
  assert.throws(() => t.q.pop(), (e: unknown) => e instanceof GuestProtocolError && e.code === 'HEAD_IN_FLIGHT');
});

test('descriptor next out of range is a violation', () => {
  const t = setup();
  t.d(0, t.data, 8, VIRTQ_DESC_F_NEXT, 8);
  t.offer(0);
  assert.throws(() => t.q.pop(), (e: unknown) => e instanceof GuestProtocolError && e.code === 'NEXT_OUT_OF_RANGE');
});

test('validateSplitConfig checks size and alignment', () => {
  const win = new GuestWindow(new ArrayBuffer(1 << 20), POOL);
  const a = { descLo: POOL, descHi: 0, driverLo: POOL + 0x800, driverHi: 0, deviceLo: POOL + 0x1000, deviceHi: 0 };
  assert.equal(validateSplitConfig(win, 8, 256, a), { desc: POOL, avail: POOL + 0x800, used: POOL + 0x1000 });
  assert.throws(() => validateSplitConfig(win, 8, 256, { ...a, descLo: POOL + 8 }), /misaligned/);
  assert.throws(() => validateSplitConfig(win, 512, 256, a), /power of two/);
  assert.throws(() => validateSplitConfig(win, 0, 256, a), /power of two/);
});


/** What a chain says about itself, for comparing a re-posted head with a fresh walk. */
const view = (c: { offsets: number[]; lengths: number[]; readableCount: number; readableBytes: number; writableBytes: number }) => ({
  offsets: c.offsets,
  lengths: c.lengths,
  readableCount: c.readableCount,
  readableBytes: c.readableBytes,
  writableBytes: c.writableBytes,
});

test('a head re-posted with the same single descriptor gives the same chain; any changed word is walked again', () => {
  const t = setup();
  const repost = () => {
    t.offer(0);
    const c = t.q.pop()!;
    const seen = view(c);
    t.q.pushUsed(c, 0);
    return seen;
  };
  t.d(0, t.data, 64, 0);
  const first = repost();
  assert.equal(first, { offsets: [t.data], lengths: [64], readableCount: 1, readableBytes: 64, writableBytes: 0 });
  assert.equal(repost(), first, 'same words, same chain');
  t.d(0, t.data + 128, 32, VIRTQ_DESC_F_WRITE); // new address, length and direction
  assert.equal(repost(), { offsets: [t.data + 128], lengths: [32], readableCount: 0, readableBytes: 0, writableBytes: 32 });
  t.d(0, t.data, 16, VIRTQ_DESC_F_NEXT, 1); // now the head of a two-descriptor chain
  t.d(1, t.data + 64, 48, VIRTQ_DESC_F_WRITE);
  assert.equal(repost(), { offsets: [t.data, t.data + 64], lengths: [16, 48], readableCount: 1, readableBytes: 16, writableBytes: 48 });
  t.d(0, t.data, 64, 0); // back to the first layout
  assert.equal(repost(), first);
});

test('a re-posted head whose only change puts it outside the pool is refused, not served from the last walk', () => {
  for (const edit of [
    (t: ReturnType<typeof setup>) => t.d(0, POOL - 16, 64, 0), // address below the pool (into the header)
    (t: ReturnType<typeof setup>) => t.d(0, t.data, (1 << 20) - t.data + 1, 0), // length past the window
    (t: ReturnType<typeof setup>) => t.v.setUint32(POOL + 4, 1, true), // upper address half set
  ]) {
    const t = setup();
    t.d(0, t.data, 64, 0);
    t.offer(0);
    t.q.pushUsed(t.q.pop()!, 0);
    edit(t);
    t.offer(0);
    assert.throws(
      () => t.q.pop(),
      (e: unknown) => e instanceof GuestProtocolError,
      'the changed descriptor must be checked again',
    );
  }
});

test('a re-posted descriptor whose bytes read as a NaN double is walked each time, with the words it carries', () => {
  // flags WRITE, next 0xfff8 (ignored without NEXT): the length/flags/next half reads as a NaN double,
  // which equals no memo, so every pop walks; the lengths must be the ones written.
  const t = setup();
  for (const len of [64, 64, 40, 40]) {
    t.d(0, t.data, len, VIRTQ_DESC_F_WRITE, 0xfff8);
    t.offer(0);
    const c = t.q.pop()!;
    assert.equal(view(c), { offsets: [t.data], lengths: [len], readableCount: 0, readableBytes: 0, writableBytes: len });
    t.q.pushUsed(c, 0);
  }
});

test('descriptors whose memo halves differ only as +0 and -0 give the chain a fresh walk gives', () => {
  // An empty readable descriptor at address 0 is memoised as (+0, +0). Address 2^63 (upper half
  // 0x80000000) and next 0x8000 without NEXT read as -0: equal to the memo, and the walk of either
  // would give the same empty chain, which is what pop() must return.
  const fresh = (edit: (t: ReturnType<typeof setup>) => void) => {
    const t = setup();
    edit(t);
    t.offer(0);
    return view(t.q.pop()!);
  };
  const t = setup();
  t.d(0, 0, 0, 0);
  t.offer(0);
  t.q.pushUsed(t.q.pop()!, 0);
  for (const edit of [
    (u: ReturnType<typeof setup>) => {
      u.d(0, 0, 0, 0);
      u.v.setUint32(POOL + 4, 0x80000000, true);
    },
    (u: ReturnType<typeof setup>) => u.d(0, 0, 0, 0, 0x8000),
  ]) {
    edit(t);
    t.offer(0);
    const c = t.q.pop()!;
    assert.equal(view(c), fresh(edit));
    assert.equal(view(c), { offsets: [], lengths: [], readableCount: 0, readableBytes: 0, writableBytes: 0 });
    t.q.pushUsed(c, 0);
  }
});

test('inFlightCount counts popped chains not yet returned', () => {
  const t = setup();
  for (let i = 0; i < 3; i++) {
    t.d(i, t.data + 64 * i, 64, VIRTQ_DESC_F_WRITE);
    t.offer(i);
  }
  const a = t.q.pop()!;
  const b = t.q.pop()!;
  assert.is(t.q.inFlightCount, 2);
  t.q.pushUsed(a, 0);
  assert.is(t.q.inFlightCount, 1);
  t.q.pushUsed(b, 0);
  t.q.pushUsed(t.q.pop()!, 0);
  assert.is(t.q.inFlightCount, 0);
});

test.run();
