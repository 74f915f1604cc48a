# nat_ports.sh - published ports and masquerade as a user sees them: TCP and UDP
# through a published port from the world (a namespace joined to the host by a
# veth), from the host, via 127.0.0.1, hairpin from a container, IPv6;
# masquerade seen from the world; counters in `berth ports` and metrics;
# unpublishing keeps an established connection to another port; a port a host
# process holds is a clear error; `nft flush ruleset` is repaired; the table
# goes at a clean stop and stays with --keep-network.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq python3 nsenter ip nft

PEER="python3 $BERTH_TOP/tests/helpers/nat_peer.py"
C=$TMPDIR/etc
S=$TMPDIR/state
mkdir -p "$C/containers.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run
log_level = debug

[network default]
bridge     = berth0
subnet     = 10.88.0.0/16
subnet6    = fd88::/64
masquerade = yes

[dns]
domain   = berth.internal
upstream = 127.0.0.1
host     = no
INI
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = 8080:80/tcp, 5353:53/udp, 127.0.0.1:9000:9000/tcp, 8443:443/tcp
INI
cat >"$C/containers.d/api.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = 8081:80/tcp
INI

# the world: a namespace behind a veth, 192.0.2.0/24 and 2001:db8:1::/64, with
# no route to the containers' subnets (only masquerade lets them talk to it)
ip netns add world
ip link add wv0 type veth peer name wv1
ip link set wv1 netns world
ip addr add 192.0.2.1/24 dev wv0
ip addr add 2001:db8:1::1/64 dev wv0 nodad
ip link set wv0 up
ip -n world addr add 192.0.2.2/24 dev wv1
ip -n world addr add 2001:db8:1::2/64 dev wv1 nodad
ip -n world link set wv1 up
ip -n world link set lo up
world() { ip netns exec world "$@"; }

B() { "$BERTH" -c "$C" "$@"; }
log=$TMPDIR/daemon.log
pids=
start_daemon() {
	"$BERTH" daemon -c "$C" --foreground "$@" >>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do B status >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}
stop_daemon() {
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; stop_daemon; }
trap cleanup EXIT
inns() { n=$1; shift; nsenter --net="$S/netns/$n" "$@"; }
# serve NETNS-CMD... : start a server and wait until it listens
serve() {
	out=$TMPDIR/serve.$(date +%s%N)
	: >"$out"
	"$@" >>"$out" 2>&1 &
	pids="$pids $!"
	for _ in $(seq 100); do grep -q ready "$out" && return 0; sleep 0.05; done
	cat "$out"; return 1
}

start_daemon; check_out "the daemon starts with published ports" 0 echo $?
web4=$(B -o json ps | jq -r '.[] | select(.name=="web") | [.addresses[] | select(.family=="ipv4") | .address] | join(",")')
web6=$(B -o json ps | jq -r '.[] | select(.name=="web") | [.addresses[] | select(.family=="ipv6") | .address] | join(",")')
api4=$(B -o json ps | jq -r '.[] | select(.name=="api") | [.addresses[] | select(.family=="ipv4") | .address] | join(",")')
serve inns web $PEER serve web tcp:80 udp:53 tcp:9000 echo:443
serve inns api $PEER serve api tcp:80
serve world $PEER serve world tcp:7000

# --- the ruleset, as nft shows it
elems() { nft -j list map inet berth "$1" | jq -r '.nftables[] | select(.map) | .map.elem[]? | "\(.[0].concat | map(tostring) | join(" ")) -> \(.[1].concat | map(tostring) | join(" "))"' | sort; }
check_out "nft: ports4 maps each every-address port to the container" "tcp 8080 -> $web4 80
tcp 8081 -> $api4 80
tcp 8443 -> $web4 443
udp 5353 -> $web4 53" elems ports4
check_out "nft: ports6 the same to web's IPv6 address" "tcp 8080 -> $web6 80" sh -c "nft -j list map inet berth ports6 | jq -r '.nftables[] | select(.map) | .map.elem[]? | \"\(.[0].concat | map(tostring) | join(\" \")) -> \(.[1].concat | map(tostring) | join(\" \"))\"' | grep 8080"
check_out "nft: the 127.0.0.1-only port is in ports4_ip" "127.0.0.1 tcp 9000 -> $web4 9000" elems ports4_ip
check_out "nft: the masquerade set holds the subnet" "10.88.0.0/16" \
	sh -c "nft -j list set inet berth masq4 | jq -r '.nftables[] | select(.set) | .set.elem[] | \"\(.prefix.addr)/\(.prefix.len)\"'"
check_out "nft: the bridges set holds berth0" "berth0" \
	sh -c "nft -j list set inet berth bridges | jq -r '.nftables[] | select(.set) | .set.elem[]'"
check_out "route_localnet is on for the bridge only" "1 0 0" \
	sh -c "echo \$(cat /proc/sys/net/ipv4/conf/berth0/route_localnet /proc/sys/net/ipv4/conf/wv0/route_localnet /proc/sys/net/ipv4/conf/all/route_localnet)"

# --- traffic
check_out "TCP from the world reaches web, which sees the world's address" "web from 192.0.2.2" world $PEER tcp 192.0.2.1 8080
check_out "UDP from the world reaches web" "web from 192.0.2.2" world $PEER udp 192.0.2.1 5353
check_out "TCP from the world over IPv6" "web from 2001:db8:1::2" world $PEER tcp 2001:db8:1::1 8080
check_out "TCP from the world to another container's port" "api from 192.0.2.2" world $PEER tcp 192.0.2.1 8081
check_out "a port published on 127.0.0.1 is not reachable from the world" "no answer" world $PEER tcp 192.0.2.1 9000
check_out "TCP from the host to its own address" "web from 192.0.2.1" $PEER tcp 192.0.2.1 8080
check_out "TCP from the host via 127.0.0.1 (masqueraded to the gateway)" "web from 10.88.0.1" $PEER tcp 127.0.0.1 8080
check_out "UDP from the host via 127.0.0.1" "web from 10.88.0.1" $PEER udp 127.0.0.1 5353
check_out "the 127.0.0.1-only port from the host" "web from 10.88.0.1" $PEER tcp 127.0.0.1 9000
check_out "hairpin: web reaches its own published port through the host's address" "web from 10.88.0.1" inns web $PEER tcp 192.0.2.1 8080
check_out "hairpin: web reaches api's published port through the host's address" "api from 10.88.0.1" inns web $PEER tcp 192.0.2.1 8081
check_out "hairpin over UDP" "web from 10.88.0.1" inns api $PEER udp 192.0.2.1 5353
check_out "masquerade: the world sees a container's traffic from the host's address" "world from 192.0.2.1" inns web $PEER tcp 192.0.2.2 7000
check_out "masquerade over IPv6 (subnet6): the world sees the host's IPv6 address" "world from 2001:db8:1::1" inns web $PEER tcp 2001:db8:1::2 7000

# --- route_localnet is on for the bridge: a container must still not reach
# the host's 127.0.0.1 (nor a port published there) by sending to it directly
counter_of() { nft -j list set inet berth count4_ip | jq -r '.nftables[] | select(.set) | .set.elem[]? | select(.elem.val.concat[0] == "127.0.0.1") | .elem.counter.packets'; }
guard_drops() { nft -j list chain inet berth guard_pre | jq -r '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | add'; }
before=$(counter_of) drops=$(guard_drops)
gwmac=$(ip -j link show berth0 | jq -r '.[0].address')
inns web $PEER syn eth0 "$gwmac" "$web4" 127.0.0.1 9000
check_out "a container's packet to 127.0.0.1:9000 through the bridge is dropped before NAT" "$((drops + 1))" guard_drops
check_out "so it never reaches the port published on 127.0.0.1" "$before" counter_of
inns web $PEER syn eth0 "$gwmac" "$web4" 192.0.2.1 8080
check_out "the same kind of packet to the host's address is not dropped" "$((drops + 1))" guard_drops

# --- counters
pk=$(B -o json ports | jq -r '.[] | select(.host_port==8080) | .packets')
case $pk in ''|0|*[!0-9]*) not_ok "berth ports counts packets through 8080" "packets: $pk" ;; *) ok "berth ports counts packets through 8080 ($pk)" ;; esac
check "berth ports has the PACKETS and BYTES columns" sh -c "'$BERTH' -c '$C' ports | head -1 | grep -q 'PACKETS.*BYTES'"
check "metrics: berth_nat_packets_total for web's 8080/tcp is above zero" sh -c \
	"'$BERTH' -c '$C' metrics | grep -Eq '^berth_nat_packets_total\{container=\"web\",host_ip=\"\",host_port=\"8080\",proto=\"tcp\"\} [1-9]'"
check "metrics: berth_nat_bytes_total for the 127.0.0.1 port is above zero" sh -c \
	"'$BERTH' -c '$C' metrics | grep -Eq '^berth_nat_bytes_total\{container=\"web\",host_ip=\"127.0.0.1\",host_port=\"9000\",proto=\"tcp\"\} [1-9]'"

# --- unpublish one port while a connection to another is established
go=$TMPDIR/go
: >"$TMPDIR/hold.out"
world $PEER hold 192.0.2.1 8443 "$go" >>"$TMPDIR/hold.out" 2>&1 &
holder=$!
for _ in $(seq 100); do grep -q one "$TMPDIR/hold.out" && break; sleep 0.05; done
sed -i 's|^ports .*|ports   = 127.0.0.1:9000:9000/tcp, 8443:443/tcp, 5353:53/udp|' "$C/containers.d/web.ini"
check_out "reload: web's 8080 is no longer published" "~ container web: ports" B reload
check_out "new connections to the unpublished port fail" "no answer" world $PEER tcp 192.0.2.1 8080
check_out "the other ports stay published" "web from 192.0.2.2" world $PEER udp 192.0.2.1 5353
touch "$go"
wait $holder
check_out "the established connection to 8443 kept working through the change" "web 192.0.2.2: one
web 192.0.2.2: two" cat "$TMPDIR/hold.out"
check_out "ports no longer lists 8080" "" sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.host_port==8080) | .container'"

# --- a port a host process holds
serve $PEER serve hostproc tcp:7777
holder_pid=$(ss -Htlnp 'sport = :7777' 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
cat >"$C/containers.d/clash.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = 7777:80/tcp
INI
B reload >/dev/null 2>&1
err=$(B -o json ps | jq -r '.[] | select(.name=="clash") | "\(.state): \(.error)"')
case $err in
"error: port 7777/tcp is in use on the host by python"*" (pid $holder_pid)") ok "a port held by a host process is refused, naming it ($err)" ;;
*) not_ok "a port held by a host process is refused, naming it" "got: $err" "pid: $holder_pid" ;;
esac
check_out "and nothing was published for it" "" sh -c "nft -j list map inet berth ports4 | jq -r '.nftables[] | select(.map) | .map.elem[]? | select(.[0].concat[1] == 7777) | \"x\"'"
rm "$C/containers.d/clash.ini"
# the same for a UDP port (a process bound to [::], both families)
serve $PEER serve hostudp udp:7778
udp_pid=$(ss -Hulnp 'sport = :7778' 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
cat >"$C/containers.d/clash.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = 7778:53/udp
INI
B reload >/dev/null 2>&1
err=$(B -o json ps | jq -r '.[] | select(.name=="clash") | "\(.state): \(.error)"')
case $err in
"error: port 7778/udp is in use on the host by python"*" (pid $udp_pid)") ok "a UDP port held by a host process is refused, naming it ($err)" ;;
*) not_ok "a UDP port held by a host process is refused, naming it" "got: $err" "pid: $udp_pid" ;;
esac
rm "$C/containers.d/clash.ini"
# a port held in another network namespace (the world's 7000/tcp) is not the host's
cat >"$C/containers.d/other.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = 7000:80/tcp
INI
B reload >/dev/null 2>&1
check_out "a port a process holds in another network namespace is published" "7000" \
	sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.container==\"other\") | .host_port'"
rm "$C/containers.d/other.ini"
cat >"$C/containers.d/v6lo.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = [::1]:9001:80/tcp
INI
B reload >/dev/null 2>&1
check_out "a port on [::1] is refused with the reason" \
	"error: port [::1]:9001/tcp: IPv6 has no route_localnet, so a port published on [::1] could never be reached; use 127.0.0.1" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"v6lo\") | \"\\(.state): \\(.error)\"'"
check_out "and is not listed as published" "" sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.container==\"v6lo\") | .host_port'"
rm "$C/containers.d/v6lo.ini"
B reload >/dev/null 2>&1

cat >"$C/containers.d/zz.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
ports   = 127.0.0.1:8081:80/tcp
INI
out=$(B config check 2>&1); rc=$?
check_out "a host port two containers publish is refused by config check" \
	"1 containers.d/zz.ini:4: [container] ports: host port 8081/tcp is already published by container 'api' (containers.d/api.ini:4)" \
	echo "$rc $(echo "$out" | head -1)"
rm "$C/containers.d/zz.ini"

# --- self-healing
nft flush ruleset
for _ in $(seq 40); do nft list table inet berth >/dev/null 2>&1 && break; sleep 0.05; done
check "after nft flush ruleset, berth restores its table" nft list table inet berth
check_out "and the published ports work again" "api from 192.0.2.2" world $PEER tcp 192.0.2.1 8081
check_out "the restore is logged once" 1 sh -c "grep -c 'changed by another program' '$log'"
nft delete table inet berth
for _ in $(seq 40); do nft list table inet berth >/dev/null 2>&1 && break; sleep 0.05; done
check_out "a deleted table is restored too, with its elements" "tcp 8081 -> $api4 80" sh -c "nft -j list map inet berth ports4 | jq -r '.nftables[] | select(.map) | .map.elem[]? | \"\(.[0].concat | map(tostring) | join(\" \")) -> \(.[1].concat | map(tostring) | join(\" \"))\"' | grep 8081"

# a bridge deleted by hand is made again by the next reload, with the
# route_localnet that 127.0.0.1 ports need (the kernel's default is off)
ip link del berth0
B reload >/dev/null 2>&1
check_out "a reload remakes a bridge deleted by hand, route_localnet on" 1 \
	cat /proc/sys/net/ipv4/conf/berth0/route_localnet

# --- stop and start
stop_daemon
check_out "a clean stop removes the table" "" sh -c "nft list tables | grep berth"
start_daemon --keep-network
check_out "a restart publishes the ports again" "api from 192.0.2.2" world $PEER tcp 192.0.2.1 8081
stop_daemon
check "with --keep-network the table stays after the stop" nft list table inet berth
check_out "and keeps forwarding while no daemon runs" "api from 192.0.2.2" world $PEER tcp 192.0.2.1 8081
start_daemon
check_out "a daemon that finds the table replaces it: one table, one set of chains" 1 \
	sh -c "nft -j list ruleset | jq '[.nftables[] | select(.chain and .chain.name == \"dnat_pre\")] | length'"
check_out "the adopted ports work" "web from 192.0.2.2" world $PEER udp 192.0.2.1 5353
stop_daemon
done_testing
