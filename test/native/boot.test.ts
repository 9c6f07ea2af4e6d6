import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as P from '../../firmware/transport/protocol';
import { FrontendBus } from '../../frontend/bus';
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

test('a frontend that never drains the device→driver FIFO cannot grow the firmware', async () => {
  await withNative({}, async (n) => {
    const bus = new FrontendBus(n.port!);
    const rss0 = n.peakRss();
    let posted = 0;
    for (let round = 0; round < 200; round++) {
      while (bus.post(FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, (posted % 0xfffe) + 1, new Uint8Array(4)))) posted++;
      bus.kick();
      await n.port!.wait(5);
    }
    assert.ok(posted > 64, `the firmware consumed requests while it had room (${posted})`);
    assert.ok(posted < 64 * 3, `and stopped once the answers had nowhere to go (${posted})`);
    assert.ok(n.peakRss() < rss0 + (4 << 20), `RSS ${rss0} → ${n.peakRss()}`);
    assert.is(n.fw.exitCode, null, 'still running');
    // Once the frontend drains, the firmware serves again (the request's poll drains the backlog).
    await bus.request(0, P.BUS_MSG_PING, new Uint8Array(4), { bus: true });
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
