// QEMU tier (npm run test:qemu): a Debian kernel's own virtio drivers over frontend/linux on an
// ivshmem-doorbell device, against the native backend build/bulkhead-fw. One guest boot runs every
// scenario; each scenario is one test here. On failure the message names the guest console log.
import { describe, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { runQemu, ALL_SCENARIOS } from '../../scripts/qemu/run.mjs';

function verdicts(title, opts, names) {
  describe(title, () => {
    let r;
    before(async () => {
      r = await runQemu(opts);
    });
    for (const name of names) {
      test(name, (t) => {
        const v = r.scenarios[name];
        const where = `guest console log: ${r.consoleLog}${r.error ? `\nrun error: ${r.error}` : ''}`;
        assert.ok(v, `no verdict for ${name}\n${where}`);
        assert.ok(v.pass, `${name}: ${v.detail}\n${where}`);
        if (v.detail) t.diagnostic(`${name}: ${v.detail}`);
      });
    }
  });
}

verdicts('native backend: blk + console + rng + vsock + i2c + gpio', { scenarios: ALL_SCENARIOS, peer: 'native' },
  [...ALL_SCENARIOS, 'blk-host', 'console-host', 'vsock-host', 'vsock-restart-host', 'i2c-host', 'gpio-host', 'dmesg']);

// issue 15: kill -9 of the backend at 20 seeded points of a write+fsync workload, a restart each time;
// then console and net must work again (board qemu-net: net in the list)
verdicts('backend killed (SIGKILL) under write+fsync load 20 times and restarted',
  { scenarios: ['crash', 'console', 'net'], peer: 'native' }, ['crash', 'crash-host', 'console', 'console-host', 'net', 'net-host', 'dmesg']);

// issue 12: the same guest checks over transport regblock (frontend/linux/bulkhead_regblock.ko, board
// qemu-regblock): ext4 mkfs/fsck with checksums, console both ways, hwrng, ping and a TCP transfer
verdicts('transport regblock: the same checks over Jailhouse-style register blocks (bulkhead_regblock.ko)',
  { scenarios: ['probe', 'blk', 'console', 'rng', 'net'], peer: 'native', transport: 'regblock' },
  ['probe', 'blk', 'console', 'rng', 'net', 'blk-host', 'console-host', 'net-host', 'dmesg']);

verdicts('no MSI-X in the guest (pci=nomsi): the transport polls the window',
  { scenarios: ['probe', 'blk', 'rng'], peer: 'native', kernelArgs: 'pci=nomsi' }, ['probe', 'blk', 'rng', 'blk-host', 'dmesg']);

verdicts('virtio-net: a TAP in a network namespace behind the backend (board qemu-net)',
  { scenarios: ['probe', 'net'], peer: 'native' }, ['probe', 'net', 'net-host', 'dmesg']);

// the same Linux drivers on packed virtqueues (the module's packed_ring=1): one boot of board qemu-net
// runs the blk, console, rng and net checks, and `ring` proves every device negotiated VIRTIO_F_RING_PACKED
const PACKED_SCENARIOS = ['probe', 'ring', 'blk', 'console', 'rng', 'net'];
verdicts('packed virtqueues (VIRTIO_F_RING_PACKED): blk + console + rng + net', { scenarios: PACKED_SCENARIOS, peer: 'native', ring: 'packed' },
  [...PACKED_SCENARIOS, 'blk-host', 'console-host', 'net-host', 'dmesg']);

// the two-partition topology: the backend is a second QEMU guest running bulkhead-fw --uio on its own
// ivshmem-doorbell device (runtime/native/linux/bulkhead_uio.ko), its disk the VM's virtio-blk-pci.
// That VM is the arm64 board (qemu-system-aarch64 -M virt, Debian's arm64 kernel, the module
// cross-built, build/aarch64/bulkhead-fw) serving the x86-64 frontend guest: the aarch64 firmware
// in a real arm64 Linux partition, at no extra boot (`--backend vm` alone runs an amd64 one).
const VM_SCENARIOS = ['probe', 'blk', 'rng', 'reset', 'restart'];
verdicts('backend partition as an arm64 VM (build/aarch64/bulkhead-fw --uio) serving the x86-64 guest',
  { scenarios: VM_SCENARIOS, peer: 'vm', backendArch: 'arm64' }, [...VM_SCENARIOS, 'blk-host', 'dmesg']);

// the arm64 board: qemu-system-aarch64 -M virt -cpu cortex-a57 with Debian's arm64 kernel and frontend/linux
// cross-built, served by the x86-64 native backend across the same window (one boot, board qemu-net)
const ARM64_SCENARIOS = ['probe', 'blkverify', 'blk', 'console', 'rng', 'reset', 'net'];
verdicts('arm64 board: Debian arm64 guest (-M virt, cortex-a57), native x86-64 backend',
  { scenarios: ARM64_SCENARIOS, peer: 'native', arch: 'arm64' }, [...ARM64_SCENARIOS, 'blk-host', 'console-host', 'net-host', 'dmesg']);

// its run directory under a path longer than a unix socket path may be (108 bytes): the sockets must
// not live there (issue 17: a checkout in a deep folder)
const deep = path.join(os.tmpdir(), 'bulkhead-deep-path', 'a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40));
verdicts('no backend on the ivshmem server (run directory deeper than a socket path may be)', { scenarios: ['noback'], peer: 'native', runsDir: deep }, ['noback', 'dmesg']);

// failure paths the real backend does not produce on purpose, driven by a throwaway fixture
const havePython = spawnSync('python3', ['--version']).status === 0;
if (havePython) {
  verdicts('garbage window header (fixture)', { scenarios: ['garbage'], peer: 'fake:garbage' }, ['garbage', 'dmesg']);
  verdicts('backend that never answers (fixture)', { scenarios: ['silent'], peer: 'fake:silent' }, ['silent', 'dmesg']);
}
