import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTQ_DESC_F_WRITE, DEVICE_NEEDS_RESET } from '../../firmware/virtio';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { liveRng, LIVE, setStatus, negotiate, RawRing, P } from '../helpers';

test('a device in NEEDS_RESET sends EVENT_CONFIG, and the other devices keep working', async () => {
  const { s, ring } = await liveRng(8);
  ring.offer(8); // head out of range
  s.receive();
  ring.notify(0, 0);
  assert.ok(s.needsReset(0));
  const fe = await s.frontend();
  const con = await ConsoleDriver.open(fe.devices[1]!);
  await con.write('still alive');
  assert.is(s.console().output(), 'still alive', 'console unaffected by the rng fault');
  assert.is(s.stats().devices[1]!.needsReset, false);
  s.dispose();
});

test('EVENT_CONFIG carries DEVICE_NEEDS_RESET to the driver', async () => {
  const { s, ring } = await liveRng(8);
  ring.offer(9);
  s.receive();
  s.send(new Uint8Array([0, P.VIRTIO_MSG_EVENT_AVAIL, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  s.kick();
  const ev = s.receive().find((m) => m[1] === P.VIRTIO_MSG_EVENT_CONFIG);
  assert.ok(ev, 'EVENT_CONFIG sent');
  assert.ok(new DataView(ev!.buffer).getUint32(8, true) & DEVICE_NEEDS_RESET, 'status in the event has NEEDS_RESET');
  s.dispose();
});

test('after NEEDS_RESET, a reset and a fresh initialisation serve again', async () => {
  const { s, ring } = await liveRng(8);
  ring.offer(8);
  ring.notify(0, 0);
  assert.ok(s.needsReset(0));
  negotiate(s, 0);
  const r2 = new RawRing(s, 8, s.layout.poolOffset + 64 * 1024);
  r2.install(0, 0);
  setStatus(s, 0, LIVE);
  r2.setDesc(0, r2.data, 32, VIRTQ_DESC_F_WRITE);
  r2.offer(0);
  r2.notify(0, 0);
  assert.equal(r2.usedElem(0), { id: 0, len: 32 });
  assert.not.ok(s.needsReset(0));
  s.dispose();
});

test.run();
