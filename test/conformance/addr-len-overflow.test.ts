import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { liveRng } from '../helpers';

test('addr + len that wraps past 2^32 is rejected (overflow-safe bounds check)', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, 0xfffff000, 0x2000, VIRTQ_DESC_F_WRITE);
  ring.offer(0);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset, 'device NEEDS_RESET');
  assert.is(dev.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
  assert.is(s.runtime.faults.length, 0, 'no exception escaped the firmware');
  s.dispose();
});

test('a huge length from a valid address is rejected', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, ring.data, 0xffffffff, VIRTQ_DESC_F_WRITE);
  ring.offer(0);
  ring.notify(0, 0);
  assert.is(s.stats().devices[0]!.counters['violation.ADDR_OUTSIDE_WINDOW'], 1);
  s.dispose();
});

test.run();
