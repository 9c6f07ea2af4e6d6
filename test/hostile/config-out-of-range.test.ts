import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as P from '../../firmware/transport/protocol';
import { le32 } from '../../frontend/fuzz/ring';
import { assertBusAnswers, CONSOLE, hostile, RNG } from './harness';

test('config reads and writes outside the config space (incl. u32 wrap-around) return nothing and change nothing', async () => {
  const { sim, drv } = await hostile();
  const good = drv.request(CONSOLE, P.VIRTIO_MSG_GET_CONFIG, le32(0, 12))!;
  const config = new Uint8Array(good.buffer, good.byteOffset + 12, 12).slice();
  for (const [off, len] of [[0, 13], [12, 1], [0xffffffff, 2], [4, 0xfffffffe], [0x80000000, 0x80000000]]) {
    const a = drv.request(CONSOLE, P.VIRTIO_MSG_GET_CONFIG, le32(off!, len!));
    assert.ok(a, `no answer to GET_CONFIG [${off} +${len}]`);
    assert.is(a!.getUint32(8, true), 0, `GET_CONFIG [${off} +${len}] returned bytes`);
    const w = drv.request(CONSOLE, P.VIRTIO_MSG_SET_CONFIG, new Uint8Array([...le32(0, off!, 4), 1, 2, 3, 4]));
    assert.ok(!w || w.getUint32(8, true) === 0, `SET_CONFIG [${off} +4] accepted`);
  }
  // A SET_CONFIG announcing more bytes than it carries is dropped.
  drv.request(CONSOLE, P.VIRTIO_MSG_SET_CONFIG, le32(0, 0, 200));
  const after = drv.request(CONSOLE, P.VIRTIO_MSG_GET_CONFIG, le32(0, 12))!;
  assert.equal(new Uint8Array(after.buffer, after.byteOffset + 12, 12).slice(), config, 'config space changed');
  assert.equal(sim.runtime.faults, [], 'an exception escaped');
  assertBusAnswers(drv, [RNG, CONSOLE], 'after config attacks');
  sim.dispose();
});

test.run();
