# silent: READY header, no answers -> request timeout, clear error, no device
WAIT=40 wait_for sh -c "dmesg | grep -q 'does not answer PING'" || fail "no 'does not answer PING' line in dmesg"
dmesg | grep 'bulkhead' | tail -n 4
no_virtio_devs || fail "virtio devices appeared although the backend never answers"
