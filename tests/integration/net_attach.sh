#!/bin/sh
# net_attach.sh - berth net attach/detach: addresses, routes, pings over IPv4 and IPv6, repeat = no-op, clean detach.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq nsenter busybox

S=$TMPDIR/state
attach() {  # NAME V4 V6 [extra options]
	_n=$1 _4=$2 _6=$3; shift 3
	"$BERTH" net attach "$_n" --state-dir "$S" --bridge berth0 \
		--gateway 10.88.0.1/16 --gateway fd88::1/64 --ip "$_4/16" --ip "$_6/64" "$@"
}
in_ns() { _n=$1; shift; nsenter --net="$S/netns/$_n" "$@"; }
global_addrs() {
	in_ns "$1" ip -j addr show dev eth0 |
		jq -r '.[0].addr_info[] | select(.scope == "global") | "\(.local)/\(.prefixlen)"'
}
# The kernel destroys the pair asynchronously once the netns is gone.
gone() { for _i in $(seq 1 30); do ip link show "$1" >/dev/null 2>&1 || return 0; sleep 0.1; done; return 1; }

check "attach web (dual stack)" attach web 10.88.0.5 fd88::5
check "attach db (dual stack, MTU 1400)" attach db 10.88.0.6 fd88::6 --mtu 1400

check "the netns is a bind-mounted file under state_dir/netns" \
	sh -c "[ -f '$S/netns/web' ] && grep -q ' $S/netns/web ' /proc/self/mountinfo"
check_out "eth0 in web's netns has its two addresses" "10.88.0.5/16
fd88::5/64" global_addrs web
check_out "eth0 is up" "UP" sh -c "nsenter --net='$S/netns/web' ip -j link show eth0 | jq -r '.[0].operstate'"
check_out "lo is up inside" "true" \
	sh -c "nsenter --net='$S/netns/web' ip -j link show lo | jq -r '.[0].flags | index(\"UP\") != null'"
check_out "IPv4 default route via the gateway on eth0" "10.88.0.1 eth0" \
	sh -c "nsenter --net='$S/netns/web' ip -j route show default | jq -r '.[0] | \"\(.gateway) \(.dev)\"'"
check_out "IPv6 default route via the gateway on eth0" "fd88::1 eth0" \
	sh -c "nsenter --net='$S/netns/web' ip -j -6 route show default | jq -r '.[0] | \"\(.gateway) \(.dev)\"'"
check_out "MTU of db's eth0 is 1400" "1400" \
	sh -c "nsenter --net='$S/netns/db' ip -j link show eth0 | jq -r '.[0].mtu'"
check_out "host end bh-web is enslaved to berth0 and up" "berth0 UP" \
	sh -c "ip -j link show bh-web | jq -r '.[0] | \"\(.master) \(.operstate)\"'"
check_out "host end carries berth's alias" "berth:web/eth0" \
	sh -c "ip -j link show bh-web | jq -r '.[0].ifalias'"
check_out "the bridge holds the gateway addresses" "10.88.0.1/16
fd88::1/64" sh -c "ip -j addr show dev berth0 | jq -r '.[0].addr_info[] | select(.scope == \"global\") | \"\(.local)/\(.prefixlen)\"'"
check_out "IPv4 forwarding is on" "1" cat /proc/sys/net/ipv4/ip_forward
check_out "IPv6 forwarding is on" "1" cat /proc/sys/net/ipv6/conf/all/forwarding

check "web pings db over IPv4" in_ns web busybox ping -c 1 -W 2 10.88.0.6
check "web pings db over IPv6" in_ns web busybox ping6 -c 1 -W 2 fd88::6
check "web pings the gateway over IPv4" in_ns web busybox ping -c 1 -W 2 10.88.0.1
check "web pings the gateway over IPv6" in_ns web busybox ping6 -c 1 -W 2 fd88::1
check "db pings web over IPv4" in_ns db busybox ping -c 1 -W 2 10.88.0.5
check "the host pings web over IPv6" busybox ping6 -c 1 -W 2 fd88::5

# Repeating an attach changes nothing.
snap() {
	ip -j link show bh-web | jq -c '.[0] | [.ifindex, .master, .operstate]'
	in_ns web ip -j addr show | jq -c '[.[] | [.ifindex, .ifname, .operstate, [.addr_info[] | select(.scope == "global") | .local]]]'
	in_ns web ip -j route show | jq -c .
	in_ns web ip -j -6 route show default | jq -c .
}
before=$(snap)
check "attach web again succeeds" attach web 10.88.0.5 fd88::5
check_out "and leaves links, addresses and routes exactly as they were" "$before" snap

# An IPv4-only container on the dual-stack bridge: one default route, IPv4.
check "attach an IPv4-only container" "$BERTH" net attach v4only --state-dir "$S" --bridge berth0 \
	--gateway 10.88.0.1/16 --gateway fd88::1/64 --ip 10.88.0.9/16
check_out "it has the IPv4 default route and no IPv6 one" "10.88.0.1" sh -c "nsenter --net='$S/netns/v4only' ip -j route show default | jq -r '.[0].gateway'; nsenter --net='$S/netns/v4only' ip -j -6 route show default | jq -r '.[].gateway'"
check "detach it" "$BERTH" net detach v4only --state-dir "$S"
check "bh-v4only disappears" gone bh-v4only

# A second interface: eth1 with the hashed host-side name.
check "attach web's eth1 on a second bridge" \
	"$BERTH" net attach web --state-dir "$S" --bridge berth1 --gateway 10.99.0.1/24 --ip 10.99.0.7/24 --ifname eth1
h1=$(ip -j link show master berth1 | jq -r '.[0].ifname')
check_out "its host end is bh1-web + 5 hex digits" "ok" sh -c "echo '$h1' | grep -qE '^bh1-web[0-9a-f]{5}$' && echo ok"
check_out "eth1 holds 10.99.0.7/24" "10.99.0.7/24" \
	sh -c "nsenter --net='$S/netns/web' ip -j addr show dev eth1 | jq -r '.[0].addr_info[] | select(.family == \"inet\") | \"\(.local)/\(.prefixlen)\"'"

# Detach removes everything that attach made.
check "detach web" "$BERTH" net detach web --state-dir "$S"
check "web's netns file is gone" sh -c "[ ! -e '$S/netns/web' ]"
check "web's netns is no longer mounted" sh -c "! grep -q ' $S/netns/web ' /proc/self/mountinfo"
check "bh-web disappears (destroyed with the netns)" gone bh-web
check "web's eth1 host end disappears too" gone "$h1"
check_out "no address of web remains anywhere" "" \
	sh -c "ip -j addr show | jq -r '.[].addr_info[].local' | grep -E '^(10\\.88\\.0\\.5|fd88::5|10\\.99\\.0\\.7)$'"
check_out "db still answers" "ok" sh -c "nsenter --net='$S/netns/db' busybox ping -c 1 -W 2 10.88.0.1 >/dev/null && echo ok"
check "detach of a container that is not attached is fine" "$BERTH" net detach web --state-dir "$S"
check "detach db" "$BERTH" net detach db --state-dir "$S"
check "bh-db disappears" gone bh-db
check_out "only the bridges are left" "berth0
berth1
lo" sh -c "ip -j link show | jq -r '.[].ifname' | sort"
check "bridge-delete berth0" "$BERTH" net bridge-delete berth0
check "bridge-delete berth1" "$BERTH" net bridge-delete berth1
check "bridge-delete of a missing bridge is fine" "$BERTH" net bridge-delete berth1
check_out "no link but lo remains" "lo" sh -c "ip -j link show | jq -r '.[].ifname'"
done_testing
