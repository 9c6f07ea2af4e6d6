// `bulkhead qemu …`: QEMU board emulation, a Linux guest with the real virtio drivers over
// frontend/linux, served by the native firmware across an ivshmem window (docs/qemu.md). The runner
// is scripts/qemu/run.mjs (`npm run qemu -- …` is the same); this file is its command-line face.
import { Option } from 'commander';

export const summary = 'QEMU board emulation: real Linux virtio drivers on Bulkhead (docs/qemu.md)';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .argument('[scenario...]', 'scenarios to run (default: the regular set, scripts/qemu/run.mjs ALL_SCENARIOS); also noback, bench, bench-iops, net, and with --peer fake: garbage silent')
    .option('--arch <arch>', "the frontend guest's board: amd64 (qemu-system-x86_64) or arm64 (qemu-system-aarch64 -M virt -cpu cortex-a57, Debian's arm64 kernel, frontend/linux cross-built)", 'amd64')
    .option('--backend <kind>', 'the backend: native (bulkhead-fw on the host) or vm (bulkhead-fw --uio in a second QEMU guest)', 'native')
    .option('--backend-arch <arch>', "with --backend vm: the backend VM's architecture, amd64 or arm64 (build/aarch64/bulkhead-fw); default: --arch's")
    .option('--peer <peer>', 'instead of a backend, a throwaway fixture: fake[:ok|absent|garbage|silent]')
    .option('--keep', 'keep the run directory (logs, disk image) even when every scenario passed')
    .option('--json', 'print the verdicts as one JSON object')
    .option('--timeout <seconds>', 'give up on the guest after this long', (v) => Number(v))
    .option('--kernel-args <args>', 'extra guest kernel command-line arguments (e.g. pci=nomsi)')
    .option('--storage <config>', "serve the Bulkhead disk in this storage configuration (scripts/qemu/run.mjs STORAGE_CONFIGS: e.g. async-direct, sync-direct; default: the board's)")
    .option('--image-dir <dir>', 'put the disk images in DIR instead of the run directory')
    .option('--modparams <p=v,...>', 'more parameters for the transport module (e.g. data_align=64)')
    .addOption(new Option('--transport <transport>', 'the wire: msg (bulkhead_ivshmem.ko) or regblock (bulkhead_regblock.ko, board qemu-regblock); mmio cannot be emulated: QEMU 7.2 forwards no MMIO to another process').choices(['msg', 'regblock']).default('msg'))
    .addOption(new Option('--ring <format>', 'virtqueue format the guest module offers: split, or packed (bulkhead_ivshmem.ko packed_ring=1: it accepts VIRTIO_F_RING_PACKED; transport msg only)').choices(['split', 'packed']).default('split'));
}

export async function run(opts, [scenarios]) {
  const { runCli } = await import('../qemu/run.mjs');
  return runCli({ ...opts, storageConfig: opts.storage, peer: opts.peer ?? opts.backend, scenarios });
}
