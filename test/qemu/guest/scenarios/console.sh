# console: text both ways through /dev/hvc0 (the host side answers our line)
WAIT=40 wait_for test -c /dev/hvc0 || fail "no /dev/hvc0"
stty -F /dev/hvc0 -echo 2>/dev/null
nonce=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
rm -f /tmp/con.ok
( timeout 30 sh -c "while read -r l; do case \"\$l\" in *\"host-to-guest $nonce\"*) echo \"\$l\" > /tmp/con.ok; exit 0;; esac; done" < /dev/hvc0 ) &
reader=$!
usleep 200000
echo "BHQ-CONSOLE guest-to-host $nonce" > /dev/hvc0 || fail "write to /dev/hvc0 failed"
echo "sent 'guest-to-host $nonce' on /dev/hvc0"
wait $reader
[ -f /tmp/con.ok ] || fail "no 'host-to-guest $nonce' line on /dev/hvc0 within 30 s"
echo "received: $(cat /tmp/con.ok)"
