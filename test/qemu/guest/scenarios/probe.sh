# probe: the transport attaches and every backend device gets a Linux driver
n=${BHQ_DEVS:-1}
WAIT=40 wait_for have_virtio_devs "$n" || fail "expected $n virtio devices, found $(virtio_dev_count)"
for d in /sys/bus/virtio/devices/*; do
	WAIT=20 wait_for test -e "$d/driver" || fail "${d##*/} (id $(virtio_id "$d")) has no driver"
	echo "${d##*/}: id $(virtio_id "$d") driver $(basename "$(readlink "$d/driver")") features $(cat "$d/features") status $(cat "$d/status" 2>/dev/null)"
done
