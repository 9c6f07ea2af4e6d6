# rng: /dev/hwrng served by virtio-rng over Bulkhead
WAIT=40 wait_for grep -q virtio /sys/class/misc/hw_random/rng_current || \
	fail "rng_current is '$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)', want virtio_rng.N"
echo "rng_current: $(cat /sys/class/misc/hw_random/rng_current); available: $(cat /sys/class/misc/hw_random/rng_available)"
head -c 512 /dev/hwrng > /tmp/r1 || fail "read /dev/hwrng"
head -c 512 /dev/hwrng > /tmp/r2 || fail "read /dev/hwrng"
[ "$(wc -c < /tmp/r1)" -eq 512 ] || fail "short read from /dev/hwrng: $(wc -c < /tmp/r1) bytes"
cmp -s /tmp/r1 /tmp/r2 && fail "two reads of /dev/hwrng are identical"
[ -n "$(od -An -tx1 /tmp/r1 | tr -d ' 0\n')" ] || fail "/dev/hwrng returned zeroes"
echo "read 2 x 512 random bytes: $(head -c 8 /tmp/r1 | od -An -tx1 | tr -d '\n')..."
