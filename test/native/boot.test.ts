import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { RngDriver } from '../../frontend/drivers/rng';
import { withNative } from './_native';

const VIRTIO_ID_RNG = 4;

test('the native firmware boots over ivshmem: header READY, backendPeerId is its peer id', async () => {
  await withNative({}, async (n) => {
    const v = new DataView(n.port!.bytes.buffer);
    assert.is(v.getUint32(0, true), 0x4b4c4842, 'window magic');
    assert.is(v.getUint32(0x28, true), 2, 'backendState READY');
    const backend = v.getUint16(0x40, true);
    assert.equal(n.port!.peers(), [backend], 'the backend is the only other peer and names itself in the header');
    assert.is(v.getUint16(0x42, true), n.port!.peerId, 'the port wrote frontendPeerId');
  });
});

test('the TypeScript driver model attaches across the process boundary: GET_DEVICES, PING, rng', async () => {
  await withNative({}, async (n) => {
    const fe = await Frontend.attach(n.port!);
    assert.ok(fe.devices.length >= 2, 'devices discovered');
    assert.is(await fe.ping(0x12345678), 0x12345678);
    const rng = await RngDriver.open(fe.find(VIRTIO_ID_RNG)!);
    const a = await rng.read(64);
    const b = await rng.read(64);
    assert.is(a.length, 64);
    assert.not.equal(a, b, 'two reads of getrandom differ');
  });
});

test('many round trips in a row (doorbells both ways, no lost wake-up)', async () => {
  await withNative({}, async (n) => {
    const fe = await Frontend.attach(n.port!);
    for (let i = 0; i < 500; i++) assert.is(await fe.ping(i), i);
  });
});

test('SIGTERM: the firmware calls stop() (backendState STOPPED) and exits 0', async () => {
  await withNative({}, async (n) => {
    const bytes = n.port!.bytes;
    const view = new DataView(bytes.buffer);
    n.fw.kill('SIGTERM');
    const r = await n.exited;
    assert.is(r.code, 0, r.stderr);
    assert.is(view.getUint32(0x28, true), 3, 'backendState STOPPED written by bulkhead.stop()');
  });
});

test.run();
