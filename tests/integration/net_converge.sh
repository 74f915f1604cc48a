#!/bin/sh
# net_converge.sh - berth net attach converges from half-done and stale states (restart, kill -9, manual damage).
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq nsenter busybox unshare od awk

S=$TMPDIR/state
attach() {  # NAME V4 V6 [options]
	_n=$1 _4=$2 _6=$3; shift 3
	"$BERTH" net attach "$_n" --state-dir "$S" --bridge berth0 --gateway 10.88.0.1/16 \
		--gateway fd88::1/64 --ip "$_4/16" --ip "$_6/64" "$@"
}
in_ns() { _n=$1; shift; nsenter --net="$S/netns/$_n" "$@"; }
gone() { for _i in $(seq 1 30); do ip link show "$1" >/dev/null 2>&1 || return 0; sleep 0.1; done; return 1; }
# The whole picture of one container, as a user would check it.
healthy() {  # NAME V4 V6
	_a=$(in_ns "$1" ip -j addr show dev eth0 | jq -r '[.[0].addr_info[] | select(.scope == "global") | .local] | join(" ")')
	[ "$_a" = "$2 $3" ] || { echo "addresses: $_a"; return 1; }
	_r=$(in_ns "$1" ip -j route show default | jq -r '.[0].gateway')
	[ "$_r" = 10.88.0.1 ] || { echo "route: $_r"; return 1; }
	_h=$(ip -j link show master berth0 | jq -r "[.[] | select(.ifalias == \"berth:$1/eth0\") | .operstate] | join(\" \")")
	[ "$_h" = UP ] || { echo "host ends: '$_h'"; return 1; }
	in_ns "$1" busybox ping -c 1 -W 2 10.88.0.1 >/dev/null || { echo "no IPv4 ping"; return 1; }
	in_ns "$1" busybox ping6 -c 1 -W 2 fd88::1 >/dev/null || { echo "no IPv6 ping"; return 1; }
}

# 1. A netns file that exists but is not mounted (killed between creat and mount).
mkdir -p "$S/netns"
: >"$S/netns/web"
check "attach over an unmounted netns file succeeds" attach web 10.88.0.5 fd88::5
check "and the container is healthy" healthy web 10.88.0.5 fd88::5

# 2. A stale host end whose peer lives in another (older) netns.
unshare --net sleep 300 &
holder=$!
for i in $(seq 1 50); do   # until the holder is in its own netns
	[ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.1
done
ip link add bh-db type veth peer name eth0 netns "$holder"
ip link set bh-db alias "berth:db/eth0"
check "attach db with a stale bh-db whose peer is elsewhere" attach db 10.88.0.6 fd88::6
check "db is healthy" healthy db 10.88.0.6 fd88::6
check_out "the old peer is gone from the other netns" "lo" \
	sh -c "nsenter --net=/proc/$holder/ns/net ip -j link show | jq -r '.[].ifname'"

# 3. The same without the alias (killed between create and labelling).
check "detach db" "$BERTH" net detach db --state-dir "$S"
check "bh-db goes" gone bh-db
ip link add bh-db type veth peer name eth0 netns "$holder"
check "attach db with an unlabelled stale bh-db" attach db 10.88.0.6 fd88::6
check "db is healthy" healthy db 10.88.0.6 fd88::6
kill "$holder"; wait "$holder" 2>/dev/null

# 4. The netns holds an eth0 that is not the peer of our host end.
check "detach db" "$BERTH" net detach db --state-dir "$S"
check "bh-db goes" gone bh-db
: >"$S/netns/db"
unshare --net sh -c "mount --bind /proc/self/ns/net '$S/netns/db'" 2>/dev/null ||
	rm -f "$S/netns/db"
if [ -e "$S/netns/db" ] && grep -q " $S/netns/db " /proc/self/mountinfo; then
	in_ns db ip link add eth0 type veth peer name other
	check "attach db whose netns holds a foreign eth0" attach db 10.88.0.6 fd88::6
	check "db is healthy" healthy db 10.88.0.6 fd88::6
	check_out "the foreign pair is gone" "eth0
lo" sh -c "nsenter --net='$S/netns/db' ip -j link show | jq -r '.[].ifname' | sort"
else
	skip "attach db whose netns holds a foreign eth0" "cannot bind-mount a netns here"
fi

# 5. Damage done by hand after a good attach: addresses, route, enslavement, link state.
check "damage: delete web's IPv4 default route" in_ns web ip route del default
check "damage: delete web's IPv6 default route" in_ns web ip -6 route del default
check "damage: flush web's global addresses" in_ns web ip addr flush dev eth0 scope global
check "damage: take bh-web off the bridge and down" \
	sh -c "ip link set bh-web nomaster && ip link set bh-web down"
check "attach web after its addresses, routes and enslavement were removed" attach web 10.88.0.5 fd88::5
check "web is healthy again" healthy web 10.88.0.5 fd88::5

# 5a. The container's address changed (IPAM gave another): the old one goes.
check "attach web with a new IPv4 address and MTU 1400" attach web 10.88.0.55 fd88::5 --mtu 1400
check_out "web has exactly the new addresses" "10.88.0.55 fd88::5" \
	sh -c "nsenter --net='$S/netns/web' ip -j addr show dev eth0 | jq -r '[.[0].addr_info[] | select(.scope == \"global\") | .local] | join(\" \")'"
check_out "and MTU 1400 on both ends" "1400 1400" \
	sh -c "echo \$(nsenter --net='$S/netns/web' ip -j link show eth0 | jq -r '.[0].mtu') \$(ip -j link show bh-web | jq -r '.[0].mtu')"
check "attach web back to its old address" attach web 10.88.0.5 fd88::5
check "web is healthy" healthy web 10.88.0.5 fd88::5

# 5b. Two attaches racing on one container can stack two mounts on the file.
check "stack a second mount on web's netns file" mount --bind "$S/netns/web" "$S/netns/web"
check "attach web over the stacked mounts still works" attach web 10.88.0.5 fd88::5
check "detach web removes both mounts and the file" "$BERTH" net detach web --state-dir "$S"
check "web's netns file is gone" sh -c "[ ! -e '$S/netns/web' ] && ! grep -q ' $S/netns/web ' /proc/self/mountinfo"
check "bh-web goes" gone bh-web
check "attach web again" attach web 10.88.0.5 fd88::5
check "web is healthy" healthy web 10.88.0.5 fd88::5

# 6. Killed at every step: strace injects SIGKILL at the Nth call of each
# syscall attach makes (sendto = one netlink request), then a plain attach
# must converge. Then a few random kill -9 moments on top.
round() {  # LABEL: after the interrupted attach, converge and clean up
	if ! _o=$(attach kill 10.88.0.20 fd88::20 2>&1); then
		why="$1: attach failed: $_o"; return 1
	fi
	if ! _o=$(healthy kill 10.88.0.20 fd88::20 2>&1); then
		why="$1: $_o"; return 1
	fi
	"$BERTH" net detach kill --state-dir "$S" && gone bh-kill || { why="$1: detach"; return 1; }
}
rounds=0 ok_rounds=0 why=
if command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null; then
	for spec in unshare:1 mount:1 setns:1 setns:2 setns:3 sendto:1 sendto:2 sendto:3 sendto:4 \
		    sendto:5 sendto:6 sendto:7; do
		rounds=$((rounds + 1))
		ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace="${spec%:*}" \
			-e inject="${spec%:*}:signal=KILL:when=${spec#*:}" \
			"$BERTH" net attach kill --state-dir "$S" --bridge berth0 --gateway 10.88.0.1/16 \
			--gateway fd88::1/64 --ip 10.88.0.20/16 --ip fd88::20/64 >/dev/null 2>&1
		round "killed at $spec" || break
		ok_rounds=$((ok_rounds + 1))
	done
	if [ "$ok_rounds" = "$rounds" ]; then
		ok "attach killed at each of $rounds syscalls (unshare, mount, setns, every netlink send) converges on the next attach"
	else
		not_ok "attach killed at each step converges" "$why"
	fi
else
	skip "attach killed at each syscall converges" "strace cannot trace here"
fi
rounds=0 ok_rounds=0 why=
for i in $(seq 1 8); do
	rounds=$((rounds + 1))
	d=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
	# berth itself in the background (not a subshell), so the kill hits it.
	"$BERTH" net attach kill --state-dir "$S" --bridge berth0 --gateway 10.88.0.1/16 \
		--gateway fd88::1/64 --ip 10.88.0.20/16 --ip fd88::20/64 >/dev/null 2>&1 &
	p=$!
	sleep "$(awk "BEGIN { print $d / 8000 }")"
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	round "random round $i (kill after $d/8 ms)" || break
	ok_rounds=$((ok_rounds + 1))
done
if [ "$ok_rounds" = "$rounds" ]; then
	ok "attach killed with SIGKILL at $rounds random moments converges on the next attach"
else
	not_ok "attach killed with SIGKILL at random moments converges" "$why"
fi
check_out "after all that, exactly web's and db's host ends are on the bridge" "bh-db
bh-web" sh -c "ip -j link show master berth0 | jq -r '.[].ifname' | sort"
done_testing
