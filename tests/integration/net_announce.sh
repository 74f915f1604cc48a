#!/bin/sh
# net_announce.sh - a reused address works at once: attach announces it (gratuitous ARP, unsolicited NA), so the host and a peer that cached the previous holder's MAC switch without waiting.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq busybox nsenter timeout

S=$TMPDIR/state
net() {  # NAME [options]
	_n=$1; shift
	"$BERTH" net attach "$_n" --bridge berth0 --gateway 10.88.0.1/16 --gateway fd88::1/64 "$@"
}
mac_of() { nsenter --net="$1" ip -j link show eth0 | jq -r '.[0].address'; }  # NETNS-FILE
# What the host (on the bridge) and the peer have cached for addresses.
neigh_host() { ip -j neigh show "$1" dev berth0 | jq -r '.[0].lladdr'; }
neigh_peer() { nsenter --net="$S/netns/peer" ip -j neigh show "$1" dev eth0 | jq -r '.[0].lladdr'; }
cached() {  # host|peer ADDR...: one line per address
	_w=$1; shift
	for _x in "$@"; do "neigh_$_w" "$_x"; done
}
cached_all() { cached host "$@"; cached peer "$@"; }
pings() {  # host|peer V4 V6: both answer
	if [ "$1" = host ]; then
		busybox ping -c 1 -W 2 "$2" && busybox ping6 -c 1 -W 2 "$3"
	else
		nsenter --net="$S/netns/peer" busybox ping -c 1 -W 2 "$2" &&
			nsenter --net="$S/netns/peer" busybox ping6 -c 1 -W 2 "$3"
	fi
}
# An answer within two seconds, without waiting for anything first (a
# stale neighbour entry would take 5 s and more): one echo, no retry.
ping_once() { timeout 2 "$@" -c 1 -W 2 >/dev/null; }
ping_host() { ping_once busybox "$1" "$2"; }
ping_peer() { ping_once nsenter --net="$S/netns/peer" busybox "$1" "$2"; }

check "attach a peer container" net peer --state-dir "$S" --ip 10.88.0.6/16 --ip fd88::6/64

# round HOW NAME-A NAME-B V4 V6 MAC-A MAC-B: A holds the addresses and is
# pinged by the host and the peer; A goes away (HOW: unplug for a runtime's
# netns, detach for berth's own) and B comes with the same addresses and
# another MAC. Each round has MACs of its own: the first round's B stays on
# the bridge, and a second interface with its MAC would take the bridge's
# forwarding entry from under the other (the pings then fail for the test's
# sake, not berth's).
round() {
	_how=$1 _a=$2 _b=$3 _4=$4 _6=$5 A=$6 B=$7
	if [ "$_how" = unplug ]; then
		ip netns add "$_a"
		ip netns add "$_b"
		_oa="--netns /run/netns/$_a" _ob="--netns /run/netns/$_b" _pb=/run/netns/$_b
	else
		_oa="--state-dir $S" _ob="--state-dir $S" _pb=$S/netns/$_b
	fi
	check "$_how: attach $_a with $_4 and $_6" net "$_a" $_oa --ip "$_4/16" --ip "$_6/64" --mac $A
	check "$_how: the host reaches $_a over IPv4 and IPv6" pings host "$_4" "$_6"
	check "$_how: so does the peer" pings peer "$_4" "$_6"
	check_out "$_how: both cache $_a's MAC for both addresses" "$A
$A
$A
$A" cached_all "$_4" "$_6"
	if [ "$_how" = unplug ]; then
		check "$_how: $_a goes away" "$BERTH" net unplug "$_a"
	else
		check "$_how: $_a goes away" "$BERTH" net detach "$_a" --state-dir "$S"
	fi
	check "$_how: $_b comes with the same addresses and another MAC" \
		net "$_b" $_ob --ip "$_4/16" --ip "$_6/64" --mac $B
	# No sleep: the caches must have switched by the time attach returns.
	check_out "$_how: the host caches $_b's MAC for $_4 and $_6 at once" "$B
$B" cached host "$_4" "$_6"
	check_out "$_how: so does the peer" "$B
$B" cached peer "$_4" "$_6"
	check "$_how: the host pings $_4 within 2 s" ping_host ping "$_4"
	check "$_how: the host pings $_6 within 2 s" ping_host ping6 "$_6"
	check "$_how: the peer pings $_4 within 2 s" ping_peer ping "$_4"
	check "$_how: the peer pings $_6 within 2 s" ping_peer ping6 "$_6"
	check_out "$_how: and it is $_b that holds them" "$B" mac_of "$_pb"
}

round unplug cni-a cni-b 10.88.0.5 fd88::5 02:00:00:00:0a:01 02:00:00:00:0b:01
round detach own-a own-b 10.88.0.7 fd88::7 02:00:00:00:0a:02 02:00:00:00:0b:02
"$BERTH" net unplug cni-b
ip netns del cni-a
ip netns del cni-b
done_testing
