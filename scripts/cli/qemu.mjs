// `bulkhead qemu …`: QEMU board emulation, a Linux guest with the real virtio drivers over
// frontend/linux, served by the native firmware across an ivshmem window (docs/qemu.md). The runner
// is scripts/qemu/run.mjs (`npm run qemu -- …` is the same); this file is its command-line face.
export const summary = 'QEMU board emulation: real Linux virtio drivers on Bulkhead (docs/qemu.md)';
export const needsBundle = true;

export function define(cmd) {
  cmd
    .argument('[scenario...]', 'scenarios to run (default: the regular set, scripts/qemu/run.mjs ALL_SCENARIOS); also noback, bench, bench-iops, net, and with --peer fake: garbage silent')
    .option('--backend <kind>', 'the backend: native (bulkhead-fw on the host) or vm (bulkhead-fw --uio in a second QEMU guest)', 'native')
    .option('--peer <peer>', 'instead of a backend, a throwaway fixture: fake[:ok|absent|garbage|silent]')
    .option('--keep', 'keep the run directory (logs, disk image) even when every scenario passed')
    .option('--json', 'print the verdicts as one JSON object')
    .option('--timeout <seconds>', 'give up on the guest after this long', (v) => Number(v))
    .option('--kernel-args <args>', 'extra guest kernel command-line arguments (e.g. pci=nomsi)')
    .option('--storage <config>', "serve the Bulkhead disk in this storage configuration (scripts/qemu/run.mjs STORAGE_CONFIGS: e.g. async-direct, sync-direct; default: the board's)")
    .option('--image-dir <dir>', 'put the disk images in DIR instead of the run directory')
    .option('--modparams <p=v,...>', 'more parameters for bulkhead_ivshmem.ko (e.g. data_align=64)')
    .option('--ring <format>', 'virtqueue format the guest module offers: split, or packed (packed_ring=1: it accepts VIRTIO_F_RING_PACKED)', 'split');
}

export async function run(opts, [scenarios]) {
  const { runCli } = await import('../qemu/run.mjs');
  return runCli({ ...opts, storageConfig: opts.storage, peer: opts.peer ?? opts.backend, scenarios });
}
