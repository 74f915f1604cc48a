#!/bin/sh
# nat.sh - port publishing: the time to publish the 1st, 1,000th and 10,000th
# port and to load 10,000 at start-up, for berth (tests/bench/nat.c: one map
# element per port on a long-lived nf_tables socket), iptables DNAT rules
# (`iptables -t nat -A`, nf_tables and legacy back ends, one process per rule as
# a shell script or a CNI plugin runs it) and, when installed, the CNI portmap
# plugin (one ADD per container), with the ratios. Everything runs inside its
# own `unshare --net --mount` sandbox: the machine's own rules are never
# touched. Prints; never fails on speed. PORTMAP_MAX caps the portmap ADDs
# (default 1000: each is a process that rewrites iptables chains).
set -u
if [ "${NAT_BENCH_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "nat: needs root for a network namespace (skipped)"; exit 0; }
	NAT_BENCH_INNER=1 exec unshare --net --mount sh "$0" "$@"
fi
ip link set lo up
bin=${BENCH_BIN:-build/test/bench}/nat
pm=/usr/lib/cni/portmap
pm_max=${PORTMAP_MAX:-1000}
N=10000
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-nat.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

[ -x "$bin" ] || { echo "nat: $bin not built (make bench builds it)"; exit 0; }
echo "micro-benchmark: net/nat.h called in-process from an -O2 glibc build, not the shipped binary;"
echo "the peers pay a process per rule: ratios are resident vs exec-per-call (ports: end to end)"
"$bin" $N >"$tmp/berth.out" 2>&1 || { echo "  (the berth run failed)"; cat "$tmp/berth.out"; exit 0; }
grep -v '^RESULT ' "$tmp/berth.out"
res() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' "$tmp/berth.out"; }

now() { date +%s%N; }
# the median (µs) of 5 consecutive single-rule appends after the table holds $2 rules
rule() { printf -- '-A PREROUTING -p tcp --dport %d -j DNAT --to-destination 10.88.%d.%d:80\n' \
	$((1024 + $1)) $(($1 / 250)) $(($1 % 250 + 2)); }
fill() {        # IPT FROM TO: rules FROM..TO through one restore
	{ echo '*nat'; i=$2; while [ "$i" -le "$3" ]; do rule "$i"; i=$((i + 1)); done; echo COMMIT; } >"$tmp/rules"
	"$1-restore" --noflush <"$tmp/rules"
}
append_at() {   # IPT MARK: time appending rules MARK..MARK+4 one process each; median
	ipt=$1 mark=$2
	[ "$mark" -gt 1 ] && fill "$ipt" "$have" $((mark - 1))
	for k in 0 1 2 3 4; do
		set -- $(rule $((mark + k)))
		t0=$(now); "$ipt" -t nat "$@"; t1=$(now)
		echo $(((t1 - t0) / 1000))
	done | sort -n | sed -n 3p
	have=$((mark + 5))
}
iptables_run() { # IPT: "t1 t1000 t10000 load" in µs
	ipt=$1
	"$ipt" -t nat -F PREROUTING 2>/dev/null || return 1
	have=1
	a=$(append_at "$ipt" 1); have=6
	b=$(append_at "$ipt" 1000); have=1005
	c=$(append_at "$ipt" $N)
	"$ipt" -t nat -F PREROUTING
	{ echo '*nat'; i=1; while [ "$i" -le $N ]; do rule "$i"; i=$((i + 1)); done; echo COMMIT; } >"$tmp/all"
	t0=$(now); "$ipt-restore" --noflush <"$tmp/all"; t1=$(now)
	"$ipt" -t nat -F PREROUTING
	echo "$a $b $c $(((t1 - t0) / 1000))"
}

# portmap: one ADD per container (one port each), as a CNI runtime calls it
pm_conf() {
	printf '{"cniVersion":"1.0.0","name":"bench","type":"portmap","capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}]},"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/c%d"}],"ips":[{"address":"10.89.%d.%d/16","interface":0}]}}\n' \
		$((20000 + $1)) "$1" $(($1 / 250)) $(($1 % 250 + 2))
}
portmap_run() {  # "t1 t100 tMAX" in µs
	out=
	i=1
	while [ $i -le "$pm_max" ]; do
		pm_conf $i >"$tmp/pm.json"
		t0=$(now)
		CNI_COMMAND=ADD CNI_CONTAINERID=c$i CNI_NETNS=/var/run/netns/c$i CNI_IFNAME=eth0 \
			CNI_PATH=/usr/lib/cni "$pm" <"$tmp/pm.json" >"$tmp/pm.out" 2>&1 ||
			{ echo "portmap ADD failed: $(cat "$tmp/pm.out")" >&2; return 1; }
		t1=$(now)
		case $i in 1|100|1000|"$pm_max") out="$out $i:$(((t1 - t0) / 1000))" ;; esac
		i=$((i + 1))
	done
	echo "$out"
}

ms() { awk -v u="$1" 'BEGIN { if (u == "") printf "%10s", "-"; else printf "%7.3f ms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) printf "%8s", "-"; else printf "%7.0fx", a / b }'; }

nftr=$(iptables_run iptables-nft) || nftr=
legr=$(iptables_run iptables-legacy 2>/dev/null) || legr=
echo
echo "the same work by the peers (one process per rule; ratio = peer / berth)"
printf '  %-22s %10s   %10s %8s   %10s %8s\n' "" berth iptables-nft ratio legacy ratio
i=0
for what in "publish port #1" "publish port #1000" "publish port #$N" "load $N at start-up"; do
	i=$((i + 1))
	case $i in 1) b=$(res publish_1) ;; 2) b=$(res publish_1000) ;; 3) b=$(res publish_$N) ;; 4) b=$(res load) ;; esac
	n=$(echo "$nftr" | awk -v i=$i '{ print $i }')
	l=$(echo "$legr" | awk -v i=$i '{ print $i }')
	printf '  %-22s %s   %s %s   %s %s\n' "$what" "$(ms "$b")" "$(ms "$n")" "$(ratio "$n" "$b")" \
		"$(ms "$l")" "$(ratio "$l" "$b")"
done
echo "  (iptables: median of 5 single appends at each mark, the table prefilled by iptables-restore;"
echo "   start-up is one iptables-restore of $N rules; berth publish: median of the 100 up to the mark)"

echo
if [ ! -x "$pm" ]; then
	echo "CNI portmap: not installed ($pm; apt-get install containernetworking-plugins)"
	exit 0
fi
pmr=$(portmap_run) || exit 0
echo "CNI portmap ($pm, one ADD per container with one port; up to $pm_max containers)"
printf '  %-22s %10s   %10s %8s\n' "" berth portmap ratio
for kv in $pmr; do
	n=${kv%%:*} t=${kv#*:}
	b=$(res publish_$n)
	[ -n "$b" ] || b=$(res mean)
	printf '  %-22s %s   %s %s\n' "publish port #$n" "$(ms "$b")" "$(ms "$t")" "$(ratio "$t" "$b")"
done
echo "  (target: berth's publish flat in the number of ports, <= 1 ms at $N; the peers grow with it)"
