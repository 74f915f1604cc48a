#!/bin/sh
# ipam.sh - IPAM allocations/s and releases/s: berth's store/ (tests/bench/ipam.c)
# and, when installed, the CNI host-local plugin doing the same allocations the
# CNI way (one exec per ADD/DEL, config on stdin), with the ratio. Prints; never
# fails on speed. HOSTLOCAL_MAX caps the host-local allocations per range
# (default 1000: each costs a process; its per-allocation cost does not depend
# on how many are live, as it continues after the last one like berth).
set -u
bin=${BENCH_BIN:-build/test/bench}/ipam
hl=/usr/lib/cni/host-local
max=${HOSTLOCAL_MAX:-1000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-ipam.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

[ -x "$bin" ] || { echo "ipam: $bin not built (make bench builds it)"; exit 0; }
echo "micro-benchmark: store/ipam called in-process from an -O2 glibc build, not the shipped binary;"
echo "host-local pays a process per call: ratios are resident vs exec-per-call"
"$bin" "$tmp/berth" >"$tmp/berth.out" || echo "  (the berth run failed)"
grep -v '^RESULT ' "$tmp/berth.out"

now() { date +%s%N; }

# hostlocal CASE SUBNET N: N ADDs then N DELs; prints "alloc/s release/s".
hostlocal() {
	name=$1 subnet=$2 n=$3
	conf=$tmp/hl-$name.json
	printf '{"cniVersion":"1.0.0","name":"bench","type":"bridge","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"%s"}]]}}\n' \
		"$tmp/hl-data-$name" "$subnet" >"$conf"
	export CNI_NETNS=/var/run/netns/bench CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni
	t0=$(now)
	i=0
	while [ $i -lt "$n" ]; do
		CNI_COMMAND=ADD CNI_CONTAINERID=c$i "$hl" <"$conf" >"$tmp/hl.out" 2>&1 ||
			{ echo "host-local ADD failed: $(cat "$tmp/hl.out")" >&2; return 1; }
		i=$((i + 1))
	done
	t1=$(now)
	i=0
	while [ $i -lt "$n" ]; do
		CNI_COMMAND=DEL CNI_CONTAINERID=c$i "$hl" <"$conf" >"$tmp/hl.out" 2>&1 ||
			{ echo "host-local DEL failed: $(cat "$tmp/hl.out")" >&2; return 1; }
		i=$((i + 1))
	done
	t2=$(now)
	awk -v n="$n" -v a="$((t1 - t0))" -v r="$((t2 - t1))" \
		'BEGIN { printf "%.1f %.1f\n", n / (a / 1e9), n / (r / 1e9) }'
}

echo
if [ ! -x "$hl" ]; then
	echo "CNI host-local: not installed ($hl; apt-get install containernetworking-plugins)"
	exit 0
fi
echo "CNI host-local ($hl, one process per call; up to $max allocations per range)"
printf '  %-6s %6s %10s %10s   %s\n' range n alloc/s release/s \
	"berth / host-local: fsync alloc, release | no-sync alloc, release"
for c in "/24 10.60.0.0/24" "/16 10.61.0.0/16" "v6/64 fd61::/64"; do
	set -- $c
	name=$1 subnet=$2
	n=$(awk -v c="$name" '$1 == "RESULT" && $2 == c && $3 == "full" { print $4 }' "$tmp/berth.out")
	[ -n "$n" ] || continue
	[ "$n" -gt "$max" ] && n=$max
	r=$(hostlocal "$(echo "$name" | tr -d /)" "$subnet" "$n") || continue
	set -- $r
	awk -v c="$name" -v n="$n" -v ha="$1" -v hr="$2" '
		$1 == "RESULT" && $2 == c { a[$3] = $5; r[$3] = $6 }
		END {
			printf "  %-6s %6d %10.0f %10.0f   %20.1fx %7.1fx | %13.1fx %7.1fx\n",
				c, n, ha, hr, a["full"] / ha, r["full"] / hr, a["normal"] / ha, r["normal"] / hr
		}' "$tmp/berth.out"
done
echo "  (target: berth at least 20x host-local per allocation; host-local never fsyncs, so"
echo "   the like-for-like crash safety is berth no-sync: both survive kill -9 at any instant)"
