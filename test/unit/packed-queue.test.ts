// The packed virtqueue (firmware/virtqueue/packed.ts) against the TS sources in V8, with a window that is
// a plain ArrayBuffer and a well-behaved driver (frontend/fuzz/ring.ts PackedRing) writing the ring.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GuestProtocolError } from '../../firmware/errors';
import {
  RING_EVENT_FLAGS_DESC,
  RING_EVENT_FLAGS_DISABLE,
  RING_EVENT_FLAGS_ENABLE,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from '../../firmware/virtio';
import type { DescriptorChain } from '../../firmware/virtqueue/chain';
import { PackedQueue, validatePackedConfig } from '../../firmware/virtqueue/packed';
import { GuestWindow } from '../../firmware/window/window';
import { PackedRing } from '../../frontend/fuzz/ring';

const POOL = 0x1000;
function setup(size = 8, eventIdx = false) {
  const buf = new ArrayBuffer(1 << 20);
  const win = new GuestWindow(buf, POOL);
  const r = new PackedRing(() => new Uint8Array(buf), size, POOL);
  let fences = 0;
  const q = new PackedQueue(win, 0, size, r.desc, r.driver, r.device, eventIdx, true, () => fences++);
  return { q, r, buf, data: r.data, fences: () => fences };
}

/** The violation code `fn` throws. */
function violation(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof GuestProtocolError) return e.code;
    throw e;
  }
  return 'none';
}

test('pop returns a validated list: readable segments first, then writable; the buffer id is the last descriptor’s', () => {
  const t = setup();
  const w = t.r.write([{ off: t.data, len: 16 }, { off: t.data + 16, len: 0 }, { off: t.data + 32, len: 100, write: true }], 5);
  t.r.setDesc(0, t.data, 16, 9, t.r.descAt(0).flags); // ids of the other descriptors are not the buffer's
  t.r.publish(w);
  const c = t.q.pop()!;
  assert.is(c.headIndex, 5, 'buffer id from the last descriptor (§2.8.6)');
  assert.is(c.readableBytes, 16);
  assert.is(c.writableBytes, 100);
  assert.equal(c.offsets, [t.data, t.data + 32], 'the zero-length descriptor carries nothing');
  assert.is(t.q.pop(), null);
  assert.is(t.q.inFlightCount, 1);
});

test('a descriptor is not consumed before its AVAIL/USED bits say available under the wrap counter (§2.8.1)', () => {
  const t = setup();
  const w = t.r.write([{ off: t.data, len: 8, write: true }], 0);
  assert.is(t.q.pop(), null, 'consumed before the head was published');
  assert.not.ok(t.q.hasAvailable());
  t.r.publish(w);
  assert.ok(t.q.hasAvailable());
  assert.ok(t.q.pop());
});

test('one fence per batch of descriptors read (the flags before the rest), as the split ring’s avail idx', () => {
  const t = setup(16);
  for (let i = 0; i < 8; i++) t.r.offer([{ off: t.data + 64 * i, len: 16, write: true }, { off: t.data + 64 * i + 16, len: 16, write: true }], i);
  const f0 = t.fences();
  for (let i = 0; i < 8; i++) assert.ok(t.q.pop(), `buffer ${i}`);
  assert.is(t.q.pop(), null);
  assert.is(t.fences() - f0, 1, 'fences for 8 buffers of 2 descriptors');
});

test('buffers completed out of order: each used descriptor carries its id, the driver skips the right descriptors', () => {
  const t = setup(8);
  const seg = (k: number) => ({ off: t.data + 256 * k, len: 64, write: true });
  t.r.offer([seg(0), seg(1), seg(2)], 3); // A: 3 descriptors
  t.r.offer([seg(3)], 1); // B: 1
  t.r.offer([seg(4), seg(5)], 6); // C: 2
  const a = t.q.pop()!;
  const b = t.q.pop()!;
  const c = t.q.pop()!;
  assert.equal([a.headIndex, b.headIndex, c.headIndex], [3, 1, 6]);
  t.q.pushUsed(c, 10);
  t.q.pushUsed(a, 0);
  assert.equal(t.r.reap(), [], 'used descriptors visible before publishUsed');
  t.q.publishUsed();
  const got = t.r.reap();
  assert.equal(got.map((u) => [u.id, u.len]), [[6, 10], [3, 0]], 'used in completion order with their ids');
  assert.ok(got[0]!.flags & VIRTQ_DESC_F_WRITE, 'WRITE set on a used descriptor that wrote data (§2.8.3)');
  assert.not.ok(got[1]!.flags & VIRTQ_DESC_F_WRITE, 'WRITE clear when nothing was written');
  t.q.pushUsed(b, 7);
  t.q.publishUsed();
  assert.equal(t.r.reap().map((u) => [u.id, u.len]), [[1, 7]]);
  assert.is(t.r.nextUsed, 6, 'the driver skipped 2 + 3 + 1 descriptors');
  assert.is(t.q.inFlightCount, 0);
});

test('many laps of a ring whose size is not a power of two, lists crossing the end, out of order', () => {
  for (const size of [1, 3, 5, 7, 100]) {
    const t = setup(size);
    let next = 0;
    let done = 0;
    const held: DescriptorChain[] = [];
    for (let round = 0; round < 40 * size; round++) {
      const n = 1 + ((round * 7) % Math.min(3, size));
      if (t.r.inFlight.size < size && size - [...t.r.inFlight.values()].reduce((x, y) => x + y, 0) >= n) {
        const id = [...Array(size).keys()].find((k) => !t.r.inFlight.has(k))!;
        t.r.offer(Array.from({ length: n }, (_, k) => ({ off: t.data + 64 * ((next + k) % 64), len: 8, write: true })), id);
        next += n;
      }
      for (let c = t.q.pop(); c; c = t.q.pop()) held.push(c);
      // complete the newest first every other round: out of order
      const k = round % 2 ? held.length - 1 : 0;
      if (held.length) {
        const c = held.splice(k, 1)[0]!;
        t.q.pushUsed(c, 8 * c.segments);
        t.q.publishUsed();
        const used = t.r.reap();
        assert.equal(used.map((u) => u.id), [c.headIndex], `size ${size} round ${round}: used id`);
        assert.is(used[0]!.len, 8 * c.segments);
        done++;
      }
    }
    assert.ok(done > 2 * size, `size ${size}: ${done} buffers completed`);
  }
});

test('a list crossing the end of the ring reads its descriptors under both wrap counters', () => {
  const t = setup(4);
  for (let i = 0; i < 3; i++) t.r.offer([{ off: t.data, len: 4, write: true }], i);
  for (let i = 0; i < 3; i++) t.q.pushUsed(t.q.pop()!, 4);
  t.q.publishUsed();
  assert.is(t.r.reap().length, 3);
  t.r.offer([{ off: t.data, len: 4 }, { off: t.data + 4, len: 4, write: true }, { off: t.data + 8, len: 4, write: true }], 2); // descriptors 3, 0, 1
  assert.is(t.r.descAt(3).flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED), VIRTQ_DESC_F_AVAIL, 'descriptor 3 of wrap 1');
  assert.is(t.r.descAt(0).flags & (VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED), VIRTQ_DESC_F_USED, 'descriptor 0 of wrap 0');
  const c = t.q.pop()!;
  assert.equal([c.headIndex, c.readableBytes, c.writableBytes], [2, 4, 8]);
  assert.is(t.q.nextAvail, 2);
  assert.is(t.q.availWrap, 0);
});

test('the driver event suppression structure decides used buffer notifications (§2.8.10)', () => {
  const t = setup(8);
  const one = () => {
    t.r.offer([{ off: t.data, len: 4, write: true }], 0);
    t.q.pushUsed(t.q.pop()!, 4);
    const n = t.q.publishUsed();
    t.r.reap();
    return n;
  };
  t.r.setDriverEvent(RING_EVENT_FLAGS_ENABLE);
  assert.ok(one(), 'ENABLE');
  t.r.setDriverEvent(RING_EVENT_FLAGS_DISABLE);
  assert.not.ok(one(), 'DISABLE');
  t.r.setDriverEvent(RING_EVENT_FLAGS_ENABLE | 0xfffc); // reserved bits are ignored
  assert.ok(one(), 'ENABLE with reserved bits');
  assert.not.ok(t.q.publishUsed(), 'nothing new to publish');
});

test('RING_EVENT_FLAGS_DESC with EVENT_IDX: notified when the used position passes the driver’s offset and wrap', () => {
  const t = setup(4, true);
  const used = () => {
    t.r.offer([{ off: t.data, len: 4, write: true }], 0);
    t.q.pushUsed(t.q.pop()!, 4);
    const n = t.q.publishUsed();
    t.r.reap();
    return n;
  };
  t.r.setDriverEvent(RING_EVENT_FLAGS_DESC, 2, 1); // notify when descriptor 2 of wrap 1 is used
  assert.not.ok(used(), 'descriptor 0 used');
  assert.not.ok(used(), 'descriptor 1 used');
  assert.ok(used(), 'descriptor 2 used');
  assert.not.ok(used(), 'descriptor 3 used (past the event)');
  t.r.setDriverEvent(RING_EVENT_FLAGS_DESC, 0, 1); // wrap 1, but the device is on wrap 0 now: a lap behind
  assert.not.ok(used(), 'an event of the previous lap');
  t.r.setDriverEvent(RING_EVENT_FLAGS_DESC, 1, 0); // descriptor 1 of wrap 0: the next one
  assert.ok(used(), 'descriptor 1 of wrap 0');
});

test('bogus driver event suppression values are violations: reserved flags, DESC without EVENT_IDX, offset beyond the ring', () => {
  const cases: [string, boolean, () => [number, number, number], string][] = [
    ['flags 3', true, () => [3, 0, 0], 'EVENT_FLAGS_RESERVED'],
    ['DESC without EVENT_IDX', false, () => [RING_EVENT_FLAGS_DESC, 0, 1], 'EVENT_FLAGS_DESC'],
    ['offset = size', true, () => [RING_EVENT_FLAGS_DESC, 8, 1], 'EVENT_OFF_OUT_OF_RANGE'],
    ['offset 0x7fff', true, () => [RING_EVENT_FLAGS_DESC, 0x7fff, 0], 'EVENT_OFF_OUT_OF_RANGE'],
  ];
  for (const [what, eventIdx, ev, code] of cases) {
    const t = setup(8, eventIdx);
    t.r.setDriverEvent(...ev());
    t.r.offer([{ off: t.data, len: 4, write: true }], 0);
    t.q.pushUsed(t.q.pop()!, 4);
    assert.is(violation(() => t.q.publishUsed()), code, what);
  }
});

test('armAvailEvent asks for the next descriptor with EVENT_IDX, and leaves notifications enabled without', () => {
  const t = setup(4, true);
  assert.equal(t.r.deviceEvent(), { flags: RING_EVENT_FLAGS_DESC, off: 0, wrap: 1 }, 'initial: descriptor 0 of wrap 1');
  for (let i = 0; i < 5; i++) {
    t.r.offer([{ off: t.data, len: 4, write: true }], 0);
    t.q.pushUsed(t.q.pop()!, 4);
    t.q.publishUsed();
    t.r.reap();
  }
  assert.not.ok(t.q.armAvailEvent());
  assert.equal(t.r.deviceEvent(), { flags: RING_EVENT_FLAGS_DESC, off: 1, wrap: 0 }, 'descriptor 1 of wrap 0');
  t.r.offer([{ off: t.data, len: 4, write: true }], 0);
  assert.ok(t.q.armAvailEvent(), 'a buffer that arrived meanwhile is seen');
  const u = setup(4, false);
  assert.not.ok(u.q.armAvailEvent());
  assert.equal(u.r.deviceEvent().flags, RING_EVENT_FLAGS_ENABLE);
});

test('an indirect table is walked in order; only WRITE counts, other flags and ids in it are ignored (§2.8.7)', () => {
  const t = setup();
  const table = t.data + 0x1000;
  t.r.offerIndirect([{ off: t.data, len: 8 }, { off: t.data + 8, len: 16, write: true }, { off: t.data + 24, len: 4, write: true }], 4, table);
  t.r.setDesc(0, t.data, 8, 77, VIRTQ_DESC_F_NEXT, table); // NEXT and an id in a table: ignored
  const c = t.q.pop()!;
  assert.equal([c.headIndex, c.readableBytes, c.writableBytes, c.segments], [4, 8, 20, 3]);
  t.q.pushUsed(c, 20);
  t.q.publishUsed();
  assert.equal(t.r.reap().map((u) => [u.id, u.len]), [[4, 20]]);
});

test('validatePackedConfig: any size 1..max, 16-byte descriptor ring, 4-byte event structures, inside the pool', () => {
  const win = new GuestWindow(new ArrayBuffer(1 << 20), POOL);
  const a = { descLo: POOL, descHi: 0, driverLo: POOL + 0x800, driverHi: 0, deviceLo: POOL + 0x804, deviceHi: 0 };
  assert.equal(validatePackedConfig(win, 100, 256, a), { desc: POOL, driver: POOL + 0x800, device: POOL + 0x804 });
  assert.ok(validatePackedConfig(win, 1, 256, a));
  assert.is(violation(() => validatePackedConfig(win, 0, 256, a)), 'QUEUE_SIZE');
  assert.is(violation(() => validatePackedConfig(win, 257, 256, a)), 'QUEUE_SIZE');
  assert.is(violation(() => validatePackedConfig(win, 8, 256, { ...a, descLo: POOL + 8 })), 'QUEUE_ALIGN');
  assert.is(violation(() => validatePackedConfig(win, 8, 256, { ...a, driverLo: POOL + 0x802 })), 'QUEUE_ALIGN');
  assert.is(violation(() => validatePackedConfig(win, 8, 256, { ...a, deviceLo: POOL + 0x806 })), 'QUEUE_ALIGN');
  assert.is(violation(() => validatePackedConfig(win, 8, 256, { ...a, descLo: 0 })), 'ADDR_OUTSIDE_WINDOW');
  assert.is(violation(() => validatePackedConfig(win, 8, 256, { ...a, deviceLo: (1 << 20) - 2 })), 'ADDR_OUTSIDE_WINDOW');
});

/** What a chain says about itself, for comparing a re-posted buffer with a fresh walk. */
const view = (c: DescriptorChain) => ({ offsets: c.offsets, lengths: c.lengths, readableCount: c.readableCount, readableBytes: c.readableBytes, writableBytes: c.writableBytes });

test('a buffer id re-posted with the same single descriptor gives the same chain; any changed field is walked again', () => {
  const t = setup(4);
  const repost = (segs: { off: number; len: number; write?: boolean }[]) => {
    t.r.offer(segs, 2);
    const c = t.q.pop()!;
    const seen = view(c);
    t.q.pushUsed(c, 0);
    t.q.publishUsed();
    t.r.reap();
    return seen;
  };
  const first = repost([{ off: t.data, len: 64 }]);
  assert.equal(first, { offsets: [t.data], lengths: [64], readableCount: 1, readableBytes: 64, writableBytes: 0 });
  for (let lap = 0; lap < 6; lap++) assert.equal(repost([{ off: t.data, len: 64 }]), first, `same fields, same chain (lap ${lap}: the wrap bits change, the chain does not)`);
  assert.equal(repost([{ off: t.data + 128, len: 64 }]), { offsets: [t.data + 128], lengths: [64], readableCount: 1, readableBytes: 64, writableBytes: 0 }, 'new address');
  assert.equal(repost([{ off: t.data + 128, len: 32 }]).lengths, [32], 'new length');
  assert.equal(repost([{ off: t.data + 128, len: 32, write: true }]).writableBytes, 32, 'new direction');
  assert.equal(repost([{ off: t.data, len: 16 }, { off: t.data + 64, len: 48, write: true }]), { offsets: [t.data, t.data + 64], lengths: [16, 48], readableCount: 1, readableBytes: 16, writableBytes: 48 }, 'now a list of two');
  assert.equal(repost([{ off: t.data, len: 64 }]), first, 'back to the first layout');
});

test('a re-posted buffer whose only change puts it outside the pool is refused, not served from the last walk', () => {
  for (const [what, addr, len, hi] of [['below the pool', POOL - 16, 64, 0], ['past the window', 0, (1 << 20) + 1, 0], ['upper address half', 0, 64, 1]] as const) {
    const t = setup();
    t.r.offer([{ off: t.data, len: 64 }], 0);
    t.q.pushUsed(t.q.pop()!, 0);
    t.q.publishUsed();
    t.r.reap();
    const w = t.r.write([{ off: t.data, len: 64 }], 0);
    t.r.setDesc(w.head, addr || t.data, len, 0, t.r.descAt(w.head).flags, t.r.desc, hi);
    t.r.publish(w);
    assert.is(violation(() => t.q.pop()), 'ADDR_OUTSIDE_WINDOW', `${what}: the changed descriptor must be checked again`);
  }
});

test('pushUsed refuses what the queue did not hand out (a host bug, not a guest fault)', () => {
  const t = setup();
  t.r.offer([{ off: t.data, len: 4, write: true }], 0);
  const c = t.q.pop()!;
  assert.throws(() => t.q.pushUsed(c, 5), /used length 5 > writable 4/);
  t.q.pushUsed(c, 4);
  assert.throws(() => t.q.pushUsed(c, 4), /not in flight/);
});

test.run();
