# bench-sizes: dd O_DIRECT at 4k..4M on every virtio disk (both must exist: the runner adds QEMU's own
# virtio-blk-pci for bench*), with each queue's limits and the requests the block layer issued; a diagnostic
# for where the time goes (docs/qemu.md), not a verdict: it passes when the transfers ran.
WAIT=40 wait_for sh -c '[ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -ge 2 ]' || fail "expected 2 virtio disks"
dd if=/dev/urandom of=/tmp/cp bs=1M count=64 2>/dev/null
t0=$(now); dd if=/tmp/cp of=/dev/null bs=1M 2>/dev/null; t1=$(now)
t2=$(now); dd if=/tmp/cp of=/tmp/cp2 bs=1M 2>/dev/null; t3=$(now)
echo "DIAG copy_to_user (tmpfs read) $(awk "BEGIN{print ($t1-$t0)*1e6/64}") us/MiB; tmpfs->tmpfs (2 copies) $(awk "BEGIN{print ($t3-$t2)*1e6/64}") us/MiB"
rm -f /tmp/cp /tmp/cp2
for b in /sys/block/vd*; do
	d=/dev/${b##*/}
	who=$(disk_who "$b")
	q=$b/queue
	echo "$who: max_sectors_kb $(cat $q/max_sectors_kb) max_hw $(cat $q/max_hw_sectors_kb) max_segments $(cat $q/max_segments) max_segment_size $(cat $q/max_segment_size) nr_requests $(cat $q/nr_requests)"
	for bs in 4k:4000 64k:1000 256k:400 1M:192 4M:48; do
		s=${bs%%:*}; n=${bs##*:}
		set -- $(cat $b/stat); r0=$1; w0=$5
		t0=$(now); dd if=/dev/zero of="$d" bs=$s count=$n oflag=direct 2>/dev/null || fail "dd write $d bs=$s"; t1=$(now)
		t2=$(now); dd if="$d" of=/dev/null bs=$s count=$n iflag=direct 2>/dev/null || fail "dd read $d bs=$s"; t3=$(now)
		set -- $(cat $b/stat); r1=$1; w1=$5
		echo "DIAG $who bs=$s n=$n write $(awk "BEGIN{print ($t1-$t0)*1e6/$n}") us/op reqs $((w1-w0))  read $(awk "BEGIN{print ($t3-$t2)*1e6/$n}") us/op reqs $((r1-r0))"
	done
done
