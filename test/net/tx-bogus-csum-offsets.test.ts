// NEEDS_CSUM with csum_start/csum_offset past the frame (or inside the Ethernet header) is dropped, never trusted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST, ether, MAC0 } from './_net';
import { hdr, transmit } from './_tx';

test('csum_start + csum_offset + 2 past the frame, or csum_start inside the Ethernet header: dropped', async () => {
  const f = ether(BROADCAST, MAC0, 0x0800, new Uint8Array(50)); // 64 bytes
  const { s, captured, c } = await transmit([
    { hdr: hdr({ flags: 1, csumStart: 60, csumOffset: 3 }), frame: f },
    { hdr: hdr({ flags: 1, csumStart: 0xffff, csumOffset: 0xffff }), frame: f },
    { hdr: hdr({ flags: 1, csumStart: 4, csumOffset: 0 }), frame: f },
    { hdr: hdr({ flags: 1, csumStart: 60, csumOffset: 2 }), frame: f },
  ]);
  assert.is(c['txDropped.csumOffset'], 3, 'three frames counted as txDropped.csumOffset');
  assert.is(captured.length, 1, 'only the frame whose checksum field ends at the last byte went out');
  s.dispose();
});

test('checksum offsets are ignored without NEEDS_CSUM (virtio §5.1.6.2.2)', async () => {
  const f = ether(BROADCAST, MAC0, 0x0800, new Uint8Array(50));
  const { s, captured } = await transmit([{ hdr: hdr({ csumStart: 0xffff, csumOffset: 0xffff }), frame: f }]);
  assert.equal(captured, [f], 'frame sent unchanged');
  s.dispose();
});

test.run();
