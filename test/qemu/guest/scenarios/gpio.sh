# gpio: Linux's gpio-virtio chip over Bulkhead, driven with Debian's libgpiod tools: the chip has the
# board's line names; a value the guest drives is seen by the host (which reads it through
# `bulkhead gpio get` on the backend's control socket) and only then raises an edge with `bulkhead gpio
# set`, which must reach gpiomon in the guest as an interrupt.
WAIT=40 wait_for gpiofind LED0 || fail "no gpiochip with a line LED0 ($(gpiodetect 2>&1 | tr '\n' ' '))"
set -- $(gpiofind LED0)
CHIP=$1
LED=$2
BUTTON=$(gpiofind BUTTON0 | cut -d' ' -f2)
gpiodetect
gpioinfo "$CHIP" > /tmp/info || fail "gpioinfo $CHIP"
cat /tmp/info
for n in LED0 BUTTON0 RESET_N ALERT_N; do grep -q "\"$n\"" /tmp/info || fail "gpioinfo has no line named $n"; done
grep -q 'unnamed' /tmp/info || fail "the unnamed line is not shown as unnamed"

# the host sees the guest's output only while the guest holds the line (a released line is 'none')
gpioset --mode=signal "$CHIP" "$LED=1" &
holder=$!
gpiomon --num-events=1 --rising-edge "$CHIP" "$BUTTON" > /tmp/mon 2>&1 &
mon=$!
led_held() { gpioinfo "$CHIP" | grep -qE '"LED0" +"gpioset" +output'; }
WAIT=20 wait_for led_held || fail "gpioset did not take LED0 as an output: $(gpioinfo "$CHIP" | grep LED0)"
WAIT=20 wait_for grep -q gpiomon /proc/interrupts || fail "gpiomon's interrupt was not requested: $(cat /tmp/mon)"
gpioinfo "$CHIP" | grep -E 'LED0|BUTTON0'
grep gpiomon /proc/interrupts
host_action gpio-check LED0=1:BUTTON0=1
i=0
while kill -0 "$mon" 2>/dev/null && [ $i -lt 300 ]; do usleep 100000; i=$((i + 1)); done
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
if kill -0 "$mon" 2>/dev/null; then
	kill "$mon"
	fail "no rising edge on BUTTON0 reached gpiomon within 30 s (did the host see LED0=1?)"
fi
cat /tmp/mon
grep -q 'RISING EDGE' /tmp/mon || fail "gpiomon reported '$(cat /tmp/mon)'"
[ "$(gpioget "$CHIP" "$BUTTON")" = "1" ] || fail "BUTTON0 does not read 1 after the host drove it"
echo "host saw LED0=1 and raised BUTTON0: the edge reached the guest; BUTTON0 reads 1"
