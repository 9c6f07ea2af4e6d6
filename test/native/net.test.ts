/**
 * virtio-net on the native runtime's in-process switch (runtime/native/packet.c): two net devices of
 * one firmware process, driven by the TypeScript frontend driver model over ivshmem from this process.
 * Frames cross both ways; NEEDS_CSUM is completed for a receiver without GUEST_CSUM and passed through
 * to one with it; frames towards a receiver that posts no buffers stop at the port queue's bound and
 * the excess is dropped and counted (the counters are the firmware's last stderr lines at stop).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_CSUM, VIRTIO_NET_F_CTRL_VQ, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_MQ } from '../../firmware/devices/net';
import { Frontend } from '../../frontend/device';
import { NetDriver } from '../../frontend/drivers/net';
import type { NetDriverOptions, NetFrame } from '../../frontend/drivers/net';
import type { DriverQueue } from '../../frontend/vring';
import { BROADCAST, ether, internetChecksum, MAC0, MAC1, udpFrame } from '../net/_net';
import { board, withNative } from './_native';
import type { NativeInstance } from './_native';

const NET0 = 2;
const NET1 = 3;
const PORT_QUEUE_FRAMES = 256; // packet.c
const hex = (m: Uint8Array) => Array.from(m, (x) => x.toString(16).padStart(2, '0')).join(':');

const netBoard = board({
  devices: [
    { type: 'net', service: 'net0', mac: hex(MAC0) },
    { type: 'net', service: 'net1', mac: hex(MAC1) },
  ],
  services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
});

async function nics(n: NativeInstance, a: NetDriverOptions, b: NetDriverOptions): Promise<[NetDriver, NetDriver]> {
  const fe = await Frontend.attach(n.port!);
  return [await NetDriver.open(fe.devices[NET0]!, a), await NetDriver.open(fe.devices[NET1]!, b)];
}

/** Receives until `count` frames arrived or 5 s passed (the backend is another process). */
async function receiveN(n: NativeInstance, nic: NetDriver, count: number): Promise<NetFrame[]> {
  const out: NetFrame[] = [];
  const end = Date.now() + 5000;
  while (out.length < count && Date.now() < end) {
    const got = await nic.receive();
    out.push(...got);
    if (got.length === 0) await n.port!.wait(10);
  }
  return out;
}

/** The counters packet.c logs for `port` when the firmware stops. */
function portCounters(stderr: string, port: string): Record<string, number> {
  const line = stderr.split('\n').find((l) => l.includes(`packet ${port} (switch`));
  if (!line) throw new Error(`no counter line for port ${port} in the firmware's stderr:\n${stderr}`);
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+) (\d+)/g)) out[m[1]!] = Number(m[2]);
  return out;
}

test('two devices exchange unicast and broadcast frames through the switch, both directions', async () => {
  await withNative({ board: netBoard }, async (n) => {
    const [a, b] = await nics(n, { queueSize: 64 }, { queueSize: 64 });
    assert.equal(a.mac, MAC0, 'net0 reports the board MAC');
    assert.ok(await b.linkUp(), 'link up');
    const frames = Array.from({ length: 40 }, (_, i) => ether(i % 4 ? MAC1 : BROADCAST, MAC0, 0x88b5, new Uint8Array(46 + i * 30).fill(i)));
    await a.send(frames);
    const got = await receiveN(n, b, frames.length);
    assert.is(got.length, frames.length, `${got.length} of ${frames.length} frames from net0 reached net1`);
    got.forEach((f, i) => assert.equal(f.data, frames[i], `frame ${i} arrived intact and in order`));
    const back = ether(MAC0, MAC1, 0x88b5, new Uint8Array(1500).map((_, i) => i & 0xff));
    await b.send([back]);
    const [r] = await receiveN(n, a, 1);
    assert.equal(r?.data, back, 'a 1514-byte frame from net1 reached net0 intact');
  });
});

test('checksum completion for a receiver without GUEST_CSUM, pass-through to one with it', async () => {
  for (const guestCsum of [false, true]) {
    await withNative({ board: netBoard }, async (n) => {
      const [a, b] = await nics(n, { queueSize: 16, features: VIRTIO_NET_F_CSUM }, { queueSize: 16, features: guestCsum ? VIRTIO_NET_F_GUEST_CSUM : 0n });
      for (const len of [1, 17, 200, 1471]) {
        const payload = new Uint8Array(len).map((_, i) => (i * 7 + len) & 0xff);
        const u = udpFrame(MAC1, MAC0, payload);
        await a.send([u.frame], { start: u.csumStart, offset: u.csumOffset });
        const [got] = await receiveN(n, b, 1);
        assert.ok(got, `frame with a ${len}-byte payload arrived`);
        if (guestCsum) {
          assert.is(got!.flags, 1, 'NEEDS_CSUM passed to a GUEST_CSUM receiver');
          assert.is(got!.csumStart, u.csumStart, 'csum_start carried');
          assert.is(got!.csumOffset, u.csumOffset, 'csum_offset carried');
          assert.equal(got!.data, u.frame, 'bytes unchanged (partial checksum left to the receiver)');
        } else {
          assert.is(got!.flags, 0, 'flags 0 without GUEST_CSUM');
          const at = u.csumStart + u.csumOffset;
          const field = (got!.data[at]! << 8) | got!.data[at + 1]!;
          assert.is(field, u.full, `${len}-byte payload: UDP checksum 0x${field.toString(16)} = reference 0x${u.full.toString(16)}`);
          const pseudo = Uint8Array.of(...got!.data.subarray(26, 34), 0, 17, (8 + len) >> 8, (8 + len) & 0xff);
          assert.is(internetChecksum(pseudo, got!.data.subarray(34)), 0, 'the segment verifies with its pseudo-header');
        }
      }
      const r = await n.stop();
      const c = portCounters(r.stderr, 'net1');
      assert.is(c['csumCompleted'], guestCsum ? 0 : 4, 'the switch completed exactly the frames of the receiver without GUEST_CSUM');
    });
  }
});

test('a receiver that posts no buffers: its queue stops at the bound, the excess is dropped and counted', async () => {
  await withNative({ board: netBoard }, async (n) => {
    const [a, b] = await nics(n, { queueSize: 64 }, { queueSize: 16 });
    const total = 400;
    await a.send(Array.from({ length: total }, (_, i) => ether(MAC1, MAC0, 0x88b5, Uint8Array.of(i >> 8, i & 0xff, ...new Uint8Array(44)))));
    // Every transmitted frame is through the switch before net1 takes anything.
    const tx = (a as unknown as { tx: DriverQueue<number> }).tx;
    await a.dev.bus.until(() => (tx.reap(), tx.inFlight === 0), 5000, () => `net0's transmit ring still holds ${tx.inFlight} chains`);
    const got = await receiveN(n, b, total);
    assert.is(got.length, 16 + PORT_QUEUE_FRAMES, `net1 got its 16 buffers' worth plus the ${PORT_QUEUE_FRAMES} queued frames, no more`);
    assert.equal(got.slice(0, 3).map((f) => (f.data[14]! << 8) | f.data[15]!), [0, 1, 2], 'in order');
    const c = portCounters((await n.stop()).stderr, 'net1');
    assert.is(c['rxDroppedQueueFull'], total - 16 - PORT_QUEUE_FRAMES, 'the excess is counted as rxDroppedQueueFull');
    assert.is(c['rxFrames'], 16 + PORT_QUEUE_FRAMES, 'rxFrames counts what net1 took');
  });
});

test('multiqueue: a frame for a receive queue without buffers does not hold back the other queue (packetPeek k, packetPromote)', async () => {
  const mqBoard = board({
    devices: [
      { type: 'net', service: 'net0', mac: hex(MAC0), queuePairs: 2 },
      { type: 'net', service: 'net1', mac: hex(MAC1) },
    ],
    services: { net0: { kind: 'packet', switch: 'sw0' }, net1: { kind: 'packet', switch: 'sw0' } },
  });
  await withNative({ board: mqBoard }, async (n) => {
    const [a, b] = await nics(n, { queueSize: 16, features: VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_MQ }, { queueSize: 16 });
    const dev = a.dev;
    const rx2 = await dev.setupQueue(2, 16); // receiveq2: no buffers yet
    const tx2 = await dev.setupQueue(3, 16);
    assert.is(await a.ctrl(4, 0, Uint8Array.of(2, 0)), 0, 'VQ_PAIRS_SET 2 → OK');
    // Flow 1 (port 1111) leaves net0 on transmitq1, flow 2 (port 2222) on transmitq2: replies follow.
    const out = (port: number) => udpFrame(MAC1, MAC0, new Uint8Array(20), { srcPort: port }).frame;
    const reply = (port: number, tag: number) => udpFrame(MAC0, MAC1, Uint8Array.of(tag), { srcIp: [10, 0, 0, 2], dstIp: [10, 0, 0, 1], srcPort: 5678, dstPort: port }).frame;
    await a.send([out(1111)]);
    const o2 = out(2222);
    const txBuf = dev.pool.alloc(12 + o2.length);
    const bytes = dev.bus.port.bytes;
    bytes.fill(0, txBuf, txBuf + 12);
    bytes.set(o2, txBuf + 12);
    tx2.add([{ off: txBuf, len: 12 + o2.length }], [], 1);
    await tx2.kick();
    assert.is((await receiveN(n, b, 2)).length, 2, 'both flows reached net1');
    // Queued towards net0 in this order: flow 2's reply (receiveq2, no buffers), then flow 1's two.
    await b.send([reply(2222, 0x21), reply(1111, 0x11), reply(1111, 0x12)]);
    const got = await receiveN(n, a, 2);
    assert.equal(got.map((f) => f.data[f.data.length - 1]), [0x11, 0x12], "flow 1's replies passed flow 2's, in order");
    const rxBuf = dev.pool.alloc(2 * 1526);
    for (let i = 0; i < 2; i++) rx2.add([], [{ off: rxBuf + i * 1526, len: 1526 }], i);
    await rx2.kick();
    await dev.bus.until(() => (rx2.reap(), rx2.done.size === 1), 5000, () => "flow 2's reply never reached receiveq2");
    assert.is((await a.receive()).length, 0, 'nothing else on receiveq1');
  });
});

test.run();
