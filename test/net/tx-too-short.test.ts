// A transmit chain shorter than the virtio_net_hdr, or whose frame is shorter than an Ethernet header, is dropped and counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST, ether, MAC0 } from './_net';
import { hdr, transmit } from './_tx';

test('shorter than the header or than an Ethernet header: dropped, counted, device keeps serving', async () => {
  const good = ether(BROADCAST, MAC0, 0x88b5, new Uint8Array(50));
  const { s, captured, c } = await transmit([
    { hdr: new Uint8Array(6), frame: new Uint8Array(0) },
    { hdr: hdr(), frame: new Uint8Array(13) },
    { hdr: hdr(), frame: good },
  ]);
  assert.is(c['txDropped.shortHeader'], 1, 'a 6-byte chain counted as txDropped.shortHeader');
  assert.is(c['txDropped.short'], 1, 'a 13-byte frame counted as txDropped.short');
  assert.equal(captured, [good], 'only the good frame reached the switch');
  assert.is(s.needsReset(2), false, 'a bad frame is not a queue fault');
  s.dispose();
});

test.run();
