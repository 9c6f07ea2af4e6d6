// Frames towards a frontend that posts no receive buffers are queued up to a bound, then dropped and counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PORT_QUEUE_FRAMES } from '../../runtime/node/switch';
import { ether, HOST_MAC, MAC1, netSim, receiveN, twoNics } from './_net';

test('400 frames at a 16-buffer receiver: 16 delivered, PORT_QUEUE_FRAMES queued, the rest dropped and counted', async () => {
  const s = await netSim();
  const [, b] = await twoNics(s, { queueSize: 16 });
  const host = s.net();
  for (let i = 0; i < 400; i++) host.inject(ether(MAC1, HOST_MAC, 0x88b5, Uint8Array.of(i >> 8, i & 0xff, ...new Uint8Array(44))));
  const port = host.switch.port('net1')!;
  assert.is(port.queued, PORT_QUEUE_FRAMES, 'queue towards net1 stops at its bound');
  assert.is(port.counters.rxDroppedQueueFull, 400 - 16 - PORT_QUEUE_FRAMES, 'the excess is dropped and counted');
  const got = await receiveN(b, 16 + PORT_QUEUE_FRAMES);
  assert.is(got.length, 16 + PORT_QUEUE_FRAMES, 'once buffers are posted the queued frames arrive');
  assert.equal(got.slice(0, 3).map((f) => f.data[15]), [0, 1, 2], 'in order');
  s.dispose();
});

test.run();
