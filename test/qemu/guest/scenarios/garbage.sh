# garbage: a header with a bad layout -> rejected with its reason, no device
WAIT=30 wait_for sh -c "dmesg | grep -q 'window header rejected'" || fail "no 'window header rejected' line in dmesg"
dmesg | grep 'bulkhead' | tail -n 3
no_virtio_devs || fail "virtio devices appeared over a bad header"
