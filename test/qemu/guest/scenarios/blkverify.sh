# blkverify: bhq-blkio's verify on the raw Bulkhead disk, O_DIRECT, io_uring at queue depth 32 (before
# blk puts a file system on it): 1024 random 4 KiB writes, a read of every block, a pass that rewrites a
# random half while reading the other half, a last read of every block — each block must hold the
# generation written last (its header names block, generation and seed, the rest is seeded data), so a
# lost, stale, torn or misplaced write fails with the block and what it held
WAIT=40 wait_for bulkhead_disk || fail "no Bulkhead virtio disk: $(ls /sys/block)"
d=$(bulkhead_disk)
bhq-blkio verify "$d" qd=32 blocks=1024 seed="${BHQ_SEED:-1}" > /tmp/verify.out 2>&1
rc=$?
cat /tmp/verify.out
[ $rc -eq 0 ] && grep -q '^BHQ-VERIFY ok' /tmp/verify.out || fail "$d: $(tail -n 1 /tmp/verify.out)"
sed -n 's/^BHQ-VERIFY ok //p' /tmp/verify.out > /tmp/scenario.summary
