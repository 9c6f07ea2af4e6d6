import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrontendBus } from '../../frontend/bus';
import { P, raw, sim, u32s } from '../helpers';

test('GET_DEVICES reports every device in the bitmap, with next offset 0', async () => {
  const s = await sim();
  const out = raw(s, FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_GET_DEVICES, 0, 5, new Uint8Array([0, 0, 8, 0])));
  assert.is(out.length, 1);
  const v = new DataView(out[0]!.buffer);
  assert.is(out[0]![0], P.TYPE_BUS | P.TYPE_RESPONSE);
  assert.is(v.getUint16(4, true), 5, 'token echoed');
  assert.is(v.getUint16(10, true), 8, 'count');
  assert.is(v.getUint16(12, true), 0, 'no devices after');
  assert.is(out[0]![14], 0b11, 'devices 0 and 1 present');
  s.dispose();
});

test('PING echoes its data', async () => {
  const s = await sim();
  const out = raw(s, FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, 6, u32s(0xdeadbeef)));
  assert.is(new DataView(out[0]!.buffer).getUint32(8, true), 0xdeadbeef);
  s.dispose();
});

test('requests are answered in the order they were received', async () => {
  const s = await sim();
  s.receive();
  for (let t = 1; t <= 10; t++) s.send(FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, t, u32s(t)));
  s.kick();
  const tokens = s.receive().map((m) => new DataView(m.buffer).getUint16(4, true));
  assert.equal(tokens, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  s.dispose();
});

test('a request with token 0 is dropped (tokens are non-zero for requests)', async () => {
  const s = await sim();
  assert.is(raw(s, FrontendBus.encode(P.TYPE_BUS, P.BUS_MSG_PING, 0, 0, u32s(1))).length, 0);
  s.dispose();
});

test.run();
