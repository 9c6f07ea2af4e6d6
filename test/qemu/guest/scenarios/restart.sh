# restart: the backend stops cleanly (STOPPED), comes back, is killed (no word), comes back;
# each time the devices go away without an oops and return with the data intact
n=${BHQ_DEVS:-3}
host() { echo "BHQ-HOST $1" > /dev/console; }
blk_verify() {
	WAIT=40 wait_for blk_dev || fail "no block device after $1"
	[ -f /tmp/sums ] || return 0
	mount -t ext4 "$(blk_dev)" /mnt || fail "mount after $1 failed"
	(cd /mnt && sha256sum -c /tmp/sums >/dev/null) || { umount /mnt; fail "checksums differ after $1"; }
	umount /mnt
	echo "after $1: $(wc -l < /tmp/sums) files verified"
}
WAIT=40 wait_for have_virtio_devs "$n" || fail "expected $n devices before the restart"
host stop-backend
WAIT=20 wait_for no_virtio_devs || fail "devices still present 20 s after the backend stopped"
dmesg | grep -q 'backend lost: it went away (backendState 3' || fail "no 'backend lost: it went away (backendState 3 STOPPED ...' line"
echo "backend stopped: devices removed"
host start-backend
WAIT=60 wait_for have_virtio_devs "$n" || fail "devices did not come back after the backend restarted"
blk_verify "a clean restart"
host kill-backend
WAIT=30 wait_for no_virtio_devs || fail "devices still present 30 s after the backend was killed"
dmesg | grep -q 'backend lost: no answer to PING' || fail "no 'backend lost: no answer to PING' line after the kill"
echo "backend killed: devices removed ($(dmesg | grep -c 'backend lost:') 'backend lost' line(s))"
host start-backend
WAIT=60 wait_for have_virtio_devs "$n" || fail "devices did not come back after the backend was killed and restarted"
blk_verify "a kill and restart"
