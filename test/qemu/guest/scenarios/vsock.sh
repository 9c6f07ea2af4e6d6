# vsock: the guest's own vmw_vsock_virtio_transport against the backend's virtio-vsock device.
# Guest → host: 64 MiB of a checked stream to host port 5000 (the host's echo program on <uds>_5000)
# and the echo back, each byte checked here and on the host; host → guest: a host client's
# CONNECT 7000 on <uds> reaches our listener on port 7000 and 8 MiB go both ways. Both ends stop reading
# now and then, so credit runs out in both directions on the way.
WAIT=40 wait_for vsock_dev || fail "no virtio-vsock device bound to vmw_vsock_virtio_transport"
out=$(vsock-test client 5000 $((64 << 20)) 1) || fail "guest → host: $out"
echo "guest → host port 5000: $out"
vsock-test server 7000 $((8 << 20)) 2 > /tmp/vsock-server.out 2>&1 &
srv=$!
WAIT=10 wait_for grep -q listening /tmp/vsock-server.out || fail "the guest listener did not start: $(cat /tmp/vsock-server.out)"
echo "BHQ-HOST vsock-connect:7000:$((8 << 20)):2" > /dev/console
wait $srv || fail "host → guest port 7000: $(tail -n 1 /tmp/vsock-server.out)"
echo "host → guest port 7000: $(tail -n 1 /tmp/vsock-server.out)"
echo "BHQ-HOST vsock-stats" > /dev/console
