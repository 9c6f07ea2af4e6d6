// No GSO is offered: a transmit header with any gso_type other than NONE is dropped and counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST, ether, MAC0 } from './_net';
import { hdr, transmit } from './_tx';

test('gso_type TCPV4, UDP, ECN bit and garbage: dropped and counted', async () => {
  const f = ether(BROADCAST, MAC0, 0x0800, new Uint8Array(50));
  const { s, captured, c } = await transmit([1, 3, 0x80, 0x7f].map((g) => ({ hdr: hdr({ gsoType: g, gsoSize: 1000 }), frame: f })));
  assert.is(c['txDropped.gsoType'], 4, 'four frames counted as txDropped.gsoType');
  assert.is(captured.length, 0, 'nothing reached the switch');
  s.dispose();
});

test.run();
