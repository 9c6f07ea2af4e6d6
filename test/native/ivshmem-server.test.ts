/**
 * The ivshmem server: peers learn of each other joining and leaving, and a peer that misbehaves
 * (talks, or vanishes mid-handshake) is dropped without stopping the server.
 */
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectNative } from '../../runtime/native/port.mjs';
import type { NativeInstance } from './_native';
import { withNative } from './_native';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 300 && !cond(); i++) await sleep(10);
  assert.ok(cond(), what);
}

function rawPeer(n: NativeInstance, payload?: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(n.socket, () => {
      if (payload) s.write(payload);
      else s.destroy();
    });
    s.on('data', () => {});
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    if (payload) setTimeout(() => s.destroy(), 200);
  });
}

test('peers see each other join and leave; the shared memory is one object', async () => {
  await withNative({}, async (n) => {
    const a = n.port!;
    const b = await connectNative({ socket: n.socket });
    await until(() => a.peers().includes(b.peerId), 'the first frontend learns of the second');
    assert.ok(b.peers().includes(a.peerId));
    a.bytes[0x8000] = 0x42;
    assert.is(b.bytes[0x8000], 0x42, 'both map the same memory');
    b.close();
    await until(() => !a.peers().includes(b.peerId), 'the departure is announced');
  });
});

test('a peer that sends data, or disconnects at once, is dropped; the server and the firmware go on', async () => {
  await withNative({}, async (n) => {
    await rawPeer(n, Buffer.from('garbage garbage'));
    await rawPeer(n);
    for (let i = 0; i < 20; i++) await rawPeer(n);
    const c = await connectNative({ socket: n.socket });
    assert.ok(c.peers().length >= 1, 'a new peer still gets the handshake');
    c.close();
    assert.is(n.server.exitCode, null, 'server running');
    assert.is(n.fw.exitCode, null, 'firmware running');
  });
});

test.run();
