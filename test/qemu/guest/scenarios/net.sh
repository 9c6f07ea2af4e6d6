# net: virtio-net over Bulkhead. Behind the backend is a TAP in the host test's network namespace
# (bh.net=MAC,GUEST_IP,HOST_IP,PORT): the interface has the board's MAC, pings the TAP end, and moves
# a file each way over TCP with the checksum verified on the other side: wget from
# scripts/qemu/net-peer.mjs's HTTP port, busybox nc to its raw upload port (PORT + 1).
[ -n "$BHQ_NET" ] || fail "no bh.net= on the kernel command line"
set -- $(echo "$BHQ_NET" | tr , ' ')
MAC=$1 GIP=$2 HIP=$3 PORT=$4
KB=${BHQ_NET_KB:-4096}
net_if() {
	local n
	for n in /sys/class/net/*; do
		[ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = virtio_net ] && { echo "${n##*/}"; return 0; }
	done
	return 1
}
secs() { cut -d' ' -f1 /proc/uptime; }
WAIT=40 wait_for net_if || fail "no virtio_net interface (have: $(ls /sys/class/net | tr '\n' ' '))"
IF=$(net_if)
ip link show "$IF"
have=$(cat "/sys/class/net/$IF/address")
[ "$have" = "$MAC" ] || fail "$IF has MAC $have, the board says $MAC"
ip link show "$IF" | grep -q "link/ether $MAC" || fail "ip link show $IF does not show link/ether $MAC"
echo "$IF: MAC $MAC as in the board; features $(cat "/sys/class/net/$IF/device/features")"
ip addr add "$GIP/24" dev "$IF" || fail "ip addr add $GIP/24 dev $IF failed"
ip link set "$IF" up || fail "ip link set $IF up failed"
WAIT=20 wait_for grep -qx 1 "/sys/class/net/$IF/carrier" || fail "$IF has no carrier (link down in the device's STATUS?)"
ping -c 3 -w 20 "$HIP" || fail "ping $HIP (the TAP end in the host's namespace) failed"
ip neigh show dev "$IF"

t0=$(secs)
timeout 90 wget -q -O /tmp/net.dl "http://$HIP:$PORT/blob" || fail "wget http://$HIP:$PORT/blob failed"
t1=$(secs)
want=$(timeout 20 wget -q -O - "http://$HIP:$PORT/blob.sha256") || fail "wget blob.sha256 failed"
got=$(sha256sum /tmp/net.dl | cut -d' ' -f1)
n=$(wc -c < /tmp/net.dl)
[ "$got" = "$want" ] || fail "download: $n bytes with sha256 $got, the host sent sha256 $want"
echo "download: $n bytes in $(awk "BEGIN{printf \"%.2f\", $t1-$t0}")s, sha256 $got matches the host's"
rm -f /tmp/net.dl

dd if=/dev/urandom of=/tmp/net.up bs=1024 count="$KB" 2>/dev/null || fail "dd /dev/urandom failed"
sum=$(sha256sum /tmp/net.up | cut -d' ' -f1)
t0=$(secs)
ans=$(timeout 90 nc "$HIP" $((PORT + 1)) < /tmp/net.up) || fail "upload (nc $HIP $((PORT + 1))) failed"
t1=$(secs)
[ "$ans" = "$sum" ] || fail "upload: the host computed sha256 '$ans', the guest sent $sum"
echo "upload: $((KB * 1024)) bytes in $(awk "BEGIN{printf \"%.2f\", $t1-$t0}")s, the host computed the same sha256"
echo "BHQ-NETFILE upload $sum $((KB * 1024))"
rm -f /tmp/net.up
s=/sys/class/net/$IF/statistics
echo "$IF: rx $(cat $s/rx_packets) packets $(cat $s/rx_bytes) bytes (dropped $(cat $s/rx_dropped)), tx $(cat $s/tx_packets) packets $(cat $s/tx_bytes) bytes (dropped $(cat $s/tx_dropped))"
