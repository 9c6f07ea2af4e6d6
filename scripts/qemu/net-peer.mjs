#!/usr/bin/env node
// The host end of the QEMU `net` scenario; runs inside the run's network namespace (ip netns exec),
// behind the backend's TAP. The guest fetches a blob and uploads one:
//   HTTP on PORT       GET /blob (BYTES random bytes, fixed for this run), GET /blob.sha256 (their sha256)
//   raw TCP on PORT+1  everything the client sends until it shuts down its side; the answer is its
//                      sha256 (hex): busybox `nc HOST PORT+1 < FILE` (busybox wget --post-file stops
//                      at the first NUL byte, so uploads do not use HTTP)
// One JSON line per event on stdout: {"ready":…}, {"served":…}, {"upload":{"sha256","bytes"}}, {"error":…}.
// Bounded: exits by itself after --max-seconds (default 120); an upload over 64 MiB is cut off.
//
//   node scripts/qemu/net-peer.mjs --host 10.201.77.1 --port 8077 [--bytes N] [--max-seconds S]
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '8077'));
const bytes = Number(arg('bytes', String(4 << 20)));
const maxSeconds = Number(arg('max-seconds', '120'));
const MAX_UPLOAD = 64 << 20;

const blob = randomBytes(bytes);
const blobSum = createHash('sha256').update(blob).digest('hex');
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/blob') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(blob, () => say({ served: { bytes: blob.length, sha256: blobSum } }));
  } else if (req.method === 'GET' && req.url === '/blob.sha256') {
    res.end(blobSum + '\n');
  } else {
    res.writeHead(404).end();
  }
});

const upload = net.createServer({ allowHalfOpen: true }, (c) => {
  const h = createHash('sha256');
  let n = 0;
  c.on('data', (d) => {
    n += d.length;
    if (n > MAX_UPLOAD) {
      say({ error: `upload over ${MAX_UPLOAD} bytes: cut off` });
      c.destroy();
      return;
    }
    h.update(d);
  });
  c.on('end', () => {
    const sha256 = h.digest('hex');
    say({ upload: { sha256, bytes: n } });
    c.end(sha256 + '\n');
  });
  c.on('error', (e) => say({ error: `upload connection: ${e.message}` }));
});

for (const s of [server, upload]) {
  s.on('error', (e) => {
    say({ error: e.message });
    process.exit(2);
  });
}
server.listen(port, host, () =>
  upload.listen(port + 1, host, () => say({ ready: { host, port, uploadPort: port + 1, blobBytes: blob.length, blobSha256: blobSum } })),
);
setTimeout(() => {
  say({ error: `still running after ${maxSeconds} s: exiting` });
  process.exit(3);
}, maxSeconds * 1000);
process.on('SIGTERM', () => process.exit(0));
