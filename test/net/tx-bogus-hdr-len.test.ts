// A transmit header whose hdr_len points past the frame is dropped, never trusted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST, ether, MAC0 } from './_net';
import { hdr, transmit } from './_tx';

test('hdr_len beyond the frame: dropped and counted', async () => {
  const f = ether(BROADCAST, MAC0, 0x88b5, new Uint8Array(50));
  const { s, captured, c } = await transmit([{ hdr: hdr({ hdrLen: f.length + 1 }), frame: f }, { hdr: hdr({ hdrLen: f.length }), frame: f }]);
  assert.is(c['txDropped.hdrLen'], 1, 'counted as txDropped.hdrLen');
  assert.is(captured.length, 1, 'the frame with hdr_len = frame length went out, the other did not');
  s.dispose();
});

test.run();
