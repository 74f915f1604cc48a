#!/bin/sh
# net_spare.sh - attach through prepared spare namespaces (net_prepare): same result as a cold attach, no leftovers.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq nsenter busybox
SP=$BERTH_TOP/build/test/helpers/net_spare
[ -x "$SP" ] || skip_all "$SP is not built (make test-build)"

S=$TMPDIR/state
in_ns() { _n=$1; shift; nsenter --net="$S/netns/$_n" "$@"; }
gone() { for _i in $(seq 1 30); do [ -z "$(eval "$1")" ] && return 0; sleep 0.1; done; return 1; }
healthy() {  # NAME V4 V6
	_a=$(in_ns "$1" ip -j addr show dev eth0 | jq -r '[.[0].addr_info[] | select(.scope == "global") | .local] | join(" ")')
	[ "$_a" = "$2 $3" ] || { echo "addresses: $_a"; return 1; }
	_r=$(in_ns "$1" ip -j route show default | jq -r '.[0].gateway')
	[ "$_r" = 10.88.0.1 ] || { echo "route: $_r"; return 1; }
	_r=$(in_ns "$1" ip -j -6 route show default | jq -r '.[0].gateway')
	[ "$_r" = fd88::1 ] || { echo "route6: $_r"; return 1; }
	_h=$(ip -j link show "bh-$1" | jq -r '.[0] | "\(.master) \(.operstate) \(.ifalias) \(.mtu)"')
	[ "$_h" = "berth0 UP berth:$1/eth0 1500" ] || { echo "host end: $_h"; return 1; }
	in_ns "$1" busybox ping -c 1 -W 2 10.88.0.1 >/dev/null || { echo "no IPv4 ping"; return 1; }
	in_ns "$1" busybox ping6 -c 1 -W 2 fd88::1 >/dev/null || { echo "no IPv6 ping"; return 1; }
}

check "attach a (cold, makes the bridge)" "$BERTH" net attach a --state-dir "$S" --bridge berth0 \
	--gateway 10.88.0.1/16 --gateway fd88::1/64 --ip 10.88.0.5/16 --ip fd88::5/64
check_out "b and c attach from spares (two kept ready)" "spares 2
spares 2" "$SP" "$S" berth0 10.88.0.1 fd88::1 b=10.88.0.6/16,fd88::6/64 c=10.88.0.7/16,fd88::7/64
check "b is healthy" healthy b 10.88.0.6 fd88::6
check "c is healthy" healthy c 10.88.0.7 fd88::7
check "b pings c over IPv4" in_ns b busybox ping -c 1 -W 2 10.88.0.7
check "c pings a over IPv6" in_ns c busybox ping6 -c 1 -W 2 fd88::5
check_out "host ends carry no IPv6 address" "" \
	sh -c "ip -j addr show | jq -r '.[] | select(.ifname | startswith(\"bh-\")) | .addr_info[].local'"
check "the spares left die with the process: no bp* link remains" \
	gone "ip -j link show | jq -r '.[].ifname' | grep '^bp'"
check_out "exactly a, b and c are on the bridge" "bh-a
bh-b
bh-c" sh -c "ip -j link show master berth0 | jq -r '.[].ifname' | sort"

before=$(ip -j link show bh-b | jq -r '.[0].ifindex')
check "attach b again through the CLI" "$BERTH" net attach b --state-dir "$S" --bridge berth0 \
	--gateway 10.88.0.1/16 --gateway fd88::1/64 --ip 10.88.0.6/16 --ip fd88::6/64
check_out "is a no-op: same host end" "$before" sh -c "ip -j link show bh-b | jq -r '.[0].ifindex'"

# A spare whose rename meets a stale host end of the same name: repaired.
ip link add bh-d type veth peer name d-stale
ip link set bh-d alias "berth:d/eth0"
check_out "d attaches from a spare over a stale bh-d" "spares 2" \
	"$SP" "$S" berth0 10.88.0.1 fd88::1 d=10.88.0.8/16,fd88::8/64
check "d is healthy" healthy d 10.88.0.8 fd88::8
check_out "the stale pair is gone" "" sh -c "ip -j link show | jq -r '.[].ifname' | grep -x d-stale"

# A spare made for another bridge serves too: its host end moves.
check "make bridge berth9" "$BERTH" net attach z --state-dir "$S" --bridge berth9 \
	--gateway 10.99.0.1/24 --ip 10.99.0.9/24
check_out "e attaches to berth0 from a spare made for berth9" "spares 2" \
	env SPARE_BRIDGE=berth9 "$SP" "$S" berth0 10.88.0.1 fd88::1 e=10.88.0.10/16,fd88::10/64
check "e is healthy (its host end on berth0)" healthy e 10.88.0.10 fd88::10
check "no spare is left on berth9" gone "ip -j link show master berth9 | jq -r '.[].ifname' | grep '^bp'"

for c in a b c d e z; do
	check "detach $c" "$BERTH" net detach "$c" --state-dir "$S"
done
check "all host ends go" gone "ip -j link show | jq -r '.[].ifname' | grep -E '^b[hp]'"
check_out "no netns file is left" "" ls "$S/netns"
done_testing
