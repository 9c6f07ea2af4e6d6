// The config space holds the manifest's guest CID (§5.10.4); the features are STREAM and NO_IMPLIED_STREAM
// (§5.10.3); NO_IMPLIED_STREAM without STREAM would leave no socket type and is refused; a reserved CID
// in the manifest is a board error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as P from '../../firmware/transport/protocol';
import { FEATURES_OK, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTIO_VSOCK_F_NO_IMPLIED_STREAM, VIRTIO_VSOCK_F_STREAM } from '../../firmware/virtio';
import { negotiate, request, u32s } from '../helpers';
import { openVsock, VSOCK, vsockSim } from './_vsock';

test('guest_cid is the manifest value, upper 32 bits zero', async () => {
  const s = await vsockSim({ guestCid: 0x12345678 });
  const a = request(s, VSOCK, P.VIRTIO_MSG_GET_CONFIG, u32s(0, 8))!;
  assert.is(a.getUint32(8, true), 8, '8 config bytes');
  assert.is(a.getUint32(12, true), 0x12345678, 'low half: the CID');
  assert.is(a.getUint32(16, true), 0, 'high half: zero');
  const drv = await openVsock(s);
  assert.is(drv.guestCid, 0x12345678, 'the driver model read it');
  s.dispose();
});

test('offers VIRTIO_VSOCK_F_STREAM and NO_IMPLIED_STREAM, not SEQPACKET', async () => {
  const s = await vsockSim();
  const fe = await s.frontend();
  const f = await fe.devices[VSOCK]!.deviceFeatures();
  assert.ok(f & VIRTIO_VSOCK_F_STREAM, 'STREAM offered');
  assert.ok(f & VIRTIO_VSOCK_F_NO_IMPLIED_STREAM, 'NO_IMPLIED_STREAM offered (§5.10.3.2 SHOULD)');
  assert.is(f & 2n, 0n, 'SEQPACKET not offered');
  s.dispose();
});

test('NO_IMPLIED_STREAM without STREAM is refused at FEATURES_OK; no feature bit at all means streams', async () => {
  const s = await vsockSim();
  const base = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM;
  assert.is(negotiate(s, VSOCK, base | VIRTIO_VSOCK_F_NO_IMPLIED_STREAM) & FEATURES_OK, 0, 'no socket type left: refused');
  assert.ok(negotiate(s, VSOCK, base | VIRTIO_VSOCK_F_NO_IMPLIED_STREAM | VIRTIO_VSOCK_F_STREAM) & FEATURES_OK, 'with STREAM: accepted');
  assert.ok(negotiate(s, VSOCK, base) & FEATURES_OK, 'neither (Linux 6.1): accepted, streams implied');
  s.dispose();
});

test('a reserved guest CID in the manifest fails the boot with the reason', async () => {
  for (const cid of [0, 1, 2, 0xffffffff, 2 ** 32 + 3]) {
    let msg = '';
    await vsockSim({ guestCid: cid }).then(
      (s) => s.dispose(),
      (e: Error) => (msg = e.message),
    );
    assert.match(msg, /guestCid .* reserved or out of range/, `CID ${cid} refused`);
  }
});

test.run();
