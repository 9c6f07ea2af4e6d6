# bench-iops: 4 KiB random read and write at queue depth 1 and 32, O_DIRECT on the raw disks, io_uring
# (bhq-blkio), on the Bulkhead disk and on QEMU's own virtio-blk-pci in this one guest run. The host
# serves the Bulkhead disk with each storage configuration of bh.bench (e.g. async-direct+sync-direct)
# in turn — the first from boot, each next after stop-backend / start-backend CFG. Each workload runs
# bh.bench_rounds times on the Bulkhead disk and on QEMU's, alternately, so each pair of runs is seconds
# apart on this shared machine. The BHQ-IOPS lines are the figures (scripts/qemu/bench.mjs); nothing here
# is a verdict beyond "every run completed".
SECS=${BHQ_BENCH_SECONDS:-5}
ROUNDS=${BHQ_BENCH_ROUNDS:-3}
host() { echo "BHQ-HOST $*" > /dev/console; }
one() { # DISK LABEL RW QD
	bhq-blkio run "$1" rw="$3" bs=4096 qd="$4" seconds="$SECS" ramp=1 seed="${BHQ_SEED:-1}" label="$2" > /tmp/iops.out 2>&1
	rc=$?
	cat /tmp/iops.out
	[ $rc -eq 0 ] && grep -q '^BHQ-IOPS' /tmp/iops.out || fail "$2 $3 qd$4 on $1: $(tail -n 1 /tmp/iops.out)"
}
WAIT=40 wait_for bulkhead_disk || fail "no Bulkhead virtio disk: $(ls /sys/block)"
WAIT=10 wait_for disk_of qemu || fail "no QEMU virtio-blk-pci disk: $(ls /sys/block)"
first=1
n=0
for cfg in $(echo "${BHQ_BENCH_CONFIGS:-board}" | tr + ' '); do
	if [ $first -eq 0 ]; then
		host stop-backend
		WAIT=30 wait_for no_bulkhead_disk || fail "the Bulkhead disk is still there 30 s after stop-backend"
		host start-backend "$cfg"
		WAIT=60 wait_for bulkhead_disk || fail "the Bulkhead disk did not come back with storage $cfg"
	fi
	first=0
	for rw in randread randwrite; do
		for qd in 1 32; do
			r=0
			while [ $r -lt "$ROUNDS" ]; do
				one "$(bulkhead_disk)" "bulkhead-$cfg" $rw $qd
				one "$(disk_of qemu)" "qemu-beside-$cfg" $rw $qd
				r=$((r + 1))
			done
		done
	done
	n=$((n + 1))
done
echo "$n storage configuration(s) × 4 workloads × $ROUNDS round(s) on both disks, ${SECS} s each" > /tmp/scenario.summary
