// MAC_TABLE_SET with more entries than the device keeps, or counts that disagree with the data length, is VIRTIO_NET_ERR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NET_MAC_TABLE_ENTRIES } from '../../firmware/devices/net';
import { netSim, twoNics } from './_net';

const mac = (i: number) => Uint8Array.of(0x52, 0x54, 0, 0, i >> 8, i & 0xff);

test('tables over NET_MAC_TABLE_ENTRIES and lying entry counts → ERR; a full table → OK', async () => {
  const s = await netSim();
  const [a] = await twoNics(s);
  const n = NET_MAC_TABLE_ENTRIES;
  assert.is(await a.setMacTable(Array.from({ length: n + 1 }, (_, i) => mac(i)), []), 1, `${n + 1} unicast entries → ERR`);
  assert.is(await a.setMacTable(Array.from({ length: n / 2 + 1 }, (_, i) => mac(i)), Array.from({ length: n / 2 }, (_, i) => mac(i))), 1, `${n + 1} entries in two tables → ERR`);
  const lie = new Uint8Array(8 + 6);
  new DataView(lie.buffer).setUint32(0, 0xffffffff, true);
  assert.is(await a.ctrl(1, 0, lie), 1, 'entries 0xffffffff with one address of data → ERR');
  const short = new Uint8Array(8);
  new DataView(short.buffer).setUint32(4, 1, true);
  assert.is(await a.ctrl(1, 0, short), 1, 'multicast entries 1 with no address → ERR');
  assert.is(await a.setMacTable(Array.from({ length: n / 2 }, (_, i) => mac(i)), Array.from({ length: n / 2 }, (_, i) => mac(i))), 0, `${n} entries → OK`);
  s.dispose();
});

test.run();
