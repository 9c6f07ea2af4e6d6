// `bulkhead qemu [scenario…] [--peer native|fake:MODE] [--ring split|packed] [--keep] [--json] [--timeout S]`
// QEMU board emulation: a Linux guest with the real virtio drivers over frontend/linux, served by the
// native firmware across an ivshmem window (docs/qemu.md).
export { run } from '../qemu/run.mjs';
