# net_multi.sh - containers on several networks: the default routes, the resolver
# and the published ports all use one network (the first in `networks =` order,
# or `default_network =`), so a published port answers the world over IPv4 and
# IPv6 whatever the order; IPv6 goes through the first network that has it when
# the default one has none; a reload that changes default_network moves the
# route, the ports and (after a restart) the resolver.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq python3 nsenter ip
. "$BERTH_TOP/tests/daemon.sh"

PEER="python3 $BERTH_TOP/tests/helpers/nat_peer.py"
mkdir -p "$C/containers.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run

[network a]
bridge     = berth-a
subnet     = 10.61.0.0/24
subnet6    = fd61::/64
masquerade = yes

[network b]
bridge     = berth-b
subnet     = 10.62.0.0/24
subnet6    = fd62::/64
masquerade = yes

[network c]
bridge     = berth-c
subnet     = 10.63.0.0/24
masquerade = yes

[dns]
domain   = berth.internal
upstream = 127.0.0.1
host     = no
INI
ctr() { # NAME NETWORKS PORT [KEY = VALUE]
	{
		printf '[container]\nrootfs   = /\ncommand  = sleep 1000\n'
		printf 'networks = %s\nports    = %s:80/tcp\n' "$2" "$3"
		[ -n "${4:-}" ] && printf '%s\n' "$4"
	} >"$C/containers.d/$1.ini"
}
ctr ab "a, b" 8080
ctr ba "b, a" 8081
ctr dn "a, b" 8082 "default_network = b"
ctr cb "c, b" 8083

# the world, as in nat_ports.sh: a namespace behind a veth, with no route to
# the containers' subnets
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

pids=
stop_all() { for p in $pids; do kill "$p" 2>/dev/null; done; cleanup; }
trap stop_all EXIT
inns() { n=$1; shift; nsenter --net="$S/netns/$n" "$@"; }
# serve NAME: a server in the container's netns answering "NAME from PEER" on 80
serve() {
	out=$TMPDIR/serve.$1
	: >"$out"
	inns "$1" $PEER serve "$1" tcp:80 >>"$out" 2>&1 &
	pids="$pids $!"
	for _ in $(seq 100); do grep -q ready "$out" && return 0; sleep 0.05; done
	cat "$out"; return 1
}
# default routes of NAME: "FAMILY via GATEWAY dev IFNAME" per line
routes() {
	inns "$1" ip -j -4 route show default | jq -r '.[] | "4 via \(.gateway) dev \(.dev)"'
	inns "$1" ip -j -6 route show default | jq -r '.[] | "6 via \(.gateway) dev \(.dev)"'
}
resolver() { B exec "$1" -- cat /etc/resolv.conf | sed -n 's/^nameserver //p' | tr '\n' ' '; }

start_daemon; check_out "the daemon starts with four containers on several networks" 0 echo $?
for n in ab ba dn cb; do
	wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '.[] | select(.name==\"$n\" and .state==\"running\")'" ||
		not_ok "container $n runs" "$(B ps 2>&1)"
	serve $n
done

check_out "networks = a, b: the default routes go through a (eth0)" \
	"4 via 10.61.0.1 dev eth0
6 via fd61::1 dev eth0" routes ab
check_out "networks = b, a: through b (eth0), whatever was attached last" \
	"4 via 10.62.0.1 dev eth0
6 via fd62::1 dev eth0" routes ba
check_out "default_network = b: through b (eth1)" \
	"4 via 10.62.0.1 dev eth1
6 via fd62::1 dev eth1" routes dn
check_out "an IPv4-only default network: IPv4 through it, IPv6 through the first that has it" \
	"4 via 10.63.0.1 dev eth0
6 via fd62::1 dev eth1" routes cb

check_out "the resolver is on the default network (a)" "10.61.0.1 fd61::1 " resolver ab
check_out "the resolver is on the default network (b first)" "10.62.0.1 fd62::1 " resolver ba
check_out "the resolver follows default_network" "10.62.0.1 fd62::1 " resolver dn
check_out "an IPv4-only default network: its IPv4 gateway only" "10.63.0.1 " resolver cb

addr() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }
check_out "the published port targets the default network's address" \
	"tcp 8080 -> $(inns ab ip -j -4 addr show eth0 | jq -r '.[0].addr_info[0].local') 80" \
	sh -c "nft -j list map inet berth ports4 | jq -r '.nftables[] | select(.map) | .map.elem[]? | \"\(.[0].concat | map(tostring) | join(\" \")) -> \(.[1].concat | map(tostring) | join(\" \"))\"' | grep 'tcp 8080 '"

for n in ab ba dn cb; do
	p=$(sed -n 's/^ports *= *\([0-9]*\):.*/\1/p' "$C/containers.d/$n.ini")
	check_out "$n: port $p answers the world over IPv4" "$n from 192.0.2.2" world $PEER tcp 192.0.2.1 "$p"
	check_out "$n: port $p answers the world over IPv6" "$n from 2001:db8:1::2" world $PEER tcp 2001:db8:1::1 "$p"
done
check_out "the host reaches a port too" "ab from 192.0.2.1" $PEER tcp 192.0.2.1 8080
check_out "a container on both networks reaches the world through its default network" \
	"world from 192.0.2.1" sh -c "
	ip netns exec world $PEER serve world tcp:7000 >'$TMPDIR/world.out' 2>&1 & w=\$!
	for _ in \$(seq 100); do grep -q ready '$TMPDIR/world.out' && break; sleep 0.05; done
	nsenter --net='$S/netns/dn' $PEER tcp 192.0.2.2 7000; kill \$w"

# --- a reload moves the default network
pid_ab=$(B -o json ps | jq -r '.[] | select(.name=="ab") | .pid')
sed -i 's/^networks = a, b$/networks = a, b\ndefault_network = b/' "$C/containers.d/ab.ini"
check_out "reload: default_network is a change of the container" "~ container ab: default_network" \
	sh -c "'$BERTH' -c '$C' reload | grep 'container ab'"
check_out "the default routes now go through b" \
	"4 via 10.62.0.1 dev eth1
6 via fd62::1 dev eth1" routes ab
check "the container is restarted (a new pid)" wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '.[] | select(.name==\"ab\" and .state==\"running\" and .pid != $pid_ab)'"
check_out "its resolver is b's gateway now" "10.62.0.1 fd62::1 " resolver ab
check_out "the port follows: IPv4 from the world" "ab from 192.0.2.2" world $PEER tcp 192.0.2.1 8080
check_out "and IPv6" "ab from 2001:db8:1::2" world $PEER tcp 2001:db8:1::1 8080
check_out "the other containers were not touched" "ba from 192.0.2.2" world $PEER tcp 192.0.2.1 8081
done_testing
