# ring: every virtio device negotiated the ring format the boot asked for (bh.ring=split|packed, the
# module's packed_ring parameter): VIRTIO_F_RING_PACKED is feature bit 34, character 35 of sysfs' features.
want=${BHQ_RING:-split}
n=${BHQ_DEVS:-1}
WAIT=40 wait_for have_virtio_devs "$n" || fail "expected $n virtio devices, found $(virtio_dev_count)"
for d in /sys/bus/virtio/devices/*; do
	WAIT=20 wait_for test -e "$d/driver" || fail "${d##*/} (id $(virtio_id "$d")) has no driver"
	bit=$(cut -c35 "$d/features")
	if [ "$bit" = 1 ]; then got=packed; else got=split; fi
	echo "${d##*/}: id $(virtio_id "$d") driver $(basename "$(readlink "$d/driver")") $got rings (features $(cat "$d/features"))"
	[ "$got" = "$want" ] || fail "${d##*/} (id $(virtio_id "$d")) uses $got rings, the boot asked for $want"
done
