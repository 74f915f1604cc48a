#!/bin/sh
# net_extns.sh - berth net attach --netns: a namespace someone else owns (a CNI runtime's) gets the interface, the MAC, addresses and routes; check, unplug, refusals.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq busybox

NS=/run/netns/cni-1
MAC=02:42:0a:58:00:05
attach() {  # [extra options]
	"$BERTH" net attach cni-1 --netns "$NS" --bridge berth0 --gateway 10.88.0.1/16 \
		--gateway fd88::1/64 --ip 10.88.0.5/16 --ip fd88::5/64 --mac "$MAC" "$@"
}
chk() {  # [extra options]; prints stderr and the exit status
	"$BERTH" net check cni-1 --netns "$NS" --bridge berth0 --ip 10.88.0.5/16 --ip fd88::5/64 \
		--gateway 10.88.0.1 --gateway fd88::1 "$@" 2>&1
	echo "exit $?"
}
in_ns() { ip netns exec cni-1 "$@"; }

ip netns add cni-1
out=$(attach --show 2>&1)
check_out "attach into the runtime's netns prints the MACs and the host end" \
	"mac $MAC host bh-cni-1 $(ip -j link show bh-cni-1 | jq -r '.[0].address') bridge $(ip -j link show berth0 | jq -r '.[0].address')" \
	echo "$out"
check_out "eth0 in that netns has the requested MAC" "$MAC" \
	sh -c "ip -n cni-1 -j link show eth0 | jq -r '.[0].address'"
check_out "and its two addresses" "10.88.0.5/16
fd88::5/64" sh -c "ip -n cni-1 -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.scope == \"global\") | \"\(.local)/\(.prefixlen)\"'"
check_out "and the default routes via the gateways" "10.88.0.1 eth0
fd88::1 eth0" sh -c "ip -n cni-1 -j route show default | jq -r '.[0] | \"\(.gateway) \(.dev)\"';
	ip -n cni-1 -j -6 route show default | jq -r '.[0] | \"\(.gateway) \(.dev)\"'"
check_out "the host end is enslaved, up and labelled" "berth0 UP berth:cni-1/eth0" \
	sh -c "ip -j link show bh-cni-1 | jq -r '.[0] | \"\(.master) \(.operstate) \(.ifalias)\"'"
check "the host pings the container over IPv4" busybox ping -c 1 -W 2 10.88.0.5
check "the container pings the gateway over IPv6" in_ns busybox ping6 -c 1 -W 2 fd88::1
check_out "berth made no netns file of its own" "" sh -c "ls /var/lib/berth/netns 2>/dev/null"

snap() {
	ip -j link show bh-cni-1 | jq -c '.[0] | [.ifindex, .master, .operstate, .address]'
	ip -n cni-1 -j addr show | jq -c '[.[] | [.ifindex, .ifname, .address, [.addr_info[] | select(.scope == "global") | .local]]]'
	ip -n cni-1 -j route show | jq -c .
}
before=$(snap)
check "attaching again succeeds" attach
check_out "and changes nothing" "$before" snap
check_out "net check passes and prints nothing" "exit 0" chk

# A MAC changed by hand is put back; a deleted address is put back.
ip -n cni-1 link set eth0 address 02:42:0a:58:00:99
check_out "check names a wrong MAC" \
	"berth: container cni-1: eth0 has MAC 02:42:0a:58:00:99, not $MAC
exit 1" chk --mac "$MAC"
ip -n cni-1 addr del 10.88.0.5/16 dev eth0
check_out "check names a missing address" \
	"berth: container cni-1: address 10.88.0.5/16 is missing on eth0
exit 1" chk
check "attach converges" attach
check_out "the MAC is fixed" "$MAC" sh -c "ip -n cni-1 -j link show eth0 | jq -r '.[0].address'"
check_out "and the address is back: check passes" "exit 0" chk --mac "$MAC"
ip -n cni-1 route del default via 10.88.0.1
check_out "check names a missing default route" \
	"berth: container cni-1: the default route via 10.88.0.1 on eth0 is missing
exit 1" chk
check "attach converges again" attach
ip link set bh-cni-1 down
check_out "check names a host end that is down" \
	"berth: container cni-1: host interface bh-cni-1 is down
exit 1" chk
ip link set bh-cni-1 up
ip link add berth9 type bridge
ip link set bh-cni-1 master berth9
check_out "check names a host end on another bridge" \
	"berth: container cni-1: host interface bh-cni-1 is not a port of bridge berth0
exit 1" chk
ip link del berth9
check "attach converges again" attach
check_out "check passes" "exit 0" chk
ip -n cni-1 link del eth0
check_out "check names a missing veth" \
	"berth: container cni-1: host interface bh-cni-1 (of its eth0) is missing
exit 1" chk

check "attach makes it again" attach
check_out "unplug removes the host end" "" \
	sh -c "'$BERTH' net unplug cni-1 && ip link show bh-cni-1 2>/dev/null"
check_out "and eth0 with it, leaving the netns in place" "lo" \
	sh -c "ip -n cni-1 -j link show | jq -r '.[].ifname'"
check_out "check names a missing host end" \
	"berth: container cni-1: host interface bh-cni-1 (of its eth0) is missing
exit 1" chk
check "unplug of a missing one is fine" "$BERTH" net unplug cni-1
check_out "the netns is still there" "cni-1" sh -c "ip -j netns list | jq -r '.[].name'"

# Someone else's interface in the netns, or on the host, is not taken.
ip -n cni-1 link add eth0 type bridge
check_out "an eth0 berth did not make is refused, not deleted" \
	"berth: container cni-1: netns $NS already has an interface eth0 that berth did not make
exit 1" sh -c "$(printf '%s ' "$BERTH" net attach cni-1 --netns "$NS" --bridge berth0 --ip 10.88.0.5/16) 2>&1; echo exit \$?"
check_out "it is still the bridge it was" "bridge" sh -c "ip -n cni-1 -d -j link show eth0 | jq -r '.[0].linkinfo.info_kind'"
ip link add bh-other type bridge
check_out "unplug leaves a host-side name that is not berth's alone" \
	"berth: host interface bh-other for container other exists and was not created by berth: left alone
exit 1" sh -c "'$BERTH' net unplug other 2>&1; echo exit \$?"
check "which still exists" ip link show bh-other

# Paths that are not a network namespace.
refuse() {  # PATH
	"$BERTH" net attach cni-2 --netns "$1" --bridge berth0 --ip 10.88.0.6/16 2>&1
	echo "exit $?"
}
touch "$TMPDIR/file"
check_out "a plain file is refused" "berth: container cni-2: $TMPDIR/file is not a network namespace
exit 1" refuse "$TMPDIR/file"
check_out "another kind of namespace is refused" \
	"berth: container cni-2: /proc/self/ns/mnt is not a network namespace
exit 1" refuse /proc/self/ns/mnt
check_out "a missing path is refused" \
	"berth: container cni-2: open netns /run/netns/nope: No such file or directory (ENOENT)
exit 1" refuse /run/netns/nope
check_out "nothing was made for them" "" sh -c "ip link show bh-cni-2 2>/dev/null"
check_out "a bad MAC is a usage error" "2" \
	sh -c "'$BERTH' net attach cni-2 --netns '$NS' --bridge berth0 --ip 10.88.0.6/16 --mac 02:42:zz:00:00:01 2>/dev/null; echo \$?"
check_out "a multicast MAC is refused" \
	"berth: container cni-2: MAC 03:00:00:00:00:01 is multicast
exit 1" sh -c "'$BERTH' net attach cni-2 --netns '$NS' --bridge berth0 --ip 10.88.0.6/16 --mac 03:00:00:00:00:01 2>&1; echo exit \$?"

# /proc/PID/ns/net works as CNI_NETNS too.
ip netns exec cni-1 ip link del eth0
ip netns exec cni-1 sleep 30 &
pid=$!
sleep 0.2
check "attach through /proc/PID/ns/net" "$BERTH" net attach cni-3 --netns /proc/$pid/ns/net --bridge berth0 \
	--ip 10.88.0.7/16 --ifname net1
check_out "net1 is in that process's netns" "10.88.0.7" \
	sh -c "ip -n cni-1 -j addr show dev net1 | jq -r '.[0].addr_info[] | select(.family == \"inet\") | .local'"
check "check passes through that path" "$BERTH" net check cni-3 --netns /proc/$pid/ns/net --bridge berth0 \
	--ip 10.88.0.7/16 --ifname net1
check "unplug it" "$BERTH" net unplug cni-3 --ifname net1
kill $pid
ip netns del cni-1
ip link del bh-other
done_testing
