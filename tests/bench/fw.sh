#!/bin/sh
# fw.sh - firewall benchmarks: policy update latency with 1, 100 and 1,000
# selected containers (a label change moves map elements; a policy added or
# removed rewrites its own chains and its identities'), and the TCP
# request/response and connect rates between two containers with no
# policies versus 1,000 policies, among 10,000 containers' set elements.
# Runs in a throwaway `unshare --net --mount`.
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

echo "micro-benchmark: net/fw.h called in-process from an -O2 glibc build, not the shipped binary;"
echo "no peer: the figures are the library's and the kernel's"
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

secs=${FW_SECONDS:-2}
rounds=${FW_ROUNDS:-3}
# table inet berth with the given policies and 10,000 containers' elements;
# none: no table at all. Prints "rr N crr N".
measure() {
	nft delete table inet berth 2>/dev/null
	nft delete table bridge berth 2>/dev/null
	if [ "$1" != none ]; then
		"$bin" load "$1" 10000 10.77.0.2 10.77.0.3 >/tmp/fw-load.$$ &
		lpid=$!
		for _ in $(seq 400); do grep -q loaded /tmp/fw-load.$$ 2>/dev/null && break; sleep 0.05; done
		grep -q loaded /tmp/fw-load.$$ || echo "fw: load $1 did not finish" >&2
	fi
	ip netns exec c3 "$bin" rr "$secs" 10.77.0.2 5000
	if [ "$1" != none ]; then
		kill "$lpid"
		wait "$lpid" 2>/dev/null
	fi
}
: >/tmp/fw-rr.$$
for r in $(seq "$rounds"); do
	for what in none 0 1000; do
		echo "$r $what $(measure $what)" >>/tmp/fw-rr.$$
	done
done
echo "TCP between two containers on one bridge, $rounds rounds of ${secs}s each, medians (1-byte"
echo "request/response on one connection; connect+request+close per connection). With policies,"
echo "the server is selected by the last of 1,000, the client by none. The"
echo "slowdowns are the medians of each round's ratio, so that drift between rounds cancels:"
awk '
	{ rr[$1, $2] = $4; crr[$1, $2] = $6; if ($1 > n) n = $1 }
	function med(a, k,   i, j, t) {
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	function col(v, what,   r, a) { for (r = 1; r <= n; r++) a[r] = v[r, what]; return med(a, n) }
	function slow(v, from, to,   r, a) {
		for (r = 1; r <= n; r++) a[r] = v[r, from] ? 100 * (1 - v[r, to] / v[r, from]) : 0
		return med(a, n)
	}
	END {
		printf "  %-44s %9s %9s\n", "", "req/s", "conn/s"
		printf "  %-44s %9d %9d\n", "no nftables table", col(rr, "none"), col(crr, "none")
		printf "  %-44s %9d %9d\n", "berth, 10,000 containers, no policies", col(rr, "0"), col(crr, "0")
		printf "  %-44s %9d %9d\n", "berth, 10,000 containers, 1,000 policies", col(rr, "1000"), col(crr, "1000")
		printf "  %-44s %8.1f%% %8.1f%%\n", "slowdown from the policies", slow(rr, "0", "1000"), slow(crr, "0", "1000")
		printf "  %-44s %8.1f%% %8.1f%%\n", "slowdown from berth, policies included", slow(rr, "none", "1000"), slow(crr, "none", "1000")
	}' /tmp/fw-rr.$$
kill "$spid" 2>/dev/null
wait 2>/dev/null
rm -f /tmp/fw-serve.$$ /tmp/fw-load.$$ /tmp/fw-rr.$$
