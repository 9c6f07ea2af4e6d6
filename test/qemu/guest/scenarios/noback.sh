# noback: no backend in the window -> a clear error, no device, no oops
WAIT=30 wait_for sh -c "dmesg | grep -q 'no backend after'" || fail "no 'no backend after' line in dmesg"
dmesg | grep 'bulkhead' | tail -n 3
no_virtio_devs || fail "virtio devices appeared without a backend"
