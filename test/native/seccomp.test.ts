/**
 * Lock-down after boot: the running firmware has no_new_privs, a seccomp filter and no
 * capabilities — on every thread, the asynchronous storage's workers included — and the filter
 * really refuses a syscall outside the allowlist (reported by number on stderr, exit 128+SIGSYS).
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runToEnd } from '../../runtime/native/harness.mjs';
import { board, FW, requireNative, withNative } from './_native';

test('a syscall outside the allowlist (socket(AF_INET): only AF_UNIX is allowed, for vsock) is refused: one line naming it, exit 159', async () => {
  requireNative();
  const r = await runToEnd(FW, ['--selftest-seccomp']);
  assert.is(r.code, 159, r.stderr);
  assert.match(r.stderr, /^bulkhead-fw: seccomp: forbidden syscall 41\n$/);
});

test('the serving firmware runs filtered, with no_new_privs and no capabilities', async () => {
  await withNative({}, async (n) => {
    const status = readFileSync(`/proc/${n.fw.pid}/status`, 'utf8');
    assert.match(status, /^Seccomp:\s+2$/m, 'seccomp filter mode');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    assert.match(status, /^CapEff:\s+0+$/m, 'no effective capabilities');
    assert.match(status, /^CapPrm:\s+0+$/m, 'no permitted capabilities');
  });
});

test('every thread is filtered: the storage thread pool\'s workers too (TSYNC), with no capabilities', async () => {
  const path = `/dev/shm/bulkhead-seccomp-${process.pid}.img`;
  writeFileSync(path, new Uint8Array(1 << 20));
  try {
    const b = board({ devices: [{ type: 'blk', service: 'disk0' }], services: { disk0: { kind: 'storage', path } } });
    await withNative({ board: b, args: ['--aio', 'threads'] }, async (n) => {
      const tasks = readdirSync(`/proc/${n.fw.pid}/task`);
      assert.ok(tasks.length > 1, `the firmware runs storage threads (${tasks.length} tasks)`);
      for (const t of tasks) {
        const status = readFileSync(`/proc/${n.fw.pid}/task/${t}/status`, 'utf8');
        assert.match(status, /^Seccomp:\s+2$/m, `thread ${t} is filtered`);
        assert.match(status, /^NoNewPrivs:\s+1$/m, `thread ${t} has no_new_privs`);
        assert.match(status, /^CapEff:\s+0+$/m, `thread ${t} has no effective capabilities`);
      }
    });
  } finally {
    rmSync(path, { force: true });
  }
});

test('--no-seccomp leaves the filter off (debugging)', async () => {
  await withNative({ seccomp: false }, async (n) => {
    assert.match(readFileSync(`/proc/${n.fw.pid}/status`, 'utf8'), /^Seccomp:\s+0$/m);
  });
});

test.run();
