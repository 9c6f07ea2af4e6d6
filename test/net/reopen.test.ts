// A driver opened again on the same device (a bench switching split ↔ packed between runs) gets the
// first driver's buffers back from the pool at the reset, and the reopened interfaces still exchange frames.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetDriver } from '../../frontend/drivers/net';
import { ether, MAC0, MAC1, NET0, NET1, netSim, receiveN } from './_net';

test('reopening a net driver ten times, switching ring formats, leaks no pool memory', async () => {
  const s = await netSim();
  const fe = await s.frontend();
  const [da, db] = [fe.devices[NET0]!, fe.devices[NET1]!];
  const open = async (ring: 'split' | 'packed') => {
    da.ring = ring;
    db.ring = ring;
    return [await NetDriver.open(da, { queueSize: 256 }), await NetDriver.open(db, { queueSize: 256 })] as const;
  };
  await open('split');
  const usedOnce = da.pool.used;
  for (let k = 0; k < 10; k++) {
    const ring = k % 2 ? 'split' : 'packed';
    const [a, b] = await open(ring);
    const frame = ether(MAC1, MAC0, 0x88b5, new Uint8Array(1400).fill(k));
    await a.send([frame]);
    assert.equal((await receiveN(b, 1)).map((f) => f.data), [frame], `open ${k + 2} (${ring}): the frame arrived`);
  }
  await open('split');
  assert.is(da.pool.used, usedOnce, 'pool bytes in use after 12 opens = after the first (the resets gave the buffers back)');
  s.dispose();
});

test.run();
