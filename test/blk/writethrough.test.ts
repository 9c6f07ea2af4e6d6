// CONFIG_WCE (virtio §5.2.5): in writethrough mode every write is made durable (a storage flush)
// before it completes; without FLUSH negotiated the device is writethrough from the start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_BLK_F_CONFIG_WCE, VIRTIO_BLK_F_FLUSH } from '../../firmware/devices/blk';
import { BLK_DRIVER_FEATURES, BlkDriver } from '../../frontend/drivers/blk';
import { blkSim } from './_blk';

const flushes = (b: Awaited<ReturnType<typeof blkSim>>) => b.s.runtime.hostCalls['storageFlush'] ?? 0;

test('writeback: writes do not flush; switching to writethrough makes each write flush', async () => {
  const b = await blkSim();
  const blk = await BlkDriver.open((await b.s.frontend()).find(2)!);
  assert.is(blk.config.writeback, 1, 'writeback by default with FLUSH');
  let f0 = flushes(b);
  await blk.write(0, new Uint8Array(512));
  assert.is(flushes(b), f0, 'no flush for a writeback write');
  assert.ok(await blk.setWriteback(false), 'driver may switch with CONFIG_WCE');
  assert.is(blk.config.writeback, 0, 'config says writethrough');
  f0 = flushes(b);
  await blk.write(0, new Uint8Array(512));
  await blk.write(1, new Uint8Array(512));
  assert.is(flushes(b), f0 + 2, 'one storage flush per writethrough write');
  b.done();
});

test('without FLUSH negotiated the device is writethrough and refuses a writeback switch', async () => {
  const b = await blkSim();
  const blk = await BlkDriver.open((await b.s.frontend()).find(2)!, { features: BLK_DRIVER_FEATURES & ~VIRTIO_BLK_F_FLUSH });
  assert.is(blk.config.writeback, 0, 'writethrough');
  const f0 = flushes(b);
  await blk.write(0, new Uint8Array(512));
  assert.is(flushes(b), f0 + 1, 'the write was flushed');
  b.done();
});

test('without CONFIG_WCE the writeback field is read-only', async () => {
  const b = await blkSim();
  const blk = await BlkDriver.open((await b.s.frontend()).find(2)!, { features: BLK_DRIVER_FEATURES & ~VIRTIO_BLK_F_CONFIG_WCE });
  assert.not.ok(await blk.setWriteback(false), 'switch refused');
  assert.is(blk.config.writeback, 1, 'still writeback');
  b.done();
});

test.run();
