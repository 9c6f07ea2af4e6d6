# i2c: Linux's i2c-virtio adapter over Bulkhead, driven with Debian's i2c-tools through i2c-dev:
# i2cdetect finds exactly the board's targets, the 24C02 reads back what i2cset / i2ctransfer wrote
# (its page roll-over included), the sensor's registers, and a read longer than the sensor has is a
# clean error. BHQ-EEPROM lines tell the host what the EEPROM file must hold afterwards.
bus_of() {
	local d
	for d in /sys/bus/i2c/devices/i2c-*; do
		grep -q '^i2c_virtio' "$d/name" 2>/dev/null && { echo "${d##*i2c-}"; return 0; }
	done
	return 1
}
WAIT=40 wait_for bus_of || fail "no i2c_virtio adapter in /sys/bus/i2c/devices"
B=$(bus_of)
WAIT=10 wait_for test -c "/dev/i2c-$B" || fail "no /dev/i2c-$B (i2c-dev)"
echo "adapter: i2c-$B ($(cat /sys/bus/i2c/devices/i2c-$B/name))"

i2cdetect -y "$B" > /tmp/detect || fail "i2cdetect -y $B failed"
cat /tmp/detect
found=$(sed -n 's/^[0-7]0: //p' /tmp/detect | tr ' ' '\n' | grep -vE '^(--|UU|)$' | sort | tr '\n' ' ')
[ "$found" = "48 50 " ] || fail "i2cdetect found '$found', want the board's targets '48 50 '"

# 24C02: a byte, then a 10-byte write from 0x26 that rolls over inside the page 0x20..0x27
i2cset -y "$B" 0x50 0x10 0xab || fail "i2cset 0x50 0x10 0xab"
v=$(i2cget -y "$B" 0x50 0x10) || fail "i2cget 0x50 0x10"
[ "$v" = "0xab" ] || fail "i2cget 0x50 0x10 read $v, wrote 0xab"
i2ctransfer -y "$B" w11@0x50 0x26 1 2 3 4 5 6 7 8 9 10 || fail "i2ctransfer page write"
page=$(i2ctransfer -y "$B" w1@0x50 0x20 r8) || fail "i2ctransfer page read"
[ "$page" = "0x03 0x04 0x05 0x06 0x07 0x08 0x09 0x0a" ] || fail "page 0x20 reads '$page' (roll-over inside the page expected)"
echo "EEPROM 0x10 = $v, page 0x20 = $page"
echo "BHQ-EEPROM 10 ab"
echo "BHQ-EEPROM 20 030405060708090a"
echo "BHQ-EEPROM 28 ff"

# the temperature sensor: device ID, manufacturer ID, the board's 36.5 °C, a limit read back
[ "$(i2cget -y "$B" 0x48 7)" = "0x54" ] || fail "sensor device ID"
[ "$(i2cget -y "$B" 0x48 6)" = "0x42" ] || fail "sensor manufacturer ID"
t=$(i2ctransfer -y "$B" w1@0x48 0 r2) || fail "sensor temperature read"
[ "$t" = "0x24 0x80" ] || fail "temperature registers '$t', want 0x24 0x80 (36.5 °C)"
i2cset -y "$B" 0x48 3 0x30 || fail "i2cset sensor T_HIGH"
[ "$(i2cget -y "$B" 0x48 3)" = "0x30" ] || fail "sensor T_HIGH did not read back"
if i2cset -y "$B" 0x48 7 0x99 2>/tmp/ro.err; then fail "a write to the read-only device ID register succeeded"; fi
echo "sensor: ID 0x54, 36.5 C; read-only register refused: $(cat /tmp/ro.err)"

# a read longer than the sensor has (9 of 8 registers): one of two messages sent, no data
out=$(i2ctransfer -y "$B" w1@0x48 0 r9 2>/tmp/long.err)
grep -q 'only 1/2 messages' /tmp/long.err || fail "a 9-byte sensor read: '$out' / '$(cat /tmp/long.err)'"
[ -z "$out" ] || fail "a failed read printed data: $out"
[ "$(i2cget -y "$B" 0x48 7)" = "0x54" ] || fail "the adapter stopped serving after the long read"
echo "a 9-byte read of the 8-register sensor: $(cat /tmp/long.err)"
if i2cget -y "$B" 0x51 0 2>/dev/null; then fail "an absent address (0x51) answered"; fi
echo "absent address 0x51: not acknowledged"
