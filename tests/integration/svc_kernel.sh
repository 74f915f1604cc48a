# svc_kernel.sh - services' virtual IPs in the kernel (net/svc, issue 23 item 3)
# as a client sees them, driven through tests/helpers/svc_drive: three backends
# behind a VIP share 300 connections, round-robin evenly; a removed backend gets
# no new connection while an established one keeps its backend; no backend
# refuses at once (TCP reset, ICMP for UDP); IPv6 VIP; client-ip affinity (and
# its survivors when a backend goes); a published service port on the host
# address; hairpin; 1000 services leave svc_pre at one lookup per family; the
# table rebuilt after `nft flush ruleset` carries the services.
. "$BERTH_TOP/tests/lib.sh"
need_cmd python3 ip nft jq

DRIVE=$BERTH_TOP/build/test/helpers/svc_drive
PEER="python3 $BERTH_TOP/tests/helpers/svc_peer.py"
[ -x "$DRIVE" ] || skip_all "build/test/helpers/svc_drive is not built (make test-build)"

echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/ipv6/conf/all/forwarding
ip link set lo up
ip link add br0 type bridge
ip addr add 10.88.0.1/24 dev br0
ip addr add fd88::1/64 dev br0 nodad
ip link set br0 up
# Traffic from a container to a VIP leaves through the bridge it came from:
# the kernel would answer with ICMP redirects, which also spend the per-host
# ICMP tokens that the rejection of an empty service's UDP needs (a client
# would wait for its timeout instead). berth's bridges should have them off.
echo 0 >/proc/sys/net/ipv4/conf/all/send_redirects
echo 0 >/proc/sys/net/ipv4/conf/br0/send_redirects
# VIPs are routed towards the bridge; DNAT picks the real destination
ip route add 10.96.0.0/16 dev br0
ip route add fd96::/64 dev br0

pids=
ctr() {  # ctr NAME INDEX: a namespace on br0 at 10.88.0.INDEX, fd88::INDEX
	ip netns add "$1"
	ip link add "v$1" type veth peer name eth0 netns "$1"
	ip link set "v$1" master br0 up
	ip link set "v$1" type bridge_slave hairpin on   # as net attach does (br_netfilter)
	ip -n "$1" link set lo up
	ip -n "$1" addr add "10.88.0.$2/24" dev eth0
	ip -n "$1" addr add "fd88::$2/64" dev eth0 nodad
	ip -n "$1" link set eth0 up
	ip -n "$1" route add default via 10.88.0.1
	ip -n "$1" -6 route add default via fd88::1
}
for i in 1 2 3; do
	ctr "b$i" "1$i"
	ip netns exec "b$i" $PEER serve "b$i" &
	pids="$pids $!"
done
ctr cl 20
# the world, behind a veth, for the published port
ip netns add world
ip link add wv0 type veth peer name wv1 netns world
ip addr add 192.0.2.1/24 dev wv0
ip link set wv0 up
ip -n world addr add 192.0.2.2/24 dev wv1
ip -n world link set wv1 up
ip -n world route add default via 192.0.2.1

mkfifo "$TMPDIR/in" "$TMPDIR/out"
"$DRIVE" <"$TMPDIR/in" >"$TMPDIR/out" 2>"$TMPDIR/drive.err" &
dpid=$!
exec 3>"$TMPDIR/in" 4<"$TMPDIR/out"
cleanup() { exec 3>&-; kill $pids 2>/dev/null; wait $dpid 2>/dev/null; }
trap cleanup EXIT
drive() {
	echo "$*" >&3
	read -r _r <&4
	[ "$_r" = ok ] || { echo "svc_drive: $*: $_r"; return 1; }
}
in_cl() { ip netns exec cl "$@"; }
# every server answers before the first check
for i in 1 2 3; do
	for _ in $(seq 50); do
		[ "$(in_cl $PEER tcp 10.88.0.1$i 8080 1)" = "b$i 1" ] && break
		sleep 0.1
	done
done

BE="be=10.88.0.11 be=10.88.0.12 be=10.88.0.13 be=fd88::11 be=fd88::12 be=fd88::13"
WEB="web vip=10.96.0.10 vip=fd96::10 port=80:8080/tcp port=53:5353/udp pub=8080:80/tcp"
check "the network is set" drive net br0 10.88.0.0/24 fd88::/64
check "the table is created" drive sync
check "a service with three backends per family is set" drive set $WEB $BE

# every backend at least 20 % of 300
share_ok() {  # share_ok FILE MIN NAMES...: each NAME at least MIN, nothing else
	_f=$1 _min=$2; shift 2
	[ "$(wc -l <"$_f")" = "$#" ] || return 1
	for _n in "$@"; do
		awk -v n="$_n" -v m="$_min" '$1 == n && $2 >= m { f = 1 } END { exit !f }' "$_f" || return 1
	done
}
in_cl $PEER tcp 10.96.0.10 80 300 >"$TMPDIR/r1"
if share_ok "$TMPDIR/r1" 60 b1 b2 b3; then ok "300 connections to the VIP reach all three backends, each at least 20 %"
else not_ok "300 connections to the VIP reach all three backends, each at least 20 %" "$(cat "$TMPDIR/r1")"; fi

drive set $WEB $BE pick=rr
in_cl $PEER tcp 10.96.0.10 80 300 >"$TMPDIR/r2"
if share_ok "$TMPDIR/r2" 99 b1 b2 b3; then ok "round-robin: 300 connections split 100 / 100 / 100"
else not_ok "round-robin: 300 connections split 100 / 100 / 100" "$(cat "$TMPDIR/r2")"; fi

in_cl $PEER tcp fd96::10 80 60 >"$TMPDIR/r6"
if share_ok "$TMPDIR/r6" 19 b1 b2 b3; then ok "IPv6 VIP: 60 connections reach all three backends"
else not_ok "IPv6 VIP: 60 connections reach all three backends" "$(cat "$TMPDIR/r6")"; fi

check_out "UDP through the VIP gets a backend's answer" "b" \
	sh -c "ip netns exec cl $PEER udp 10.96.0.10 53 | cut -c1"

# an established connection keeps its backend; the removed one gets no new one
in_cl $PEER hold 10.96.0.10 80 "$TMPDIR/go" >"$TMPDIR/hold" &
hold=$!
for _ in $(seq 50); do [ -s "$TMPDIR/hold" ] && break; sleep 0.1; done
first=$(head -1 "$TMPDIR/hold")
rest=$(echo "be=10.88.0.11 be=10.88.0.12 be=10.88.0.13" | tr ' ' '\n' | grep -v "1${first#b}\$" | tr '\n' ' ')
drive set $WEB $rest be=fd88::11 pick=rr
touch "$TMPDIR/go"
wait $hold
check_out "an established connection keeps its backend ($first) when it leaves the service" \
	"$first
$first" cat "$TMPDIR/hold"
in_cl $PEER tcp 10.96.0.10 80 60 >"$TMPDIR/r3"
if ! grep -q "^$first " "$TMPDIR/r3" && [ "$(awk '{ s += $2 } END { print s }' "$TMPDIR/r3")" = 60 ] &&
   ! grep -qv '^b' "$TMPDIR/r3"; then
	ok "the removed backend gets none of 60 new connections, and none fails"
else
	not_ok "the removed backend gets none of 60 new connections, and none fails" "$(cat "$TMPDIR/r3")"
fi

# no ready backend: refused at once
drive set $WEB
t0=$(date +%s%N)
check_out "no backend: TCP is refused (reset)" "refused 3" in_cl $PEER tcp 10.96.0.10 80 3
t1=$(date +%s%N)
check "... at once (3 attempts in under a second)" test $(( (t1 - t0) / 1000000 )) -lt 1000
check_out "no backend: UDP gets ICMP port unreachable" "refused" in_cl $PEER udp 10.96.0.10 53
check_out "no backend: IPv6 TCP is refused" "refused 1" in_cl $PEER tcp fd96::10 80 1
check_out "no backend: from the host too" "refused 1" $PEER tcp 10.96.0.10 80 1

# affinity: one client keeps one backend; when it goes, the client picks again
# and sticks; a client whose backend survives keeps it
drive set $WEB $BE aff=60
in_cl $PEER tcp 10.96.0.10 80 30 >"$TMPDIR/a1"
check "affinity: 30 connections of one client reach one backend" test "$(wc -l <"$TMPDIR/a1")" = 1
mine=$(cut -d' ' -f1 "$TMPDIR/a1")
$PEER tcp 10.96.0.10 80 10 >"$TMPDIR/h1"   # the host, another client
check "affinity: the host (another client) sticks to one backend too" test "$(wc -l <"$TMPDIR/h1")" = 1
# The host must have another backend than the client, for the check that a
# client whose backend stays keeps it: while it has the same, its entry is
# dropped from the map and it picks again (each pick: 2 in 3 another one).
hsrc=$(ip -j route get 10.96.0.10 | jq -r '.[0].prefsrc')
for _ in $(seq 12); do
	[ "$(cut -d' ' -f1 "$TMPDIR/h1")" != "$mine" ] && break
	nft delete element inet berth svca-1-4 "{ $hsrc }"
	$PEER tcp 10.96.0.10 80 10 >"$TMPDIR/h1"
done
other=$(cut -d' ' -f1 "$TMPDIR/h1")
rest=$(echo "be=10.88.0.11 be=10.88.0.12 be=10.88.0.13" | tr ' ' '\n' | grep -v "1${mine#b}\$" | tr '\n' ' ')
drive set $WEB $rest be=fd88::11 aff=60
in_cl $PEER tcp 10.96.0.10 80 20 >"$TMPDIR/a2"
if [ "$(wc -l <"$TMPDIR/a2")" = 1 ] && ! grep -q "^$mine " "$TMPDIR/a2"; then
	ok "affinity: its backend removed, the client moves to one other backend"
else not_ok "affinity: its backend removed, the client moves to one other backend" "$(cat "$TMPDIR/a2")"; fi
check "affinity: the host picked another backend than the client ($other, $mine)" \
	test "$other" != "$mine"
check_out "affinity: a client whose backend stays keeps it ($other)" "$other 10" \
	$PEER tcp 10.96.0.10 80 10
check "nft list ruleset prints the table, the affinity's record chain included" \
	sh -c "nft list ruleset | grep -q 'update @svca-1-4 { ip saddr timeout 1m : ip daddr }'"
check "affinity: the removed backend's entries are gone from the map" \
	sh -c "! nft list map inet berth svca-1-4 | grep -q '10.88.0.1${mine#b}'"

# published on the host's address: from the world
drive set $WEB $BE
check_out "the published port 8080 on the host reaches the service from outside" "b" \
	sh -c "ip netns exec world $PEER tcp 192.0.2.1 8080 1 | cut -c1"
ip netns exec world $PEER tcp 192.0.2.1 8080 60 >"$TMPDIR/p1"
if share_ok "$TMPDIR/p1" 5 b1 b2 b3; then ok "... and spreads over the backends"
else not_ok "... and spreads over the backends" "$(cat "$TMPDIR/p1")"; fi

# hairpin: a backend reaching the VIP reaches every backend, itself included
ip netns exec b1 $PEER tcp 10.96.0.10 80 60 >"$TMPDIR/hp"
if share_ok "$TMPDIR/hp" 5 b1 b2 b3; then ok "hairpin: b1 -> VIP -> b1 (and the others) works"
else not_ok "hairpin: b1 -> VIP -> b1 (and the others) works" "$(cat "$TMPDIR/hp")"; fi

# the per-packet path does not grow with the number of services
rules() { nft -a list chain inet berth svc_pre | grep -c 'handle' ; }
before=$(rules)
check "1000 more services are set" drive bulk 1000
check_out "svc_pre has the same rules with 1002 services" "$before" rules
check_out "... one vmap lookup per family" "2" sh -c "nft list chain inet berth svc_pre | grep -c vmap"
check "the service map holds them all" \
	test "$(nft list map inet berth svc4 | grep -o 'goto svc-' | wc -l)" -ge 1001
check_out "VIP still works among 1002 services" "b" sh -c "ip netns exec cl $PEER tcp 10.96.0.10 80 1 | cut -c1"

# rebuilt from memory after someone flushed the ruleset
nft flush ruleset
check "after nft flush ruleset the table is recreated with the services" drive sync
check_out "... and the VIP works again" "b" sh -c "ip netns exec cl $PEER tcp 10.96.0.10 80 1 | cut -c1"

check "the service is removed" drive del web
check "its chains are gone" sh -c "! nft list chain inet berth svc-1-0-4 2>/dev/null"
check "its VIP no longer reaches a backend" sh -c "! ip netns exec cl $PEER tcp 10.96.0.10 80 1 | grep -q '^b'"
done_testing
