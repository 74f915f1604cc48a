# health.sh - the daemon's CPU for health probes (issue 23): N containers
# (busybox httpd) probed every second by tcp, http and exec checks, against
# the same containers without a check, measured as the daemon's user+system
# CPU (/proc/PID/stat) over a window, per probe and in % of one CPU. The
# shipped binary, in a throwaway `unshare --net --mount`.
set -u
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${BERTH_PROD:-$top/build/$(uname -m)/berth}
N=${HEALTH_N:-100}
WINDOW=${HEALTH_WINDOW:-10}
[ -x "$bin" ] || { echo "   no product binary ($bin): run make"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "   health: needs root (namespaces)"; exit 0; }
if [ -z "${HEALTH_IN_SANDBOX:-}" ]; then
	exec env HEALTH_IN_SANDBOX=1 unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up 2>/dev/null
work=$(mktemp -d /tmp/berth-bench-health.XXXXXX)
S=$work/state C=$work/etc
pid=
unmount_netns() {
	for f in "$S"/netns/*; do [ -e "$f" ] && umount "$f" 2>/dev/null; done
	return 0
}
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	unmount_netns
	rm -rf "$work"
}
trap cleanup EXIT
sh "$top/mk/busybox-rootfs.sh" "$(uname -m)" "$work/rootfs" >/dev/null 2>&1 ||
	{ echo "   health: no busybox rootfs (busybox-static)"; exit 0; }
mkdir -p "$work/rootfs/www" 2>/dev/null
echo ok >"$work/rootfs/www/index.html"
B() { "$bin" -c "$C" "$@"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# one run: the daemon's CPU ticks over WINDOW seconds once all N run
run() {
	check=$1
	unmount_netns
	rm -rf "$C" "$S"
	mkdir -p "$C/containers.d"
	printf '[daemon]\nstate_dir = %s\nrun_dir = %s/run\nlog_level = warn\n[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n[dns]\nupstream = 127.0.0.1\n' \
		"$S" "$work" >"$C/berth.ini"
	i=1
	while [ $i -le "$N" ]; do
		{
			printf '[container]\nrootfs = %s/rootfs\ncommand = httpd -f -p 80 -h /www\nstop_timeout = 0\n' "$work"
			[ "$check" = none ] || printf 'health = %s\nhealth_interval = 1s\n' "$check"
		} >"$C/containers.d/c$i.ini"
		i=$((i + 1))
	done
	"$bin" daemon -c "$C" --foreground >>"$work/daemon.log" 2>&1 &
	pid=$!
	for _ in $(seq 1500); do
		[ "$(B ps 2>/dev/null | grep -c ' running ')" = "$N" ] && break
		sleep 0.04
	done
	sleep 2                         # the starts' own work is done
	t0=$(ticks "$pid")
	sleep "$WINDOW"
	t1=$(ticks "$pid")
	healthy=$(B -o json ps | grep -o '"health":"healthy"' | wc -l)
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null
	pid=
	echo $((t1 - t0)) "$healthy"
}

echo "   $N containers, each probed every second; the daemon's CPU over ${WINDOW} s (load $(cut -d' ' -f1 /proc/loadavg))"
echo "   check              CPU ms    % of a CPU   per probe (µs, minus no check)   healthy"
set -- $(run none)
base=$1
printf '   %-18s %-9s %-12s %-32s %s\n' "none" "$((base * 1000 / hz))" \
	"$(awk -v t="$base" -v hz="$hz" -v w="$WINDOW" 'BEGIN { printf "%.2f", 100 * t / hz / w }')" "-" "-"
for check in tcp:80 http:80/index.html "exec:true"; do
	set -- $(run "$check")
	printf '   %-18s %-9s %-12s %-32s %s\n' "$check" "$(($1 * 1000 / hz))" \
		"$(awk -v t="$1" -v hz="$hz" -v w="$WINDOW" 'BEGIN { printf "%.2f", 100 * t / hz / w }')" \
		"$(awk -v t="$1" -v b="$base" -v hz="$hz" -v n="$N" -v w="$WINDOW" 'BEGIN { printf "%.0f", 1e6 * (t - b) / hz / (n * w) }')" \
		"$2/$N"
done
