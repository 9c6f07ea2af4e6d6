// MQ (§5.1.6.5.6): receiveq1 only until VQ_PAIRS_SET; then a flow's replies follow the transmitq it last used.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_CTRL_VQ, VIRTIO_NET_F_MQ } from '../../firmware/devices/net';
import { NetDriver } from '../../frontend/drivers/net';
import { HOST_MAC, NET0, netSim, udpFrame } from './_net';

test('two pairs: receiveq1 before VQ_PAIRS_SET; after it, replies of a flow sent on transmitq2 land in receiveq2', async () => {
  const s = await netSim({ queuePairs: 2 });
  const fe = await s.frontend();
  const dev = fe.devices[NET0]!;
  assert.is(dev.info.maxQueues, 5, 'two pairs and a control queue');
  const a = await NetDriver.open(dev, { queueSize: 16, features: VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_MQ });
  // receiveq2 / transmitq2 by hand (the driver model runs one pair)
  const rx2 = await dev.setupQueue(2, 16);
  const tx2 = await dev.setupQueue(3, 16);
  const rxBuf = dev.pool.alloc(4 * 1526);
  for (let i = 0; i < 4; i++) rx2.add([], [{ off: rxBuf + i * 1526, len: 1526 }], i);
  await rx2.kick();
  const host = s.net();
  // a reply from the host on the flow 10.0.0.2:5678 → 10.0.0.1:1234 (the mirror of udpFrame's flow)
  const reply = () => {
    const u = udpFrame(a.mac, HOST_MAC, new Uint8Array(20));
    const f = u.frame;
    const ip = f.slice(26, 34);
    f.set(ip.subarray(4, 8), 26);
    f.set(ip.subarray(0, 4), 30);
    f.set([0x16, 0x2e, 0x04, 0xd2], 34); // ports 5678 → 1234
    return f;
  };
  host.inject(reply());
  assert.is((await a.receive()).length, 1, 'before VQ_PAIRS_SET the frame arrives on receiveq1');
  assert.is(await a.ctrl(4, 0, Uint8Array.of(3, 0)), 1, 'VQ_PAIRS_SET 3 > max_virtqueue_pairs → ERR');
  assert.is(await a.ctrl(4, 0, Uint8Array.of(0, 0)), 1, 'VQ_PAIRS_SET 0 → ERR');
  assert.is(await a.ctrl(4, 0, Uint8Array.of(2, 0)), 0, 'VQ_PAIRS_SET 2 → OK');
  // send on transmitq2 for the flow 10.0.0.1:1234 → 10.0.0.2:5678
  const out = udpFrame(HOST_MAC, a.mac, new Uint8Array(20)).frame;
  const txBuf = dev.pool.alloc(12 + out.length);
  s.bytes.fill(0, txBuf, txBuf + 12);
  s.bytes.set(out, txBuf + 12);
  tx2.add([{ off: txBuf, len: 12 + out.length }], [], 1);
  await tx2.kick();
  assert.equal(host.capture().map((f) => f.data), [out], 'the frame from transmitq2 went out');
  host.inject(reply());
  dev.bus.poll();
  rx2.reap();
  assert.is(rx2.done.size, 1, 'the reply was steered to receiveq2');
  assert.is((await a.receive()).length, 0, 'and not to receiveq1');
  s.dispose();
});

for (const rx2Live of [true, false]) {
  const what = rx2Live ? 'without buffers' : 'not set up yet';
  test(`two pairs: a frame for a receive queue ${what} does not hold back the other queue; it arrives once buffers are posted`, async () => {
    const s = await netSim({ queuePairs: 2 });
    const fe = await s.frontend();
    const dev = fe.devices[NET0]!;
    const a = await NetDriver.open(dev, { queueSize: 16, features: VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_MQ });
    let rx2 = rx2Live ? await dev.setupQueue(2, 16) : null; // receiveq2: no buffers yet (or not even live)
    const tx2 = await dev.setupQueue(3, 16);
    assert.is(await a.ctrl(4, 0, Uint8Array.of(2, 0)), 0, 'VQ_PAIRS_SET 2 → OK');
    const host = s.net();
    // Flow 1 (port 1111) sends on transmitq1, flow 2 (port 2222) on transmitq2: their replies are steered back.
    const out = (port: number) => udpFrame(HOST_MAC, a.mac, new Uint8Array(20), { srcPort: port }).frame;
    const reply = (port: number, tag: number) => udpFrame(a.mac, HOST_MAC, Uint8Array.of(tag), { srcIp: [10, 0, 0, 2], dstIp: [10, 0, 0, 1], srcPort: 5678, dstPort: port }).frame;
    await a.send([out(1111)]);
    const o2 = out(2222);
    const txBuf = dev.pool.alloc(12 + o2.length);
    s.bytes.fill(0, txBuf, txBuf + 12);
    s.bytes.set(o2, txBuf + 12);
    tx2.add([{ off: txBuf, len: 12 + o2.length }], [], 1);
    await tx2.kick();
    assert.is(host.capture().length, 2, 'both flows went out');
    // Queued in this order: flow 2's reply (receiveq2), then flow 1's two (receiveq1).
    host.inject(reply(2222, 0x21));
    host.inject(reply(1111, 0x11));
    host.inject(reply(1111, 0x12));
    const got1 = await a.receive();
    assert.equal(got1.map((f) => f.data[f.data.length - 1]), [0x11, 0x12], "flow 1's replies passed flow 2's, in order");
    // Now receiveq2 gets buffers: flow 2's reply, held in the service, arrives there.
    rx2 ??= await dev.setupQueue(2, 16);
    const rxBuf = dev.pool.alloc(2 * 1526);
    for (let i = 0; i < 2; i++) rx2.add([], [{ off: rxBuf + i * 1526, len: 1526 }], i);
    await rx2.kick();
    dev.bus.poll();
    rx2.reap();
    assert.is(rx2.done.size, 1, "flow 2's reply arrived on receiveq2 once it had buffers");
    assert.is((await a.receive()).length, 0, 'nothing else on receiveq1');
    s.dispose();
  });
}

test.run();
