import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_CONSOLE_F_MULTIPORT } from '../../firmware/devices/console';
import { VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_VERSION_1, VIRTQ_DESC_F_WRITE } from '../../firmware/virtio';
import { LIVE, negotiate, RawRing, setStatus, sim, u32s } from '../helpers';

const F = VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM | VIRTIO_CONSOLE_F_MULTIPORT;
const CONSOLE = 1;

/** host-sim with a console of two ports: port 0 on console0, port 1 "org.bulkhead.log" on serial1. */
async function twoPorts() {
  const s = await sim({
    services: { serial1: { kind: 'stream', backing: 'memory' } },
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'console', service: 'console0', ports: [{ service: 'serial1', name: 'org.bulkhead.log' }] },
    ],
  });
  assert.ok(negotiate(s, CONSOLE, F) & 8, 'FEATURES_OK with MULTIPORT');
  const rings = [0, 1, 2, 3, 4, 5].map((q) => {
    const r = new RawRing(s, 8, s.layout.poolOffset + q * 0x10000);
    r.install(CONSOLE, q);
    return r;
  });
  setStatus(s, CONSOLE, LIVE);
  const [, , cin, cout, rx1, tx1] = rings as [RawRing, RawRing, RawRing, RawRing, RawRing, RawRing];
  for (let i = 0; i < 8; i++) {
    cin.setDesc(i, cin.data + 64 * i, 64, VIRTQ_DESC_F_WRITE);
    cin.offer(i);
  }
  cin.notify(CONSOLE, 2);
  let sent = 0;
  /** Sends one driver control message on the control transmitq. */
  const control = (id: number, event: number, value: number) => {
    const slot = sent++ % 8;
    const at = cout.data + 16 * slot;
    s.bytes.set(u32s(id, event | (value << 16)), at);
    cout.setDesc(slot, at, 8, 0);
    cout.offer(slot);
    cout.notify(CONSOLE, 3);
  };
  /** Control messages the device delivered so far: [id, event, value, payload]. */
  const received = () => {
    const out: [number, number, number, string][] = [];
    const v = new DataView(s.bytes.buffer, s.bytes.byteOffset);
    for (let i = 0; i < cin.usedIdx(); i++) {
      const e = cin.usedElem(i);
      const at = cin.data + 64 * e.id;
      out.push([v.getUint32(at, true), v.getUint16(at + 4, true), v.getUint16(at + 6, true), new TextDecoder().decode(s.bytes.subarray(at + 8, at + e.len))]);
    }
    return out;
  };
  return { s, rings, rx1, tx1, control, received };
}

test('with MULTIPORT the device announces every port after DEVICE_READY, then console/name/open per PORT_READY (§5.3.6.2)', async () => {
  const { s, control, received } = await twoPorts();
  assert.is(s.stats().devices[CONSOLE]!.queues.length, 6, 'port 0, control pair, port 1');
  control(0, 0, 1); // DEVICE_READY
  assert.equal(received(), [
    [0, 1, 0, ''],
    [1, 1, 0, ''],
  ], 'DEVICE_ADD for ports 0 and 1');
  control(0, 3, 1); // PORT_READY 0
  control(1, 3, 1); // PORT_READY 1
  assert.equal(received().slice(2), [
    [0, 4, 1, ''],
    [0, 6, 1, ''],
    [1, 7, 0, 'org.bulkhead.log'],
    [1, 6, 1, ''],
  ], 'CONSOLE_PORT + PORT_OPEN for 0; PORT_NAME + PORT_OPEN for 1');
  control(1, 6, 1); // the guest opened port 1
  assert.is(s.stats().devices[CONSOLE]!.counters['portsOpen'], 1);
  s.dispose();
});

test('port 1 carries its own stream both ways, separate from the console port', async () => {
  const { s, rx1, tx1 } = await twoPorts();
  s.bytes.set(new TextEncoder().encode('to the log'), tx1.data);
  tx1.setDesc(0, tx1.data, 10, 0);
  tx1.offer(0);
  tx1.notify(CONSOLE, 5);
  assert.is(s.console('serial1').output(), 'to the log');
  assert.is(s.console('console0').output(), '', 'nothing on port 0');
  rx1.setDesc(0, rx1.data, 32, VIRTQ_DESC_F_WRITE);
  rx1.offer(0);
  rx1.notify(CONSOLE, 4);
  s.console('serial1').input('xyz');
  assert.equal(rx1.usedElem(0), { id: 0, len: 3 });
  s.dispose();
});

test('control messages for a port that does not exist are counted and ignored', async () => {
  const { s, control, received } = await twoPorts();
  control(9, 3, 1);
  control(0, 99, 1);
  assert.is(received().length, 0);
  assert.is(s.stats().devices[CONSOLE]!.counters['controlBad'], 2);
  assert.not.ok(s.needsReset(CONSOLE));
  s.dispose();
});

test('a single-port console does not offer MULTIPORT', async () => {
  const s = await sim();
  const a = (await s.frontend()).devices[CONSOLE]!;
  assert.is((await a.deviceFeatures()) & VIRTIO_CONSOLE_F_MULTIPORT, 0n);
  s.dispose();
});

test.run();
