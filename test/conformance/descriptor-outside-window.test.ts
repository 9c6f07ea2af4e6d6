import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { liveRng } from '../helpers';

test('a descriptor past the end of the window is a violation, not a memory access', async () => {
  const { s, ring } = await liveRng(8);
  const before = s.bytes.slice();
  ring.setDesc(0, s.layout.windowSize - 8, 16, VIRTQ_DESC_F_WRITE);
  ring.offer(0);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset);
  assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
  assert.equal(s.bytes.subarray(s.layout.windowSize - 8), before.subarray(s.layout.windowSize - 8), 'last window bytes untouched');
  s.dispose();
});

test('a descriptor with a non-zero upper address half is outside the window', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, ring.data, 16, VIRTQ_DESC_F_WRITE, 0, 1);
  ring.offer(0);
  ring.notify(0, 0);
  assert.is(s.stats().devices[0]!.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
  s.dispose();
});

test('a descriptor pointing into the window header or FIFOs is refused (buffers live in the pool)', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, s.layout.fifoV2D.offset, 64, VIRTQ_DESC_F_WRITE);
  ring.offer(0);
  ring.notify(0, 0);
  assert.ok(s.needsReset(0), 'a writable buffer over the FIFO must not be filled');
  s.dispose();
});

test.run();
