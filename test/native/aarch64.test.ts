/**
 * The aarch64 build of the firmware, run under qemu-aarch64-static -cpu cortex-a57 (a weakly ordered
 * CPU model: the fences matter), attached to the same ivshmem server as an x86-64 frontend. It boots
 * an image whose bytecode the x86-64 runtime compiled (QuickJS bytecode is the same on both
 * little-endian 64-bit targets). qemu-user cannot run seccomp filters, so this runs without one.
 */
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_ID_BLOCK } from '../../firmware/virtio';
import { Frontend } from '../../frontend/device';
import { BlkDriver } from '../../frontend/drivers/blk';
import { RngDriver } from '../../frontend/drivers/rng';
import { FW as FWS, runToEnd } from '../../runtime/native/harness.mjs';
import { buildImage } from '../../scripts/image.mjs';
import { board, BUNDLE, requireNative, scratch, withNative } from './_native';

const VIRTIO_ID_RNG = 4;

test('the aarch64 build identifies itself under qemu-user', async () => {
  requireNative();
  assert.ok(existsSync(FWS.aarch64), 'build/aarch64/bulkhead-fw (npm run setup:native)');
  const r = await runToEnd('qemu-aarch64-static', ['-cpu', 'cortex-a57', FWS.aarch64, '--version']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /abi 5 engine quickjs-\S+ arch aarch64/);
});

test('aarch64 firmware boots an x86-64-compiled bytecode image and serves rng and blk to an x86-64 frontend', async () => {
  const tmp = scratch();
  try {
    const disk = tmp.file('disk.img', new Uint8Array(1 << 20));
    const b = board({ devices: [{ type: 'blk', service: 'disk0' }], services: { disk0: { kind: 'storage', path: disk, readOnly: false } } });
    const boardPath = tmp.file('board.json', new TextEncoder().encode(JSON.stringify(b)));
    const image = tmp.file('part.img', buildImage({ board: boardPath, bundle: BUNDLE }));
    await withNative({ image, board: boardPath, arch: 'aarch64', readyTimeoutMs: 60_000 }, async (n) => {
      assert.match(n.stderr(), /aarch64/);
      const fe = await Frontend.attach(n.port!);
      assert.is(await fe.ping(0xa64), 0xa64);
      const rng = await RngDriver.open(fe.find(VIRTIO_ID_RNG)!);
      assert.is((await rng.read(32)).length, 32);
      const blk = await BlkDriver.open(fe.find(VIRTIO_ID_BLOCK)!);
      const data = new Uint8Array(8192).map((_, i) => (i * 13) & 0xff);
      await blk.write(8, data);
      await blk.flush();
      assert.equal(await blk.read(8, 16), data);
      for (let i = 0; i < 50; i++) assert.is(await fe.ping(i), i);
    });
  } finally {
    tmp.done();
  }
});

test.run();
