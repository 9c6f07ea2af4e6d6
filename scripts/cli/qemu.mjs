// `bulkhead qemu [scenario…] [--arch amd64|arm64] [--backend native|vm] [--backend-arch A] [--peer fake:MODE] [--keep] [--json] [--timeout S]`
// QEMU board emulation: a Linux guest with the real virtio drivers over frontend/linux, served by the
// native firmware across an ivshmem window (docs/qemu.md).
export { run } from '../qemu/run.mjs';
