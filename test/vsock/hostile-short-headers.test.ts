// Structural faults (a header that is not there) make vsock DEVICE_NEEDS_RESET and nothing else: a tx
// chain shorter than the 44-byte header, an rx buffer that cannot hold one, an event buffer shorter
// than the 4-byte event. The other device keeps answering.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { counters, HDR, otherDeviceAnswers, RawVsock, vsockSim } from './_vsock';

test('tx chain of 43 bytes: NEEDS_RESET (VSOCK_SHORT_HEADER)', async () => {
  const s = await vsockSim();
  const d = new RawVsock(s);
  d.sendRaw(new Uint8Array(HDR - 1));
  assert.ok(d.needsReset, 'vsock needs reset');
  assert.is(counters(s)['violation.VSOCK_SHORT_HEADER'], 1);
  assert.ok(otherDeviceAnswers(s), 'rng still answers');
  s.dispose();
});

test('rx buffer of 40 bytes for an owed reply: NEEDS_RESET (VSOCK_RX_BUFFER_SHORT)', async () => {
  const s = await vsockSim();
  const d = new RawVsock(s);
  d.send({ op: 5 }); // RW for no connection: an RST is owed
  d.postRx(1, 40);
  assert.ok(d.needsReset);
  assert.is(counters(s)['violation.VSOCK_RX_BUFFER_SHORT'], 1);
  assert.ok(otherDeviceAnswers(s));
  s.dispose();
});

test('event buffer of 2 bytes for an owed TRANSPORT_RESET: NEEDS_RESET (VSOCK_EVENT_BUFFER_SHORT)', async () => {
  const first = await vsockSim();
  const window = first.bytes.slice();
  first.dispose();
  const s = await vsockSim({ window });
  const d = new RawVsock(s);
  d.postEvents(1, 2);
  assert.ok(d.needsReset);
  assert.is(counters(s)['violation.VSOCK_EVENT_BUFFER_SHORT'], 1);
  assert.ok(otherDeviceAnswers(s));
  s.dispose();
});

test.run();
