// Link down/up at the switch port: STATUS follows, EVENT_CONFIG is sent, frames are not carried while down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, ether, MAC0, MAC1, NET0, netSim, receiveN, twoNics } from './_net';

test('link down → EVENT_CONFIG, STATUS 0, tx dropped; link up → EVENT_CONFIG, STATUS LINK_UP, traffic again', async () => {
  const s = await netSim();
  const [a, b] = await twoNics(s);
  const host = s.net();
  const ev0 = a.dev.configEvents;
  host.setLink('net0', false);
  a.dev.bus.poll();
  assert.is(a.dev.configEvents, ev0 + 1, 'one EVENT_CONFIG on link down');
  assert.is(await a.linkUp(), false, 'STATUS reads link down');
  await a.send([ether(MAC1, MAC0, 0x88b5, new Uint8Array(50))]);
  assert.is(counters(s, NET0)['txDropped.linkDown'], 1, 'frame sent while down counted as txDropped.linkDown');
  assert.is((await b.receive()).length, 0, 'nothing arrived at net1');
  host.setLink('net0', true);
  a.dev.bus.poll();
  assert.is(a.dev.configEvents, ev0 + 2, 'a second EVENT_CONFIG on link up');
  assert.is(await a.linkUp(), true, 'STATUS reads LINK_UP');
  await a.send([ether(MAC1, MAC0, 0x88b5, new Uint8Array(50))]);
  assert.is((await receiveN(b, 1)).length, 1, 'traffic flows again');
  s.dispose();
});

test.run();
