// Receive filtering (§5.1.6.5.1–2): with promiscuous mode off, only the own MAC, table entries, broadcast and allowed multicast arrive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BROADCAST, counters, ether, HOST_MAC, MAC1, NET1, netSim, twoNics } from './_net';

const OTHER = Uint8Array.of(0x52, 0x54, 0, 0xbb, 0, 9);
const EXTRA = Uint8Array.of(0x52, 0x54, 0, 0xcc, 0, 7);
const MCAST = Uint8Array.of(0x01, 0, 0x5e, 0, 0, 1);
const MCAST2 = Uint8Array.of(0x33, 0x33, 0, 0, 0, 1);

test('promisc off: own MAC, unicast table, broadcast and table multicast pass; others are filtered and counted', async () => {
  const s = await netSim();
  const [, b] = await twoNics(s);
  const host = s.net();
  const send = async (dst: Uint8Array) => {
    host.inject(ether(dst, HOST_MAC, 0x88b5, new Uint8Array(46)));
    return (await b.receive()).length;
  };
  assert.is(await send(OTHER), 1, 'promiscuous by default (as after reset): a foreign unicast arrives');
  assert.is(await b.rxMode(0, false), 0, 'PROMISC off → OK');
  assert.is(await b.setMacTable([EXTRA], [MCAST]), 0, 'MAC table set → OK');
  assert.is(await send(MAC1), 1, 'own MAC passes');
  assert.is(await send(EXTRA), 1, 'unicast table entry passes');
  assert.is(await send(BROADCAST), 1, 'broadcast passes');
  assert.is(await send(MCAST), 1, 'multicast table entry passes');
  assert.is(await send(OTHER), 0, 'foreign unicast filtered');
  assert.is(await send(MCAST2), 0, 'multicast not in the table filtered');
  assert.is(await b.rxMode(1, true), 0, 'ALLMULTI on');
  assert.is(await send(MCAST2), 1, 'any multicast passes with ALLMULTI');
  assert.is(await b.rxMode(5, true), 0, 'NOBCAST on');
  assert.is(await send(BROADCAST), 0, 'broadcast suppressed with NOBCAST');
  assert.is(await b.rxMode(4, true), 0, 'NOUNI on');
  assert.is(await send(MAC1), 0, 'even the own MAC is suppressed with NOUNI');
  assert.is(counters(s, NET1)['rxFiltered'], 4, 'four frames counted as rxFiltered');
  s.dispose();
});

test.run();
