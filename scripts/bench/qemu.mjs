// `bulkhead bench qemu --runtime native`: dd in a Linux guest on a Bulkhead virtio-blk disk vs QEMU's
// own virtio-blk-pci over the same kind of image, in the same guest and run (scripts/qemu/bench.mjs).
export * from '../qemu/bench.mjs';
