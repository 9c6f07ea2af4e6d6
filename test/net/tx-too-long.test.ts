// A transmitted frame longer than MTU + Ethernet header + VLAN tag is dropped and counted; one at the limit goes out.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST, ether, MAC0 } from './_net';
import { hdr, transmit } from './_tx';

test('frame of MTU + 18 passes, MTU + 19 is dropped and counted', async () => {
  const limit = ether(BROADCAST, MAC0, 0x88b5, new Uint8Array(1500 + 4));
  const over = ether(BROADCAST, MAC0, 0x88b5, new Uint8Array(1500 + 5));
  assert.is(limit.length, 1518);
  const { s, captured, c } = await transmit([
    { hdr: hdr(), frame: over },
    { hdr: hdr(), frame: limit },
  ]);
  assert.is(c['txDropped.long'], 1, 'the 1519-byte frame counted as txDropped.long');
  assert.equal(captured.map((f) => f.length), [1518], 'only the 1518-byte frame reached the switch');
  s.dispose();
});

test.run();
