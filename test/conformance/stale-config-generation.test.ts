import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { P, request, sim, u32s } from '../helpers';

test('SET_CONFIG with a stale generation is rejected with size 0 (virtio-msg §ConfigGen)', async () => {
  const s = await sim();
  const g = request(s, 1, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 4))!;
  const gen = g.getUint32(0, true);
  const p = new Uint8Array(16);
  p.set(u32s(gen + 1, 0, 4));
  p.set([1, 2, 3, 4], 12);
  const a = request(s, 1, P.VIRTIO_MSG_SET_CONFIG, p)!;
  assert.is(a.getUint32(8, true), 0, 'rejected: number of bytes is 0');
  assert.is(a.getUint32(0, true), gen, 'answer carries the current generation');
  assert.ok(s.logs.some((l) => l.msg.includes('stale generation')), 'the log names the reason');
  const after = request(s, 1, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 4))!;
  assert.equal(new Uint8Array(after.buffer, after.byteOffset + 12, 4), new Uint8Array(g.buffer, g.byteOffset + 12, 4), 'config unchanged');
  s.dispose();
});

test('GET_CONFIG outside the config space answers 0 bytes', async () => {
  const s = await sim();
  const a = request(s, 1, P.VIRTIO_MSG_GET_CONFIG, u32s(8, 8))!;
  assert.is(a.getUint32(8, true), 0);
  s.dispose();
});

test.run();
