/**
 * The native firmware killed with SIGKILL in the middle of block I/O and booted again on the same
 * ivshmem window (docs/security.md, "A restarted backend"): every write acknowledged by a completed
 * FLUSH is on the file (DESIGN §6.6); the new instance shows a new generation and touches neither the
 * pool nor the disk while the driver has not re-initialised the device; after it has, the
 * acknowledged data reads back through the device. BLK_SEED replays the kill points.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SECTOR_SIZE, VIRTIO_BLK_T_OUT } from '../../firmware/devices/blk';
import { H } from '../../firmware/window/layout';
import { VIRTIO_ID_BLOCK } from '../../firmware/virtio';
import { Frontend } from '../../frontend/device';
import type { BlkRequest } from '../../frontend/drivers/blk';
import { BlkDriver } from '../../frontend/drivers/blk';
import { rng } from '../blk/_rand';
import { board, scratch, withNative } from './_native';

const SECTORS = 2048; // 1 MiB: acknowledged writes in the lower half, the in-flight batch in the upper
const SEED = Number(process.env['BLK_SEED'] ?? 0x5e57a7);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);

async function openBlk(port: Parameters<typeof Frontend.attach>[0]): Promise<BlkDriver> {
  const fe = await Frontend.attach(port);
  return BlkDriver.open(fe.find(VIRTIO_ID_BLOCK)!, { queues: 1, queueDepth: 16, queueSize: 32 });
}

test(`SIGKILL mid-I/O: acknowledged writes survive, the restarted firmware acts on nothing stale (seed ${SEED})`, async () => {
  const r = rng(SEED);
  const tmp = scratch();
  const path = tmp.file('disk.img', new Uint8Array(SECTORS * SECTOR_SIZE));
  const acked = new Map<number, Uint8Array>(); // sector (of 8) -> the data a completed FLUSH acknowledged
  try {
    const b = board({ devices: [{ type: 'blk', service: 'disk0', queues: 1 }], services: { disk0: { kind: 'storage', path } } });
    await withNative({ board: b }, async (n) => {
      const bytes = n.port!.bytes;
      let blk = await openBlk(n.port!);
      for (let round = 0; round < 3; round++) {
        // acknowledged: writes, then a FLUSH that completed
        const writes: BlkRequest[] = [];
        for (let i = 0; i < 6; i++) writes.push({ type: VIRTIO_BLK_T_OUT, sector: 8 * r.int(0, SECTORS / 16 - 1), data: r.bytes(8 * SECTOR_SIZE) });
        for (const res of await blk.run(writes)) assert.is(res.status, 0, 'an acknowledged write failed');
        await blk.flush();
        for (const w of writes) acked.set(w.sector!, w.data!);

        // in flight when the backend dies: a batch made available and rung, the backend killed 0..4 ms
        // later, or (every other round) stopped before it could look (SIGSTOP): then the whole batch
        // and its EVENT_AVAIL are in the window, unconsumed
        const stale: BlkRequest[] = [];
        for (let i = 0; i < 16; i++) stale.push({ type: VIRTIO_BLK_T_OUT, sector: SECTORS / 2 + 8 * r.int(0, SECTORS / 16 - 1), data: r.bytes(8 * SECTOR_SIZE) });
        const frozen = round % 2 === 0;
        if (frozen) n.fw.kill('SIGSTOP');
        const pending = blk.run(stale, 1500).then(() => 'completed', () => 'abandoned');
        await sleep(r.int(0, 4));
        const gen = u32(bytes, H.backendGeneration);
        const exit = await n.restart('SIGKILL');
        assert.is(exit.signal, 'SIGKILL', `round ${round}: the firmware was not killed (${JSON.stringify(exit.code)})`);
        const outcome = await pending; // the old driver gives up on what it had in flight
        if (frozen) assert.is(outcome, 'abandoned', `round ${round}: the batch completed although the backend was stopped before it`);

        const file = new Uint8Array(readFileSync(path));
        for (const [sector, data] of acked) {
          assert.ok(Buffer.from(file.subarray(sector * SECTOR_SIZE, sector * SECTOR_SIZE + data.length)).equals(Buffer.from(data)),
            `round ${round}: the write at sector ${sector} was acknowledged by a FLUSH before the kill but is not on the file`);
        }
        assert.is(u32(bytes, H.backendGeneration), gen + 1, `round ${round}: the restarted firmware must announce a new generation`);

        // the new instance, rung and left alone, writes nothing into the pool nor the disk
        const poolOff = u32(bytes, H.poolOffset);
        const pool = bytes.slice(poolOff);
        for (let i = 0; i < 5; i++) {
          n.port!.kick();
          await sleep(20);
        }
        assert.ok(Buffer.from(bytes.subarray(poolOff)).equals(Buffer.from(pool)), `round ${round}: the restarted firmware wrote into the pool before the driver re-initialised`);
        assert.ok(Buffer.from(readFileSync(path)).equals(Buffer.from(file)), `round ${round}: the restarted firmware wrote to the disk from stale rings`);

        // the driver re-initialises: what was acknowledged reads back through the device
        blk = await openBlk(n.port!);
        for (const [sector, data] of acked) {
          const got = await blk.read(sector, data.length / SECTOR_SIZE);
          assert.ok(Buffer.from(got).equals(Buffer.from(data)), `round ${round}: sector ${sector} reads back different data after the restart`);
        }
      }
    });
  } finally {
    tmp.done();
  }
});

test.run();
