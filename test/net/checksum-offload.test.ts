// NEEDS_CSUM end to end: completed by the switch for a receiver without GUEST_CSUM (verified against an
// RFC 1071 reference), passed unchanged with NEEDS_CSUM to a receiver that negotiated GUEST_CSUM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM } from '../../firmware/devices/net';
import { NetDriver } from '../../frontend/drivers/net';
import { internetChecksum, MAC0, MAC1, NET0, NET1, netSim, receiveN, udpFrame } from './_net';

async function pair(guestCsum: boolean) {
  const s = await netSim();
  const fe = await s.frontend();
  const a = await NetDriver.open(fe.devices[NET0]!, { queueSize: 16, features: VIRTIO_NET_F_CSUM });
  const b = await NetDriver.open(fe.devices[NET1]!, { queueSize: 16, features: guestCsum ? VIRTIO_NET_F_GUEST_CSUM : 0n });
  return { s, a, b };
}

test('receiver without GUEST_CSUM: flags 0 and a complete UDP checksum equal to the reference', async () => {
  const { s, a, b } = await pair(false);
  for (const len of [1, 2, 17, 200, 1471]) {
    const payload = new Uint8Array(len).map((_, i) => (i * 7 + len) & 0xff);
    const u = udpFrame(MAC1, MAC0, payload);
    await a.send([u.frame], { start: u.csumStart, offset: u.csumOffset });
    const [got] = await receiveN(b, 1);
    assert.ok(got, `frame with ${len}-byte payload arrived`);
    assert.is(got!.flags, 0, 'flags 0 without GUEST_CSUM (§5.1.6.4.1)');
    const field = (got!.data[u.csumStart + u.csumOffset]! << 8) | got!.data[u.csumStart + u.csumOffset + 1]!;
    assert.is(field, u.full, `${len}-byte payload: UDP checksum 0x${field.toString(16)} = reference 0x${u.full.toString(16)}`);
    const ip = got!.data.subarray(14, 34);
    const pseudo = Uint8Array.of(...ip.subarray(12, 20), 0, 17, (8 + len) >> 8, (8 + len) & 0xff);
    assert.is(internetChecksum(pseudo, got!.data.subarray(34)), 0, 'the received segment verifies to 0 with its pseudo-header');
  }
  s.dispose();
});

test('receiver with GUEST_CSUM: NEEDS_CSUM, csum_start/csum_offset and the partial field pass unchanged', async () => {
  const { s, a, b } = await pair(true);
  const u = udpFrame(MAC1, MAC0, new Uint8Array(100).fill(3));
  await a.send([u.frame], { start: u.csumStart, offset: u.csumOffset });
  const [got] = await receiveN(b, 1);
  assert.is(got!.flags, 1, 'NEEDS_CSUM set');
  assert.is(got!.csumStart, u.csumStart, 'csum_start carried');
  assert.is(got!.csumOffset, u.csumOffset, 'csum_offset carried');
  assert.equal(got!.data, u.frame, 'frame bytes unchanged (partial checksum left for the receiver)');
  s.dispose();
});

test('NEEDS_CSUM without VIRTIO_NET_F_CSUM negotiated is dropped', async () => {
  const s = await netSim();
  const fe = await s.frontend();
  const a = await NetDriver.open(fe.devices[NET0]!, { queueSize: 16, features: 0n });
  const u = udpFrame(MAC1, MAC0, new Uint8Array(10));
  await a.send([u.frame], { start: u.csumStart, offset: u.csumOffset });
  assert.is(s.stats().devices[NET0]!.counters['txDropped.csumNotNegotiated'], 1, 'counted as txDropped.csumNotNegotiated');
  s.dispose();
});

test.run();
