import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_INDIRECT_DESC, VIRTIO_F_VERSION_1, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { liveRng } from '../helpers';

const F = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_F_RING_INDIRECT_DESC;

test('an indirect descriptor inside an indirect table is a violation (virtio §2.7.5.3.1)', async () => {
  const { s, ring } = await liveRng(8, F);
  const table = ring.data + 4096;
  ring.setDesc(0, table, 32, VIRTQ_DESC_F_INDIRECT);
  ring.setDesc(0, table + 64, 16, VIRTQ_DESC_F_INDIRECT, 0, 0, table);
  ring.setDesc(1, ring.data, 16, VIRTQ_DESC_F_WRITE, 0, 0, table);
  ring.offer(0);
  ring.notify(0, 0);
  const dev = s.stats().devices[0]!;
  assert.ok(dev.needsReset);
  assert.is(dev.counters['violation.NESTED_INDIRECT'], 1);
  s.dispose();
});

test('a valid indirect chain is served', async () => {
  const { s, ring } = await liveRng(8, F);
  const table = ring.data + 4096;
  ring.setDesc(0, table, 16, VIRTQ_DESC_F_INDIRECT);
  ring.setDesc(0, ring.data, 32, VIRTQ_DESC_F_WRITE, 0, 0, table);
  ring.offer(0);
  ring.notify(0, 0);
  assert.not.ok(s.needsReset(0));
  assert.equal(ring.usedElem(0), { id: 0, len: 32 });
  s.dispose();
});

test('INDIRECT without VIRTIO_F_RING_INDIRECT_DESC negotiated is a violation', async () => {
  const { s, ring } = await liveRng(8);
  ring.setDesc(0, ring.data + 4096, 16, VIRTQ_DESC_F_INDIRECT);
  ring.offer(0);
  ring.notify(0, 0);
  assert.is(s.stats().devices[0]!.counters['violation.INDIRECT_NOT_NEGOTIATED'], 1);
  s.dispose();
});

test.run();
