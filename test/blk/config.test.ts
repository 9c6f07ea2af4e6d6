// The config space reflects the image and the manifest (virtio §5.2.4), and MQ queues all serve.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BLK_SEG_MAX, BLK_SIZE_MAX, VIRTIO_BLK_F_MQ } from '../../firmware/devices/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { blkSim } from './_blk';

test('capacity comes from the file size (whole sectors), num_queues from the manifest', async () => {
  const b = await blkSim({ sizeBytes: 100 * 512 + 300, queues: 3 });
  const fe = await b.s.frontend();
  assert.is(fe.find(2)!.info.maxQueues, 3, 'GET_DEVICE_INFO max_virtqueues');
  const blk = await BlkDriver.open(fe.find(2)!, { queues: 3 });
  assert.ok(blk.features & VIRTIO_BLK_F_MQ, 'MQ negotiated');
  assert.is(blk.capacity, 100, 'capacity in whole sectors');
  assert.is(blk.config.numQueues, 3);
  assert.is(blk.config.sizeMax, BLK_SIZE_MAX);
  assert.is(blk.config.segMax, BLK_SEG_MAX);
  assert.is(blk.config.blkSize, 512);
  assert.is(blk.queueCount, 3);
  const res = await blk.run([0, 1, 2].map((q) => ({ type: 0, sector: q, len: 512, queue: q })));
  assert.equal(res.map((r) => r.data), [0, 1, 2].map((q) => b.initial.slice(q * 512, q * 512 + 512)), 'each queue serves reads');
  assert.equal(await blk.read(99, 1), b.initial.slice(99 * 512, 100 * 512), 'last sector readable');
  b.done();
});

test.run();
