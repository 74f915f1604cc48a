#!/bin/sh
# attach.sh - container network set-up and tear-down time: berth (net.h, in-process) for
# N = 10, 100, 1000 containers on one bridge, and the CNI bridge + host-local plugins
# (invoked the CNI way) for N = 10, 100 when installed. Runs in a throwaway
# `unshare --net --mount`, so the machine's network is never touched.
set -u
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${BENCH_BIN:-$top/build/test/bench}/attach
[ -x "$bin" ] || { echo "attach: $bin not built (make bench)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "attach: needs root (network namespaces)"; exit 0; }

if [ -z "${ATTACH_IN_SANDBOX:-}" ]; then
	exec env ATTACH_IN_SANDBOX=1 unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up 2>/dev/null
work=$(mktemp -d /tmp/berth-bench-attach.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "micro-benchmark: net.h called in-process from an -O2 glibc build, not the shipped binary;"
echo "the CNI ratios compare a resident library call with a process per call (netadd: end to end)"
echo "container network attach/detach, one bridge; times per container (p50/p99)"
echo "berth: netns + veth + addresses + routes in-process (cold); warm: the netns and veth"
echo "come from a spare that net_prepare() made ready beforehand (untimed, as the daemon does"
echo "when idle). Detach = remove the netns (the kernel destroys the pair asynchronously)."
for n in 10 100 1000; do
	"$bin" berth "$n" "$work/b$n" | tee -a "$work/berth.txt"
	"$bin" berth "$n" "$work/w$n" warm | tee -a "$work/warm.txt"
done
"$bin" berth 100 "$work/v4" v4 | tee "$work/berth-v4.txt"

p50() { awk -v n="$2" '$0 ~ "N=" n " " { for (i = 1; i <= NF; i++) if ($i == "p50") { print $(i + 1); exit } }' "$1"; }
p50det() { awk -v n="$2" '$0 ~ "N=" n " " { c = 0; for (i = 1; i <= NF; i++) if ($i == "p50" && ++c == 2) { print $(i + 1); exit } }' "$1"; }

if [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && command -v ip >/dev/null; then
	echo "CNI: /usr/lib/cni/bridge + host-local, IPv4, one exec per ADD/DEL; the netns is made by"
	echo "'ip netns add' beforehand and not timed (berth cold includes making it)"
	for n in 10 100; do
		"$bin" cni "$n" "$work/cni$n" | tee -a "$work/cni.txt"
	done
	for n in 10 100; do
		b=$(p50 "$work/berth.txt" "$n") w=$(p50 "$work/warm.txt" "$n") c=$(p50 "$work/cni.txt" "$n")
		bd=$(p50det "$work/berth.txt" "$n") cd=$(p50det "$work/cni.txt" "$n")
		[ -n "$b" ] && [ -n "$c" ] && awk -v n="$n" -v b="$b" -v w="$w" -v c="$c" -v bd="$bd" -v cd="$cd" 'BEGIN {
			printf "ratio N=%-4d attach p50: CNI %.3f ms / berth cold %.3f ms = %.1fx, / warm %.3f ms = %.1fx   detach p50: %.0fx (berth returns before the kernel frees the pair)\n",
				n, c, b, c / b, w, (w > 0 ? c / w : 0), (bd > 0 ? cd / bd : 0) }'
	done
	b4=$(p50 "$work/berth-v4.txt" 100) c=$(p50 "$work/cni.txt" 100)
	[ -n "$b4" ] && [ -n "$c" ] && awk -v b="$b4" -v c="$c" 'BEGIN {
		printf "ratio N=100  attach p50, both IPv4 only: %.1fx\n", c / b }'
else
	echo "CNI plugins not installed (/usr/lib/cni/bridge, host-local): apt-get install containernetworking-plugins"
fi
