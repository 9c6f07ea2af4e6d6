/**
 * virtio-vsock served natively over unix sockets in Firecracker's convention (runtime/native/vsock.c),
 * under seccomp: a guest connection to host port P reaches the program listening on `<uds>_P`; a host
 * client on `<uds>` sends `CONNECT P\n`, reads `OK <port>\n` and talks to the guest listener. The
 * frontend driver model drives the device across the process boundary.
 */
import type { Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Frontend } from '../../frontend/device';
import type { VsockDriver } from '../../frontend/drivers/vsock';
import { VsockDriver as Driver } from '../../frontend/drivers/vsock';
import { VIRTIO_ID_VSOCK, VIRTIO_VSOCK_SHUTDOWN_F_SEND } from '../../firmware/virtio';
import { replayOnNode } from '../../runtime/node/trace';
import { readTrace } from '../../runtime/trace/format';
import { echo, isPrng } from '../vsock/_vsock';
import type { NativeInstance } from './_native';
import { board, BUNDLE, FW, scratch, withNative } from './_native';

function vsockBoard(uds: string) {
  return board({ devices: [{ type: 'vsock', service: 'vsock0', guestCid: 3 }], services: { vsock0: { kind: 'vsock', uds } } });
}

async function openDriver(n: NativeInstance): Promise<VsockDriver> {
  const fe = await Frontend.attach(n.port!);
  return Driver.open(fe.find(VIRTIO_ID_VSOCK)!);
}

/** A host program listening on `path`: resolves its server and the connections it accepts. */
function listen(path: string, onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    // An accepted socket the firmware resets (RST after a guest close with unread data) emits
    // ECONNRESET; without a listener that error would end the whole test process. The tests judge
    // the bytes and closes they see, so the error only needs to be kept from escaping.
    const srv = createServer((s) => {
      s.on('error', () => {});
      onConn(s);
    });
    srv.on('error', reject);
    srv.listen(path, () => resolve(srv));
  });
}

/** A host client: connects to `<uds>`, sends the CONNECT line, resolves with the first line it gets back (or '' on close). */
function hostClient(uds: string, line: string): Promise<{ sock: Socket; reply: Promise<string>; rest: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const sock = connect(uds);
    const rest: Buffer[] = [];
    let head = '';
    let done: (s: string) => void = () => {};
    const reply = new Promise<string>((r) => (done = r));
    sock.on('data', (d: Buffer) => {
      if (head.endsWith('\n')) return void rest.push(d);
      const i = d.indexOf(10);
      if (i < 0) head += d.toString('latin1');
      else {
        head += d.subarray(0, i + 1).toString('latin1');
        if (i + 1 < d.length) rest.push(d.subarray(i + 1));
        done(head);
      }
    });
    sock.on('close', () => done(head));
    sock.on('error', () => {});
    sock.on('connect', () => {
      sock.write(line);
      resolve({ sock, reply, rest });
    });
    sock.on('error', reject);
  });
}

/** Runs `fn` against a native firmware serving vsock on a fresh `<dir>/v.sock`. */
async function withVsock(
  fn: (n: NativeInstance, uds: string) => Promise<void>,
  o: { args?: (dir: string) => string[]; after?: (dir: string) => Promise<void> } = {},
): Promise<void> {
  const tmp = scratch();
  const uds = join(tmp.dir, 'v.sock');
  try {
    await withNative({ board: vsockBoard(uds), args: o.args?.(tmp.dir) ?? [] }, (n) => fn(n, uds));
    await o.after?.(tmp.dir);
  } finally {
    tmp.done();
  }
}

/** Waits for `p` while the driver keeps pumping (the device may need the driver's packets meanwhile). */
async function pumpUntil<T>(drv: VsockDriver, p: Promise<T>, what: string): Promise<T> {
  let v: { x: T } | null = null;
  void p.then((x) => (v = { x }));
  await drv.until(() => v !== null, 5000, () => what);
  return v!.x;
}

test('guest → host: 4 MiB echoed through <uds>_5000 by a host program that pauses; every byte checked', () =>
  withVsock(async (n, uds) => {
    let hostGot = 0;
    let hostBad = '';
    const srv = await listen(`${uds}_5000`, (s) => {
      // An echo program that stops reading now and then: the runtime's buffer and the guest's credit run out.
      s.on('data', (d: Buffer) => {
        if (!isPrng(9, hostGot, d)) hostBad ||= `host saw wrong bytes at ${hostGot}`;
        hostGot += d.length;
        s.write(d);
        if ((hostGot >> 19) % 2 === 1 && !s.isPaused()) {
          s.pause();
          setTimeout(() => s.resume(), 30);
        }
      });
    });
    assert.match(readFileSync(`/proc/${n.fw.pid}/status`, 'utf8'), /^Seccomp:\s+2$/m, 'the firmware runs filtered: socket(AF_UNIX), connect and shutdown are allowed');
    const drv = await openDriver(n);
    const sock = await drv.connect(5000);
    const total = 4 << 20;
    await echo(drv, sock, { seed: 9, total, chunk: 256 * 1024, window: 512 * 1024, timeoutMs: 60000, what: () => `host got ${hostGot}` });
    assert.is(hostBad, '', hostBad);
    assert.is(hostGot, total, 'the host program got every byte once');
    assert.is(drv.counters.creditOverruns, 0);
    sock.shutdown(VIRTIO_VSOCK_SHUTDOWN_F_SEND);
    await sock.close();
    assert.is(sock.error, null, 'clean close');
    srv.close();
  }));

test('host → guest: CONNECT 7000 on <uds> reaches the guest listener, OK <port>, data both ways', () =>
  withVsock(async (n, uds) => {
    const drv = await openDriver(n);
    const l = drv.listen(7000);
    const c = await hostClient(uds, 'CONNECT 7000\nhello guest');
    const gs = await l.accept();
    const reply = await pumpUntil(drv, c.reply, 'no OK line');
    assert.match(reply, /^OK \d+\n$/);
    assert.is(Number(reply.slice(3)), gs.peerPort, 'OK names the port the guest sees');
    assert.is(new TextDecoder().decode(await gs.readExactly(11)), 'hello guest', 'bytes after the line are stream data');
    await gs.write('hello host');
    await drv.until(() => Buffer.concat(c.rest).toString() === 'hello host', 5000, () => `host got ${Buffer.concat(c.rest).toString()}`);
    c.sock.end();
    await drv.until(() => (gs.peerShutdown & VIRTIO_VSOCK_SHUTDOWN_F_SEND) !== 0, 5000, () => 'no SHUTDOWN after the host half-closed');
    c.sock.destroy();
  }));

/**
 * Seconds a process was runnable so far: on a CPU plus waiting for one (/proc/PID/schedstat). A loop
 * that spins is runnable all the time whatever the machine's load; one that sleeps in epoll is not.
 */
function runnableSeconds(pid: number): number {
  const [onCpu, waiting] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return (onCpu! + waiting!) / 1e9;
}

test('a CONNECT line that arrives in pieces is read as it comes; the runtime does not spin while it waits', () =>
  withVsock(async (n, uds) => {
    const drv = await openDriver(n);
    const l = drv.listen(7000);
    const c = await hostClient(uds, 'CONN');
    const t0 = runnableSeconds(n.fw.pid!);
    await new Promise((r) => setTimeout(r, 1000));
    const busy = runnableSeconds(n.fw.pid!) - t0;
    assert.ok(busy < 0.3, `the firmware was runnable ${busy.toFixed(2)} s of 1 s waiting for the rest of a line (a loop that spins)`);
    c.sock.write('ECT 7000\n');
    await l.accept();
    assert.match(await pumpUntil(drv, c.reply, 'no OK line'), /^OK \d+\n$/);
    c.sock.destroy();
  }));

test('refusals: no program on <uds>_P (ECONNREFUSED), no guest listener or a bad line (client closed without OK)', () =>
  withVsock(async (n, uds) => {
    const drv = await openDriver(n);
    let err = '';
    await drv.connect(6000).catch((e: Error) => (err = e.message));
    assert.match(err, /ECONNREFUSED/, 'guest connect to a port nobody listens on');
    const noListener = await hostClient(uds, 'CONNECT 7001\n');
    assert.is(await pumpUntil(drv, noListener.reply, 'client not closed'), '', 'closed without OK');
    for (const bad of ['CONNECT\n', 'CONNECT 99999999999\n', 'HELLO 1\n', 'CONNECT 12x\n', 'x'.repeat(40)]) {
      const c = await hostClient(uds, bad);
      assert.is(await pumpUntil(drv, c.reply, `${JSON.stringify(bad)}: not closed`), '', `${JSON.stringify(bad)}: closed without OK`);
    }
    // The device still serves.
    const srv = await listen(`${uds}_6000`, (s) => s.pipe(s));
    const sock = await drv.connect(6000);
    await sock.write('still here');
    assert.is(new TextDecoder().decode(await sock.readExactly(10)), 'still here');
    srv.close();
  }));

test('a native vsock session recorded with --record replays identically on native and on node', () =>
  withVsock(
    async (n, uds) => {
      const srv = await listen(`${uds}_5000`, (s) => s.pipe(s));
      const drv = await openDriver(n);
      const sock = await drv.connect(5000);
      await echo(drv, sock, { seed: 29, total: 512 * 1024, timeoutMs: 20000 });
      await sock.close();
      const l = drv.listen(7000);
      const c = await hostClient(uds, 'CONNECT 7000\n');
      const gs = await l.accept();
      assert.match(await pumpUntil(drv, c.reply, 'no OK line'), /^OK \d+\n$/);
      c.sock.write('hello guest');
      assert.is(new TextDecoder().decode(await gs.readExactly(11)), 'hello guest');
      c.sock.destroy();
      srv.close();
    },
    {
      args: (dir) => ['--record', join(dir, 'vsock.bhtrace')],
      // after the firmware stopped (SIGTERM wrote the trace's END record)
      async after(dir) {
        const trace = join(dir, 'vsock.bhtrace');
        const r = spawnSync(FW, ['--replay', trace, '--bundle', BUNDLE], { encoding: 'utf8' });
        const last = r.stdout.trim().split('\n').at(-1) ?? '{}';
        assert.is(r.status, 0, `native replay of the vsock trace: ${r.stdout} ${r.stderr.slice(-500)}`);
        const v = JSON.parse(last) as { ok: boolean; steps: number };
        assert.ok(v.ok, last);
        const bytes = readFileSync(trace);
        const names = new Set<string>();
        for (const x of readTrace(bytes)) if (x.type === 'hal') names.add(x.name);
        for (const fn of ['vsockSend', 'vsockRecv', 'vsockPoll', 'vsockEstablished']) assert.ok(names.has(fn), `the trace holds ${fn} calls`);
        const node = await replayOnNode(bytes, readFileSync(BUNDLE, 'utf8'), trace);
        assert.ok(node.ok, `node replay of the native vsock trace: ${JSON.stringify(node.divergence && { ...node.divergence, window: undefined })} ${node.error ?? ''}`);
        assert.is(node.steps, v.steps, 'both runtimes check the same steps');
      },
    },
  ));

test.run();
