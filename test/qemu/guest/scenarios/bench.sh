# bench: dd throughput (O_DIRECT, 1 MiB blocks) on every virtio disk; the host tells them apart
# by the virtio vendor id (Bulkhead 0x4b4c4842, QEMU's virtio-blk-pci 0x1af4)
MB=${BHQ_BENCH_MB:-192}
WAIT=40 wait_for sh -c '[ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -ge 2 ]' || fail "expected 2 virtio disks, have: $(ls /sys/block)"
for b in /sys/block/vd*; do
	d=/dev/${b##*/}
	who=$(disk_who "$b")
	for pass in 1 2 3; do
		t0=$(now); dd if=/dev/zero of="$d" bs=1M count="$MB" oflag=direct 2>/dev/null || fail "dd write $d"; t1=$(now)
		echo 3 > /proc/sys/vm/drop_caches
		t2=$(now); dd if="$d" of=/dev/null bs=1M count="$MB" iflag=direct 2>/dev/null || fail "dd read $d"; t3=$(now)
		echo "BHQ-BENCH $who write $MB $(awk "BEGIN{print $t1-$t0}")"
		echo "BHQ-BENCH $who read $MB $(awk "BEGIN{print $t3-$t2}")"
	done
done
