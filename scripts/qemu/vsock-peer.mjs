// The host end of the QEMU tier's vsock check (docs/vsock.md, docs/qemu.md): host programs on the unix
// sockets of the backend's vsock service, in Firecracker's convention.
//
//   echoServer(path, seed)    listens on <uds>_PORT: checks every byte a guest connection sends against
//                             the stream `seed` and echoes it back; stops reading now and then (and
//                             whenever its own writes back up), so the backend's buffer and the guest's
//                             credit run out on the way
//   connectClient(uds, port, bytes, seed)   a host client: CONNECT PORT on <uds>, OK <n>, then `bytes`
//                             of the stream `seed` out while the echo is checked
//
// The stream is test/qemu/guest/tools/vsock-test.c's: byte i is byte i % 4 (little-endian) of
// xorshift32(seed ^ (i / 4 + 1) * 0x9e3779b1).
import net from 'node:net';

const PAUSE_EVERY = 8 << 20;
const PAUSE_MS = 150;

/** Bytes [from, from + n) of stream `seed`. */
export function streamBytes(seed, from, n) {
  const first = Math.floor(from / 4);
  const words = new Uint32Array(Math.ceil((from + n) / 4) - first + 1);
  for (let k = 0; k < words.length; k++) {
    let x = (seed ^ Math.imul(first + k + 1, 0x9e3779b1)) >>> 0 || 1;
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    words[k] = x;
  }
  const bytes = new Uint8Array(words.buffer); // little-endian on every host this runs on (x86-64, aarch64)
  return bytes.slice(from - 4 * first, from - 4 * first + n);
}

/** Offset of the first byte of `buf` that differs from the stream at `from`, or -1. */
function firstMismatch(seed, from, buf) {
  const want = streamBytes(seed, from, buf.length);
  if (Buffer.compare(Buffer.from(want.buffer, want.byteOffset, want.length), buf) === 0) return -1;
  for (let i = 0; i < buf.length; i++) if (buf[i] !== want[i]) return from + i;
  return -1;
}

/** A host program on `path` (<uds>_PORT) that checks and echoes the stream `seed` of each connection. */
export function echoServer(path, seed) {
  const st = { connections: 0, results: [], server: null, close: () => st.server?.close() };
  st.server = net.createServer((s) => {
    const r = { bytes: 0, error: null, pauses: 0, ended: false };
    st.connections++;
    st.results.push(r);
    let nextPause = PAUSE_EVERY;
    s.on('data', (d) => {
      if (r.error) return;
      const bad = firstMismatch(seed, r.bytes, d);
      if (bad >= 0) {
        r.error = `byte ${bad} differs from the stream`;
        s.destroy();
        return;
      }
      r.bytes += d.length;
      const more = s.write(d);
      if (!more) {
        s.pause(); // our own writes back up: stop taking until they drain
        s.once('drain', () => s.resume());
      }
      if (r.bytes >= nextPause) {
        nextPause += PAUSE_EVERY;
        r.pauses++;
        s.pause();
        setTimeout(() => s.resume(), PAUSE_MS);
      }
    });
    s.on('end', () => {
      r.ended = true;
      s.end();
    });
    s.on('error', (e) => (r.error ??= e.message));
  });
  st.server.listen(path);
  return st;
}

/** A host client for guest port `port` through <uds>: resolves { ok, detail, localPort, bytes, seconds }. */
export function connectClient(uds, port, bytes, seed, timeoutMs = 120000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.createConnection(uds);
    let head = '';
    let localPort = null;
    let sent = 0;
    let got = 0;
    let nextPause = PAUSE_EVERY;
    let done = false;
    const finish = (ok, detail) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ok, detail, localPort, bytes: got, seconds: (Date.now() - t0) / 1000 });
    };
    const timer = setTimeout(() => finish(false, `timed out after ${timeoutMs} ms (sent ${sent}, echoed ${got})`), timeoutMs);
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(65536, bytes - sent);
        const more = s.write(streamBytes(seed, sent, n));
        sent += n;
        if (!more) return void s.once('drain', pump);
      }
    };
    s.on('connect', () => s.write(`CONNECT ${port}\n`));
    s.on('data', (d) => {
      if (localPort === null) {
        const i = d.indexOf(10);
        if (i < 0) return void (head += d.toString('latin1'));
        head += d.subarray(0, i).toString('latin1');
        const m = /^OK (\d+)$/.exec(head);
        if (!m) return finish(false, `expected "OK <port>", got ${JSON.stringify(head)}`);
        localPort = Number(m[1]);
        d = d.subarray(i + 1);
        pump();
      }
      if (!d.length) return;
      const bad = firstMismatch(seed, got, d);
      if (bad >= 0) return finish(false, `echoed byte ${bad} differs from the stream`);
      got += d.length;
      if (got >= nextPause && got < bytes) {
        nextPause += PAUSE_EVERY;
        s.pause();
        setTimeout(() => s.resume(), PAUSE_MS);
      }
      if (got === bytes) finish(true, `${bytes} bytes out and echoed back intact`);
      if (got > bytes) finish(false, `${got} bytes echoed for ${bytes} sent (duplicated)`);
    });
    s.on('close', () => finish(false, localPort === null ? 'closed without OK (no guest listener?)' : `closed after ${got} of ${bytes} echoed bytes`));
    s.on('error', (e) => finish(false, e.message));
  });
}
