# vsock-restart: a connection held open while the backend is killed ends with ECONNRESET (Linux resets
# its sockets when the device goes away) instead of hanging; the restarted backend's vsock device sends
# VIRTIO_VSOCK_EVENT_TRANSPORT_RESET to the re-probed driver (checked on the host: vsock-restart-host),
# and a new connection carries data again.
host() { echo "BHQ-HOST $1" > /dev/console; }
WAIT=40 wait_for vsock_dev || fail "no virtio-vsock device bound to vmw_vsock_virtio_transport"
vsock-test hold 5000 4096 1 > /tmp/hold.out 2>&1 &
holder=$!
WAIT=20 wait_for grep -q "OK hold" /tmp/hold.out || fail "the held connection did not start: $(cat /tmp/hold.out)"
host kill-backend
WAIT=30 wait_for no_virtio_devs || fail "devices still present 30 s after the backend was killed"
gone() { ! kill -0 "$holder" 2>/dev/null; }
WAIT=10 wait_for gone || fail "the held connection still hangs after the device went away"
wait "$holder" || fail "held connection: $(tail -n 1 /tmp/hold.out)"
echo "held connection: $(tail -n 1 /tmp/hold.out)"
host start-backend
WAIT=60 wait_for vsock_dev || fail "no vsock device after the backend restarted"
out=$(vsock-test client 5000 $((1 << 20)) 1) || fail "a new connection after the restart: $out"
echo "after the restart: $out"
host vsock-stats:restart
