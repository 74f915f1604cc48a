#!/bin/sh
# dns.sh - make bench: berth's DNS server (the optimised dns_serve harness)
# beside dnsmasq, both single-threaded on the same CPU, under dnsperf for
# DNS_BENCH_SECONDS (10) each: authoritative names of 1,000 containers, and
# cached forwarded names (a local dnsmasq upstream). Prints queries/s and
# average latency at full load, p50/p99 at a fixed rate, and RSS before and after
# loading the 1,000 names. Runs in its own network namespace. About a minute.
set -u
if [ -z "${BENCH_DNS_SANDBOX:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "dns: skipped (needs root for a network namespace)"; exit 0; }
	BENCH_DNS_SANDBOX=1 exec unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
serve=${BENCH_BIN:-$top/build/test/bench}/dns_serve
secs=${DNS_BENCH_SECONDS:-10}
n=1000
for c in dnsperf dnsmasq; do
	command -v $c >/dev/null || { echo "dns: skipped ($c is not installed: mk/deps.sh bench)"; exit 0; }
done
[ -x "$serve" ] || { echo "dns: skipped ($serve is not built)"; exit 0; }

work=$(mktemp -d /tmp/berth-dns-bench.XXXXXX)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# One CPU for the server, another for dnsperf, when there are two.
if [ "$(nproc)" -ge 2 ]; then srv_cpu="taskset -c 0"; cli_cpu="taskset -c 1"; cpus="server on CPU 0, dnsperf on CPU 1"
else srv_cpu=; cli_cpu=; cpus="one CPU shared"; fi

# The same 1,000 names for both servers; queries for them; forwarded names.
printf 'network default 10.88.0.0/16\n' >"$work/empty.rec"
cp "$work/empty.rec" "$work/full.rec"
: >"$work/hosts.empty"
: >"$work/hosts"
: >"$work/auth.q"
: >"$work/fwd.q"
i=0
while [ $i -lt $n ]; do
	ip="10.88.$((i / 250 + 1)).$((i % 250 + 1))"
	echo "container c$i default $ip"
	i=$((i + 1))
done >>"$work/full.rec"
awk '$1 == "container" { print $4, $2 ".berth.internal" }' "$work/full.rec" >"$work/hosts"
awk '$1 == "container" { print $2 ".berth.internal A" }' "$work/full.rec" >"$work/auth.q"
awk '$1 == "container" { print "f" NR ".fwd.test A" }' "$work/full.rec" >"$work/fwd.q"

wait_for() { for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# The upstream both forwarders ask, answering fN.fwd.test with TTL 300.
dnsmasq --no-daemon --conf-file=/dev/null --listen-address=127.0.0.2 --port=53 --bind-interfaces \
	--no-resolv --no-hosts --local-ttl=300 --address=/fwd.test/192.0.2.7 2>"$work/up.err" &
pids="$pids $!"
wait_for "$work/up.err" started || { echo "dns: upstream dnsmasq did not start"; exit 0; }

# berth: start empty, measure, load 1,000 names (SIGHUP), measure.
cp "$work/empty.rec" "$work/berth.rec"
$srv_cpu "$serve" -f "$work/berth.rec" -l 127.0.0.53 -u 127.0.0.2 >"$work/berth.out" 2>&1 &
bpid=$!
pids="$pids $bpid"
wait_for "$work/berth.out" ready || { echo "dns: dns_serve did not start: $(cat "$work/berth.out")"; exit 0; }
b_rss0=$(rss_kb $bpid)
cp "$work/full.rec" "$work/berth.rec"
kill -HUP $bpid
wait_for "$work/berth.out" reloaded
b_rss1=$(rss_kb $bpid)
[ "$(dig +short @127.0.0.53 c999.berth.internal 2>/dev/null)" = 10.88.4.250 ] ||
	echo "   warning: berth does not answer c999.berth.internal"

# dnsmasq: the same, its names from an addn-hosts file (re-read on SIGHUP).
cp "$work/hosts.empty" "$work/dm.hosts"
$srv_cpu dnsmasq --no-daemon --conf-file=/dev/null --listen-address=127.0.0.54 --port=53 \
	--bind-interfaces --no-resolv --no-hosts --addn-hosts="$work/dm.hosts" --local-ttl=10 \
	--server=127.0.0.2 --cache-size=4096 2>"$work/dm.err" &
dpid=$!
pids="$pids $dpid"
wait_for "$work/dm.err" started || { echo "dns: dnsmasq did not start"; exit 0; }
d_rss0=$(rss_kb $dpid)
cp "$work/hosts" "$work/dm.hosts"
kill -HUP $dpid
sleep 0.5
d_rss1=$(rss_kb $dpid)
[ "$(dig +short @127.0.0.54 c999.berth.internal 2>/dev/null)" = 10.88.4.250 ] ||
	echo "   warning: dnsmasq does not answer c999.berth.internal"

# Warm both caches with every forwarded name once.
for s in 127.0.0.53 127.0.0.54; do
	dnsperf -s $s -d "$work/fwd.q" -n 1 >/dev/null 2>&1
done

# CPU time (user + system, clock ticks) a process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# perf SERVER PID FILE: "qps avg_ms lost us_cpu_per_query" over $secs seconds
# at full load (dnsperf keeps 4 x 64 queries outstanding). On a small
# machine dnsperf itself is often the limit; the server's CPU time per
# query says what the server would do with a whole CPU.
perf() {
	t0=$(cpu_ticks "$2")
	$cli_cpu dnsperf -s "$1" -d "$3" -l "$secs" -c 4 -q 64 -t 2 >"$work/perf.out" 2>&1
	t1=$(cpu_ticks "$2")
	awk -v t=$((t1 - t0)) -v hz="$hz" '
		/Queries completed:/ { done = $3 }
		/Queries per second:/ { qps = $4 }
		/Queries lost:/ { lost = $3 }
		/Average Latency/ { avg = $4 * 1000 }
		END { printf "%.0f %.3f %s %.2f\n", qps, avg, lost, done ? t * 1e6 / hz / done : 0 }' \
		"$work/perf.out"
}
# lat SERVER FILE: "p50_ms p99_ms" at a fixed $rate queries/s for $lsecs
# seconds, from dnsperf -v's per-query times (latency, not queueing).
lat() {
	$cli_cpu dnsperf -s "$1" -d "$2" -l "$lsecs" -Q "$rate" -c 4 -q 64 -v 2>&1 |
		awk '/^> / { print $NF }' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- -"; exit }
		i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "%.3f %.3f\n", v[i50] * 1000, v[i99] * 1000 }'
}
lsecs=${DNS_BENCH_LAT_SECONDS:-4}
rate=${DNS_BENCH_RATE:-20000}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "DNS server: dnsperf ${secs}s at full load (-c 4 -q 64) for queries/s and average latency;"
echo "p50/p99 from ${lsecs}s at ${rate} queries/s (dnsperf -v); $cpus"
printf '%-24s %9s %9s %5s  %-9s %-9s %5s  %-17s %-17s\n' "" "berth q/s" "dnsmasq" "ratio" \
	"berth" "dnsmasq" "ratio" "berth ms" "dnsmasq ms"
printf '%-24s %9s %9s %5s  %-19s %5s  %-17s %-17s\n' "" "" "" "" "CPU us/query" "" \
	"avg p50/p99" "avg p50/p99"
for kind in auth fwd; do
	if [ $kind = auth ]; then label="authoritative ($n)"; else label="cached forwarded ($n)"; fi
	set -- $(perf 127.0.0.53 $bpid "$work/$kind.q"); bq=$1 ba=$2 bl=$3 bc=$4
	set -- $(perf 127.0.0.54 $dpid "$work/$kind.q"); dq=$1 da=$2 dl=$3 dc=$4
	set -- $(lat 127.0.0.53 "$work/$kind.q"); b50=$1 b99=$2
	set -- $(lat 127.0.0.54 "$work/$kind.q"); d50=$1 d99=$2
	printf '%-24s %9s %9s %5s  %-9s %-9s %5s  %-17s %-17s\n' "$label" "$bq" "$dq" \
		"$(ratio "$bq" "$dq")" "$bc" "$dc" "$(ratio "$dc" "$bc")" "$ba $b50/$b99" "$da $d50/$d99"
	[ "$bl" = 0 ] && [ "$dl" = 0 ] || echo "   (queries lost, 2 s timeout: berth $bl, dnsmasq $dl)"
done
echo "(ratios: berth's advantage; CPU us/query ratio = dnsmasq / berth)"
b_rss2=$(rss_kb $bpid)
d_rss2=$(rss_kb $dpid)
printf '%-26s %10s %10s\n' "RSS (KiB)" "berth" "dnsmasq"
printf '%-26s %10s %10s\n' "  no names" "$b_rss0" "$d_rss0"
printf '%-26s %10s %10s\n' "  $n names" "$b_rss1" "$d_rss1"
printf '%-26s %10s %10s\n' "  growth for $n names" "$((b_rss1 - b_rss0))" "$((d_rss1 - d_rss0))"
printf '%-26s %10s %10s\n' "  after the runs" "$b_rss2" "$d_rss2"
kill -USR1 $bpid
sleep 0.2
echo "berth counters: $(grep '^stats' "$work/berth.out" | tail -1 | cut -d' ' -f2-)"
