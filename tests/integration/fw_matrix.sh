# fw_matrix.sh - label policies as the kernel enforces them: nine containers
# (three groups of three) listening on TCP and UDP 80 and 81, a world namespace
# routed through the host, sixteen policy scenarios, every pair probed and
# compared with the expectation, and `policy why` asked about every probe
# (tests/helpers/fw_matrix.py).
. "$BERTH_TOP/tests/lib.sh"
need_cmd python3 ip nft

C=$TMPDIR/etc
S=$TMPDIR/state
R=$TMPDIR/run
mkdir -p "$C/containers.d" "$C/policies.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $R

[network default]
bridge = berth0
subnet = 10.88.0.0/24

[dns]
upstream = 127.0.0.1
host     = no
INI
for g in a b c; do
	for i in 1 2 3; do
		n=$(( $(printf '%d' "'$g") - 96 ))
		cat >"$C/containers.d/$g$i.ini" <<INI
[container]
rootfs  = /
command = sleep 100000
labels  = group=$g, idx=$i
ip      = 10.88.0.$n$i
INI
	done
done

log=$TMPDIR/daemon.log
"$BERTH" daemon -c "$C" --foreground >"$log" 2>&1 &
dpid=$!
for _ in $(seq 100); do "$BERTH" -c "$C" status >/dev/null 2>&1 && break; sleep 0.05; done
check "the daemon starts with nine containers" "$BERTH" -c "$C" status

# The world: a namespace behind a veth, routed to the containers by the host.
ip netns add world
ip link add wo-host type veth peer name wo-world netns world
ip addr add 203.0.113.1/24 dev wo-host
ip link set wo-host up
ip -n world link set lo up
ip -n world addr add 203.0.113.2/24 dev wo-world
ip -n world link set wo-world up
ip -n world route add 10.88.0.0/24 via 203.0.113.1

ns_files=""
for g in a b c; do for i in 1 2 3; do ns_files="$ns_files $S/netns/$g$i"; done; done
srvout=$TMPDIR/serve.out
# shellcheck disable=SC2086
"$BERTH_TOP/build/test/helpers/fw_probe" serve $ns_files -p 80 81 >"$srvout" 2>&1 &
spid=$!
for _ in $(seq 100); do grep -q ready "$srvout" && break; sleep 0.05; done
check "listeners on TCP/UDP 80 and 81 in the nine containers" grep -q ready "$srvout"

BERTH=$BERTH CONF=$C STATE=$S SOCK=$R/berth.sock PROBE=$BERTH_TOP/build/test/helpers/fw_probe \
	WORLD_NS=/run/netns/world WORLD_ADDR=203.0.113.2 \
	python3 "$BERTH_TOP/tests/helpers/fw_matrix.py" >"$TMPDIR/matrix.tap" 2>&1
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#ok * - }" ;;
	"not ok "*) not_ok "${line#not ok * - }" ;;
	1..*) ;;
	*) echo "$line" ;;
	esac
done <"$TMPDIR/matrix.tap"

kill "$spid" "$dpid" 2>/dev/null
wait "$dpid" 2>/dev/null
ip netns del world
done_testing
