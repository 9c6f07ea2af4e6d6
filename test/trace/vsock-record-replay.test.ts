// A vsock session recorded on the node runtime replays identically (docs/trace-format.md): a guest
// connection echoed by a host program behind a small socket (credit runs out, the host buffer fills),
// a host client reaching a guest listener, clean closes. Every vsock HAL call — vsockPoll's
// out-parameter, vsockRecv's window writes, vsockSend's -ENOBUFS/buffered answers — comes back from
// the trace, so a replay diverges nowhere.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { replayOnNode } from '../../runtime/node/trace';
import { readTrace } from '../../runtime/trace/format';
import { echo, openVsock, vsockSim } from '../vsock/_vsock';
import { BUNDLE } from './_trace';

test('a recorded vsock session (both directions, credit exhaustion, closes) replays identically on the node runtime', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-trace-vsock-'));
  const path = join(dir, 'vsock.bhtrace');
  try {
    const s = await vsockSim({ bundle: BUNDLE, record: path, log: () => {} });
    try {
      const host = s.vsock();
      host.socketBuffer = 16 * 1024;
      host.listen(5000, (c) => (c.onData = (cc) => cc.write(cc.read())));
      const drv = await openVsock(s);
      const sock = await drv.connect(5000);
      await echo(drv, sock, { seed: 23, total: 384 * 1024 });
      await sock.close();
      const listener = drv.listen(7000);
      const client = host.connectToGuest(7000)!;
      const gs = await listener.accept();
      await drv.until(() => client.state === 'open', 2000, () => 'the host client was not accepted');
      client.write('hello guest');
      assert.is(new TextDecoder().decode(await gs.readExactly(11)), 'hello guest');
      client.close();
      await drv.until(() => gs.state === 'closed' || gs.peerShutdown !== 0, 2000, () => 'the guest never saw the host client go');
    } finally {
      s.dispose();
    }
    const bytes = readFileSync(path);
    const r = await replayOnNode(bytes, BUNDLE, path);
    assert.equal(r.divergence, undefined, `replay diverged: ${JSON.stringify(r.divergence && { ...r.divergence, window: undefined })}`);
    assert.ok(r.ok, `replay failed: ${r.error ?? ''}`);
    const names = new Set<string>();
    for (const x of readTrace(bytes)) if (x.type === 'hal') names.add(x.name);
    const missing = ['vsockOpen', 'vsockConnect', 'vsockEstablished', 'vsockSend', 'vsockRecv', 'vsockPoll', 'vsockClose'].filter((n) => !names.has(n));
    assert.equal(missing, [], `the trace lacks ${missing.join(', ')} calls (has: ${[...names].join(', ')})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
