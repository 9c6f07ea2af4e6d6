# blk: mkfs.ext4, write files with known checksums, fsck -n clean, remount, verify
WAIT=40 wait_for blk_dev || fail "no virtio block device"
D=$(blk_dev)
echo "disk $D: $(cat /sys/block/${D#/dev/}/size) sectors"
mkfs.ext4 -q -F -b 4096 "$D" || fail "mkfs.ext4 $D failed"
mount -t ext4 "$D" /mnt || fail "mount $D failed"
i=0
for kb in 4 64 1024 3000; do
	i=$((i + 1))
	dd if=/dev/urandom of=/mnt/f$i bs=1024 count=$kb 2>/dev/null || fail "writing f$i ($kb KiB) failed"
done
mkdir -p /mnt/dir && echo "hello from a Linux guest, through Bulkhead" > /mnt/dir/hello.txt
(cd /mnt && sha256sum f1 f2 f3 f4 dir/hello.txt) > /tmp/sums
sync
umount /mnt || fail "umount failed"
echo 3 > /proc/sys/vm/drop_caches
fsck.ext4 -n -f "$D" || fail "fsck.ext4 -n -f reported problems (exit $?)"
mount -t ext4 "$D" /mnt || fail "remount failed"
(cd /mnt && sha256sum -c /tmp/sums) || fail "checksums differ after remount"
umount /mnt || fail "second umount failed"
while read -r sum name; do echo "BHQ-FILE $name $sum"; done < /tmp/sums
