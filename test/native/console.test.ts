/**
 * virtio-console served natively from a unix-socket stream backing: bytes the frontend writes reach
 * the socket client, bytes the client sends reach the frontend; accept4 works under seccomp.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { board, scratch, withNative } from './_native';

const VIRTIO_ID_CONSOLE = 3;

test('console over a unix socket, both directions', async () => {
  const tmp = scratch();
  const sock = join(tmp.dir, 'console.sock');
  try {
    await withNative({ board: board({ services: { console0: { kind: 'stream', backing: `unix:${sock}` } } }) }, async (n) => {
      const client = connect(sock);
      let got = '';
      client.on('data', (d) => (got += d.toString()));
      await new Promise((r) => client.on('connect', r));
      const fe = await Frontend.attach(n.port!);
      const con = await ConsoleDriver.open(fe.find(VIRTIO_ID_CONSOLE)!);
      await con.write('hello from the frontend\n');
      for (let i = 0; i < 300 && !got.includes('\n'); i++) await new Promise((r) => setTimeout(r, 10));
      assert.is(got, 'hello from the frontend\n');
      client.write('hello from the host');
      let back = '';
      for (let i = 0; i < 300 && back.length < 19; i++) {
        back += new TextDecoder().decode(await con.read());
        if (back.length < 19) await n.port!.wait(10);
      }
      assert.is(back, 'hello from the host');
      client.destroy();
    });
  } finally {
    tmp.done();
  }
});

test.run();
