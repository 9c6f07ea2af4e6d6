/**
 * Lock-down after boot: the running firmware has no_new_privs, a seccomp filter and no
 * capabilities, and the filter really refuses a syscall outside the allowlist (reported by name
 * number on stderr, exit 128+SIGSYS).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runToEnd } from '../../runtime/native/harness.mjs';
import { FW, requireNative, withNative } from './_native';

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

test('--no-seccomp leaves the filter off (debugging)', async () => {
  await withNative({ seccomp: false }, async (n) => {
    assert.match(readFileSync(`/proc/${n.fw.pid}/status`, 'utf8'), /^Seccomp:\s+0$/m);
  });
});

test.run();
