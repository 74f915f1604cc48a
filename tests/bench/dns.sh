#!/bin/sh
# dns.sh - make bench: DNS, headline then micro-benchmark.
#
# Headline: the shipped binary (build/ARCH/berth) as a user runs it. `berth
# daemon` with DNS_BENCH_NAMES (1,000) containers (busybox sleep, added by
# writing their files and one `berth reload`), so its DNS server answers
# 1,000 names it learnt the way it always does; beside it dnsmasq with the
# same 1,000 names (an addn-hosts file written from `berth ps`), listening on
# the same gateway address (port 5353), the same cache size and upstream.
# Both servers pinned to CPU 0 (taskset), dnsperf -c 4 on CPU 1, run from
# inside the first container's network namespace: queries take the path a
# container's do (veth, bridge, the host's firewall). Each figure is the
# median of DNS_BENCH_ROUNDS (3) runs of DNS_BENCH_SECONDS (5) s, berth and
# dnsmasq taking turns. Server CPU per answered query is the server's CPU
# time (/proc/PID/schedstat: user + system, including the kernel's work of
# delivering its answers) over the queries dnsperf saw answered.
# The daemon's RSS is taken with no container and with the 1,000 (everything
# the daemon keeps per container, not only DNS), dnsmasq's with no name and
# with the 1,000.
#
# Micro-benchmark (labelled so): the dns/ module alone in the test harness
# (build/test/bench/dns_serve, -O2 glibc), on loopback, beside dnsmasq: its
# record set's RSS growth for the names, and CPU per query without the
# daemon, the bridge and the firewall.
#
# Runs in its own network and mount namespace. Two to three minutes.
set -u
if [ -z "${BENCH_DNS_SANDBOX:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "dns: skipped (needs root for a network namespace)"; exit 0; }
	BENCH_DNS_SANDBOX=1 exec unshare --net --mount --propagation private sh "$0" "$@"
fi
mount -t tmpfs -o mode=755 none /run
ip link set lo up
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
prod=${BERTH_PROD:-$top/build/$(uname -m)/berth}
serve=${BENCH_BIN:-$top/build/test/bench}/dns_serve
secs=${DNS_BENCH_SECONDS:-5}
rounds=${DNS_BENCH_ROUNDS:-3}
n=${DNS_BENCH_NAMES:-1000}
outstanding=${DNS_BENCH_OUTSTANDING:-64}
for c in dnsperf dnsmasq dig; do
	command -v $c >/dev/null || { echo "dns: skipped ($c is not installed: mk/deps.sh bench)"; exit 0; }
done
[ -x "$prod" ] || { echo "dns: skipped ($prod is not built: make)"; exit 0; }

work=$(mktemp -d /tmp/berth-dns-bench.XXXXXX)
pids=
bpid=
cleanup() {
	[ -n "$bpid" ] && kill -TERM "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	for p in $pids; do kill "$p" 2>/dev/null; done
	# what the daemon left (killed, or a stop that timed out): its monitors
	for m in "$work"/state/ctr/*/monitor; do
		[ -f "$m" ] && kill -9 "$(sed -n 's/^monitor=//p' "$m")" 2>/dev/null
	done
	wait 2>/dev/null
	# the netns files a stopped daemon keeps for its next start
	for f in "$work"/state/netns/*; do
		[ -e "$f" ] && umount "$f" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

load() { cut -d' ' -f1 /proc/loadavg; }
wait_for() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "-" }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'; }

# One CPU for the servers, another for dnsperf, when there are two.
if [ "$(nproc)" -ge 2 ]; then srv_cpu=0; cli="taskset -c 1"; cpus="servers on CPU 0, dnsperf on CPU 1"
else srv_cpu=0; cli=; cpus="one CPU shared"; fi

# run SERVER PORT PID QUERIES: "qps lost us_cpu_per_answered_query" over $secs
# seconds at full load (dnsperf keeps $outstanding queries outstanding on 4
# sockets), from $client
run() {
	t0=$(cpu_ns "$3")
	$client $cli dnsperf -s "$1" -p "$2" -d "$4" -l "$secs" -c 4 -q "$outstanding" -t 2 >"$work/perf.out" 2>&1
	t1=$(cpu_ns "$3")
	awk -v t=$((t1 - t0)) '
		/Queries completed:/ { done = $3 }
		/Queries per second:/ { qps = $4 }
		/Queries lost:/ { lost = $3 }
		END { printf "%.0f %s %.2f\n", qps, lost, done ? t / 1000 / done : 0 }' "$work/perf.out"
}
# lat SERVER PORT QUERIES: "p50_ms p99_ms" at a fixed $rate queries/s for
# $lsecs seconds, from dnsperf -v's per-query times (latency, not queueing)
lsecs=${DNS_BENCH_LAT_SECONDS:-3}
rate=${DNS_BENCH_RATE:-10000}
lat() {
	$client $cli dnsperf -s "$1" -p "$2" -d "$3" -l "$lsecs" -Q "$rate" -c 4 -q 64 -v 2>&1 |
		awk '/^> / { print $NF }' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- -"; exit }
		i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "%.3f %.3f\n", v[i50] * 1000, v[i99] * 1000 }'
}

# The upstream both forwarders ask, answering fN.fwd.test with TTL 300.
dnsmasq --no-daemon --conf-file=/dev/null --listen-address=127.0.0.2 --port=53 --bind-interfaces \
	--no-resolv --no-hosts --local-ttl=300 --address=/fwd.test/192.0.2.7 2>"$work/up.err" &
pids="$pids $!"
wait_for "$work/up.err" started || { echo "dns: upstream dnsmasq did not start"; exit 0; }

# ---- headline: the product daemon ----------------------------------------
sh "$top/mk/busybox-rootfs.sh" "$(uname -m)" "$work/rootfs" >/dev/null 2>&1 ||
	{ echo "dns: skipped (no busybox root: busybox-static is not installed)"; exit 0; }
etc=$work/etc state=$work/state
mkdir -p "$etc/containers.d"
cat >"$etc/berth.ini" <<EOF
[daemon]
state_dir = $state
run_dir = $work/run
log_level = warn
[network default]
bridge = berth0
subnet = 10.88.0.0/16
[dns]
upstream = 127.0.0.2
cache = 4096
EOF
berth() { "$prod" -c "$etc" "$@"; }
running() { berth ps 2>/dev/null | grep -c ' running '; }

"$prod" daemon -c "$etc" --foreground >"$work/daemon.log" 2>&1 &
bpid=$!
for _ in $(seq 100); do berth status >/dev/null 2>&1 && break; sleep 0.1; done
berth status >/dev/null 2>&1 || { echo "dns: the daemon did not start: $(tail -3 "$work/daemon.log")"; exit 0; }
sleep 0.5
b_rss0=$(rss_kb $bpid)
i=1
while [ $i -le "$n" ]; do
	printf '[container]\nrootfs = %s\ncommand = sleep 1000000\nstop_timeout = 0\n' "$work/rootfs" \
		>"$etc/containers.d/c$i.ini"
	i=$((i + 1))
done
t0=$(date +%s)
berth reload >/dev/null 2>&1
up=0
while [ $(($(date +%s) - t0)) -lt 600 ]; do
	up=$(running)
	[ "$up" -ge "$n" ] && break
	sleep 1
done
t_up=$(($(date +%s) - t0))
[ "$up" -ge "$n" ] || echo "   warning: $up of $n containers running after $t_up s; measuring with those"
# every container's name and address, for dnsmasq and the queries
berth ps | awk 'NR > 1 { for (i = 2; i <= NF; i++) if ($i ~ /^10\.88\./) { print $i, $1 ".berth.internal"; break } }' \
	>"$work/hosts"
awk '{ print $2, "A" }' "$work/hosts" >"$work/auth.q"
awk '{ print "f" NR ".fwd.test A" }' "$work/hosts" >"$work/fwd.q"
names=$(wc -l <"$work/hosts")
sleep 1
b_rss1=$(rss_kb $bpid)
client="nsenter --net=$state/netns/c1"
last=$(tail -1 "$work/hosts")
[ "$($client dig +short @10.88.0.1 "${last#* }" 2>/dev/null)" = "${last%% *}" ] ||
	echo "   warning: berth does not answer ${last#* } from c1"
taskset -pc $srv_cpu $bpid >/dev/null

# dnsmasq beside it: the same address, port 5353, names from an addn-hosts
# file (empty, measured, then the names and SIGHUP).
: >"$work/dm.hosts"
taskset -c $srv_cpu dnsmasq --no-daemon --conf-file=/dev/null --listen-address=10.88.0.1 --port=5353 \
	--bind-interfaces --no-resolv --no-hosts --addn-hosts="$work/dm.hosts" --local-ttl=10 \
	--server=127.0.0.2 --cache-size=4096 2>"$work/dm.err" &
dpid=$!
pids="$pids $dpid"
wait_for "$work/dm.err" started || { echo "dns: dnsmasq did not start"; exit 0; }
sleep 0.5
d_rss0=$(rss_kb $dpid)
cp "$work/hosts" "$work/dm.hosts"
kill -HUP $dpid
wait_for "$work/dm.err" "$names names"
d_rss1=$(rss_kb $dpid)
[ "$($client dig +short -p 5353 @10.88.0.1 "${last#* }" 2>/dev/null)" = "${last%% *}" ] ||
	echo "   warning: dnsmasq does not answer ${last#* } from c1"
# warm both caches with every forwarded name once
$client dnsperf -s 10.88.0.1 -p 53 -d "$work/fwd.q" -n 1 >/dev/null 2>&1
$client dnsperf -s 10.88.0.1 -p 5353 -d "$work/fwd.q" -n 1 >/dev/null 2>&1

l0=$(load)
echo "DNS through the product daemon ($prod), $names containers, beside dnsmasq"
echo "(same names, same address; $cpus; queries from inside container c1;"
echo "median of $rounds x ${secs}s at full load: dnsperf -c 4 -q $outstanding; p50/p99 at $rate q/s)"
echo "daemon: $names containers running ${t_up} s after one reload"
printf '%-24s %9s %9s %7s  %-9s %-9s %7s  %-13s %-13s\n' "" "berth q/s" "dnsmasq" "ratio" \
	"berth" "dnsmasq" "ratio" "berth ms" "dnsmasq ms"
printf '%-24s %9s %9s %7s  %-19s %7s  %-13s %-13s\n' "" "" "" "" "CPU us/answer" "" \
	"p50/p99" "p50/p99"
for kind in auth fwd; do
	bq= dq= bc= dc= bl=0 dl=0
	for _ in $(seq "$rounds"); do
		set -- $(run 10.88.0.1 53 $bpid "$work/$kind.q"); bq="$bq $1" bl=$((bl + $2)) bc="$bc $3"
		set -- $(run 10.88.0.1 5353 $dpid "$work/$kind.q"); dq="$dq $1" dl=$((dl + $2)) dc="$dc $3"
	done
	bq=$(echo "$bq" | median) dq=$(echo "$dq" | median)
	bc=$(echo "$bc" | median) dc=$(echo "$dc" | median)
	set -- $(lat 10.88.0.1 53 "$work/$kind.q"); b50=$1 b99=$2
	set -- $(lat 10.88.0.1 5353 "$work/$kind.q"); d50=$1 d99=$2
	if [ $kind = auth ]; then label="authoritative ($names)"; else label="cached forwarded ($names)"; fi
	printf '%-24s %9s %9s %7s  %-9s %-9s %7s  %-13s %-13s\n' "$label" "$bq" "$dq" \
		"$(ratio "$bq" "$dq")" "$bc" "$dc" "$(ratio "$dc" "$bc")" "$b50/$b99" "$d50/$d99"
	[ "$bl" = 0 ] && [ "$dl" = 0 ] || echo "   (queries lost, 2 s timeout: berth $bl, dnsmasq $dl)"
	if [ $kind = auth ] && [ -n "${BENCH_ROWS:-}" ]; then
		printf 'DNS: server CPU us per answered query, %s names (dnsperf -c 4)\t%s\t%s\t%s\t%s\t%s\n' \
			"$names" "$bc" "$dc" "$(ratio "$dc" "$bc")" "≥ 2x (≤ 0.5x the CPU)" "$l0" >>"$BENCH_ROWS"
		printf 'DNS: queries/s at full load, %s names (servers on one CPU)\t%s\t%s\t%s\t%s\t%s\n' \
			"$names" "$bq" "$dq" "$(ratio "$bq" "$dq")" "≥ 1.5x berth/peer" "$l0" >>"$BENCH_ROWS"
	fi
done
echo "(ratios: berth's advantage; CPU ratio = dnsmasq / berth; load $l0 -> $(load))"
printf '%-34s %10s %10s\n' "RSS (KiB)" "berth" "dnsmasq"
printf '%-34s %10s %10s\n' "  no names" "$b_rss0" "$d_rss0"
printf '%-34s %10s %10s\n' "  $names names" "$b_rss1" "$d_rss1"
printf '%-34s %10s %10s\n' "  growth per name (bytes)" "$(((b_rss1 - b_rss0) * 1024 / names))" \
	"$(((d_rss1 - d_rss0) * 1024 / names))"
echo "  (berth: the whole daemon, everything it keeps per container; dnsmasq: its hosts names)"
kill -TERM $bpid
wait $bpid 2>/dev/null
bpid=
kill $dpid 2>/dev/null

# ---- micro-benchmark: the dns/ module in the test harness -----------------
echo
echo "Micro-benchmark (not the product): dns/ in the test harness dns_serve (-O2 glibc),"
echo "on loopback, beside dnsmasq; same names, same pinning, no daemon, bridge or firewall"
[ -x "$serve" ] || { echo "   skipped ($serve is not built: make test-build)"; exit 0; }
printf 'network default 10.88.0.0/16\n' >"$work/empty.rec"
cp "$work/empty.rec" "$work/full.rec"
awk '{ split($2, a, "."); print "container", a[1], "default", $1 }' "$work/hosts" >>"$work/full.rec"
cp "$work/empty.rec" "$work/serve.rec"
taskset -c $srv_cpu "$serve" -f "$work/serve.rec" -l 127.0.0.53 -u 127.0.0.2 >"$work/serve.out" 2>&1 &
spid=$!
pids="$pids $spid"
wait_for "$work/serve.out" ready || { echo "   dns_serve did not start: $(cat "$work/serve.out")"; exit 0; }
s_rss0=$(rss_kb $spid)
cp "$work/full.rec" "$work/serve.rec"
kill -HUP $spid
wait_for "$work/serve.out" reloaded
s_rss1=$(rss_kb $spid)
taskset -c $srv_cpu dnsmasq --no-daemon --conf-file=/dev/null --listen-address=127.0.0.54 --port=53 \
	--bind-interfaces --no-resolv --no-hosts --addn-hosts="$work/hosts" --local-ttl=10 \
	--server=127.0.0.2 --cache-size=4096 2>"$work/dm2.err" &
d2pid=$!
pids="$pids $d2pid"
wait_for "$work/dm2.err" "$names names" || { echo "   dnsmasq did not start"; exit 0; }
client=
sq= dq= sc= dc=
for _ in $(seq "$rounds"); do
	set -- $(run 127.0.0.53 53 $spid "$work/auth.q"); sq="$sq $1" sc="$sc $3"
	set -- $(run 127.0.0.54 53 $d2pid "$work/auth.q"); dq="$dq $1" dc="$dc $3"
done
sq=$(echo "$sq" | median) dq=$(echo "$dq" | median)
sc=$(echo "$sc" | median) dc=$(echo "$dc" | median)
printf '%-24s %9s %9s %7s  %-9s %-9s %7s\n' "" "dns/ q/s" "dnsmasq" "ratio" "dns/" "dnsmasq" "ratio"
printf '%-24s %9s %9s %7s  %-9s %-9s %7s\n' "authoritative ($names)" "$sq" "$dq" "$(ratio "$sq" "$dq")" \
	"$sc" "$dc" "$(ratio "$dc" "$sc")"
echo "(CPU us per answered query; record set of $names names: RSS $s_rss0 -> $s_rss1 KiB," \
	"$(((s_rss1 - s_rss0) * 1024 / names)) bytes per name)"
