# reset: unbind and rebind the transport, then repeat a blk check
P=$(transport_pci) || fail "transport not bound"
[ -n "$P" ] || fail "transport not bound"
echo "$P" > $DRV/unbind || fail "unbind $P failed"
WAIT=20 wait_for no_virtio_devs || fail "virtio devices still present after unbind"
[ -e /sys/block/vda ] && fail "/sys/block/vda still present after unbind"
echo "unbound $P: no virtio devices left"
echo "$P" > $DRV/bind || fail "bind $P failed"
WAIT=40 wait_for blk_dev || fail "no virtio block device after rebind"
D=$(blk_dev)
echo "rebound $P: $D is back"
mount -t ext4 "$D" /mnt || fail "mount after rebind failed"
if [ -f /tmp/sums ]; then
	(cd /mnt && sha256sum -c /tmp/sums) || fail "checksums differ after rebind"
fi
dd if=/dev/urandom of=/mnt/f5 bs=1024 count=512 2>/dev/null || fail "writing f5 failed"
(cd /mnt && sha256sum f5) >> /tmp/sums
sync
umount /mnt || fail "umount failed"
fsck.ext4 -n -f "$D" || fail "fsck.ext4 -n -f after rebind reported problems"
while read -r sum name; do echo "BHQ-FILE $name $sum"; done < /tmp/sums
