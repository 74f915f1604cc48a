#!/bin/sh
# fw.sh - firewall benchmarks: policy update latency with 1, 100 and 1,000
# selected containers (a label change is set elements only; a policy added
# or removed rewrites its own chains), and the TCP request/response and
# connect rates between two containers with no ruleset versus 1,000 policies
# and 10,000 set elements. Runs in a throwaway `unshare --net --mount`.
set -u
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${BENCH_BIN:-$top/build/test/bench}/fw
[ -x "$bin" ] || { echo "fw: $bin not built (make bench)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "fw: needs root (network namespaces, nf_tables)"; exit 0; }

if [ -z "${FW_IN_SANDBOX:-}" ]; then
	exec env FW_IN_SANDBOX=1 unshare --net --mount --propagation private sh "$0" "$@"
fi
mount -t tmpfs none /run
ip link set lo up

echo "policy update latency (one batch on berth's long-lived nf_tables socket)"
for n in 1 100 1000; do
	"$bin" update "$n"
done

# two containers on a bridge, routed by the host namespace
ip link add br-bench type bridge
ip addr add 10.77.0.1/24 dev br-bench
ip link set br-bench up
for i in 2 3; do
	host=bh-srv; [ $i = 3 ] && host=bh-cli
	ip netns add c$i
	ip link add $host type veth peer name eth0 netns c$i
	ip link set $host master br-bench up
	ip -n c$i addr add 10.77.0.$i/24 dev eth0
	ip -n c$i link set eth0 up
	ip -n c$i link set lo up
done
echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null
ip netns exec c2 "$bin" serve 5000 >/tmp/fw-serve.$$ &
spid=$!
for _ in $(seq 50); do grep -q ready /tmp/fw-serve.$$ 2>/dev/null && break; sleep 0.05; done

secs=${FW_SECONDS:-3}
base=$(ip netns exec c3 "$bin" rr "$secs" 10.77.0.2 5000)
"$bin" load 1000 10000 10.77.0.2 10.77.0.3 >/tmp/fw-load.$$ &
lpid=$!
for _ in $(seq 200); do grep -q loaded /tmp/fw-load.$$ 2>/dev/null && break; sleep 0.05; done
rules=$(nft list table inet berth 2>/dev/null | grep -c 'jump fw_p_')
loaded=$(ip netns exec c3 "$bin" rr "$secs" 10.77.0.2 5000)
echo "TCP between two containers on one bridge, ${secs}s each (1-byte request/response on one"
echo "connection; connect+request+close per connection); the server is selected by the last of"
echo "1,000 policies, so each new connection walks every policy's lookup ($rules dispatch rules):"
echo "$base $loaded" | awk '{
	printf "  %-36s %10s %10s\n", "", "req/s", "conn/s"
	printf "  %-36s %10d %10d\n", "no ruleset", $2, $4
	printf "  %-36s %10d %10d\n", "1,000 policies, 10,000 elements", $6, $8
	if ($2 && $4) printf "  %-36s %9.1f%% %9.1f%%\n", "slowdown", 100 * (1 - $6 / $2), 100 * (1 - $8 / $4) }'
kill "$lpid" "$spid" 2>/dev/null
wait 2>/dev/null
rm -f /tmp/fw-serve.$$ /tmp/fw-load.$$
