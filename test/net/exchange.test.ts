// Two frontend interfaces talk through the switch: MAC from the config space, frames both ways, byte-exact.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ether, MAC0, MAC1, netSim, receiveN, twoNics } from './_net';

test('two interfaces exchange frames through sw0, MACs come from the config space', async () => {
  const s = await netSim();
  const [a, b] = await twoNics(s);
  assert.equal(a.mac, MAC0, 'net0 MAC from config');
  assert.equal(b.mac, MAC1, 'net1 MAC from config');
  assert.is(a.mtu, 1500, 'MTU from config');
  assert.ok(await a.linkUp(), 'link up at start');
  const ab = Array.from({ length: 10 }, (_, i) => ether(MAC1, MAC0, 0x88b5, new Uint8Array(46 + i * 100).fill(i)));
  await a.send(ab);
  const got = await receiveN(b, 10);
  assert.equal(got.map((f) => f.data), ab, 'b received exactly what a sent, in order');
  const ba = ether(MAC0, MAC1, 0x88b5, new TextEncoder().encode('reply'));
  await b.send([ba]);
  assert.equal((await receiveN(a, 1)).map((f) => f.data), [ba], 'a received the reply');
  assert.equal(got[0]!.flags, 0, 'no checksum flags on a frame sent without offload');
  s.dispose();
});

test.run();
