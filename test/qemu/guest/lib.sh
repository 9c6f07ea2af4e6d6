# Shared helpers for the guest scenarios (sourced by /init). busybox sh.

DRV=${BHQ_DRV:-/sys/bus/pci/drivers/bulkhead-ivshmem}

say() { echo "BHQ-LOG $*"; }

# host_action ACTION [ARG]: asks the runner to act now (the console, not the scenario's buffered output)
host_action() { echo "BHQ-HOST $*" > /dev/console; }

# run_scenario NAME: runs /bhq/scenarios/NAME.sh in a subshell, prints its verdict
run_scenario() {
	local name="$1" f="/bhq/scenarios/$1.sh" t0 t1 out rc
	if [ ! -f "$f" ]; then
		echo "BHQ-RESULT $name FAIL no such scenario"
		return
	fi
	t0=$(cut -d' ' -f1 /proc/uptime)
	echo "BHQ-START $name"
	rm -f /tmp/scenario.summary
	( . "$f" ) >/tmp/scenario.out 2>&1
	rc=$?
	t1=$(cut -d' ' -f1 /proc/uptime)
	sed 's/^/  | /' /tmp/scenario.out
	if [ $rc -eq 0 ]; then
		# a scenario may leave one line of figures for the verdict in /tmp/scenario.summary
		echo "BHQ-RESULT $name PASS ($(awk "BEGIN{printf \"%.1f\", $t1-$t0}")s)$( [ -f /tmp/scenario.summary ] && echo " $(head -n 1 /tmp/scenario.summary)")"
	else
		echo "BHQ-RESULT $name FAIL $(tail -n 1 /tmp/scenario.out)"
		echo "  dmesg tail:"
		dmesg | tail -n 25 | sed 's/^/  # /'
	fi
}

fail() { echo "FAIL: $*"; exit 1; }

# wait_for CMD... : retry a command for up to $WAIT seconds (default 20)
wait_for() {
	local i=0 max=$(( ${WAIT:-20} * 10 ))
	while [ $i -lt $max ]; do
		"$@" >/dev/null 2>&1 && return 0
		usleep 100000
		i=$((i + 1))
	done
	return 1
}

# microsecond clock: the timestamp the kernel gives a line we write to /dev/kmsg
now() {
	local tok
	tok=$(cat /proc/sys/kernel/random/uuid)
	echo "bhq-stamp $tok" > /dev/kmsg
	dmesg | grep "bhq-stamp $tok" | tail -n 1 | sed 's/^\[ *\([0-9.]*\)\].*/\1/'
}

virtio_dev_count() { ls /sys/bus/virtio/devices 2>/dev/null | wc -l; }
have_virtio_devs() { [ "$(virtio_dev_count)" -ge "${1:-1}" ]; }
no_virtio_devs() { [ "$(virtio_dev_count)" -eq 0 ]; }

# the virtio device id of a virtio bus device (decimal)
virtio_id() { printf '%d' "$(cat "$1/device")"; }

no_blk_dev() { ! blk_dev; }

# gone PID: true when the process has exited
gone() { ! kill -0 "$1" 2>/dev/null; }

# first block device served over virtio (vda...)
blk_dev() {
	local b
	for b in /sys/block/vd*; do
		[ -e "$b" ] && { echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}

# who serves a virtio disk (/sys/block/vdX): bulkhead (virtio vendor 0x4b4c4842), qemu (its own
# virtio-blk-pci, 0x1af4) or unknown
disk_who() {
	case "$(cat "$1/device/vendor" 2>/dev/null)" in
	0x4b4c4842) echo bulkhead ;;
	0x1af4) echo qemu ;;
	*) echo unknown ;;
	esac
}

# disk_of WHO: the /dev node of the first virtio disk WHO serves
disk_of() {
	local b
	for b in /sys/block/vd*; do
		[ -e "$b" ] && [ "$(disk_who "$b")" = "$1" ] && { echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}
bulkhead_disk() { disk_of bulkhead; }
no_bulkhead_disk() { ! disk_of bulkhead; }

transport_pci() { ls "$DRV" 2>/dev/null | grep -E '^[0-9a-f]{4}:' | head -n 1; }

bhq_dmesg_check() {
	if dmesg | grep -qE 'Oops|BUG:|Call Trace|general protection|kernel BUG|WARNING: CPU'; then
		echo "BHQ-RESULT dmesg FAIL kernel oops/warning in dmesg"
		dmesg | grep -A 20 -E 'Oops|BUG:|WARNING: CPU|general protection' | head -n 60 | sed 's/^/  # /'
	else
		echo "BHQ-RESULT dmesg PASS no oops, no kernel warning"
	fi
}

# a virtio-vsock device bound to Linux's vmw_vsock_virtio_transport
vsock_dev() {
	local d
	for d in /sys/bus/virtio/devices/*; do
		[ -e "$d/driver" ] && [ "$(virtio_id "$d")" = 19 ] && [ "$(basename "$(readlink "$d/driver")")" = vmw_vsock_virtio_transport ] && return 0
	done
	return 1
}
