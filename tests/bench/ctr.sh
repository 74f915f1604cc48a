# ctr.sh - containers: time to start N busybox containers from a daemon start,
# one container's `berth start` (request to running), `berth exec true`, and the
# memory a monitor process costs. Product binary, in a throwaway
# `unshare --net --mount`, so the machine's network is never touched.
set -u
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${BERTH_PROD:-$top/build/$(uname -m)/berth}
[ -x "$bin" ] || { echo "   no product binary ($bin): run make"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "   ctr: needs root (namespaces)"; exit 0; }
if [ -z "${CTR_IN_SANDBOX:-}" ]; then
	exec env CTR_IN_SANDBOX=1 unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up 2>/dev/null
work=$(mktemp -d /tmp/berth-bench-ctr.XXXXXX)
S=$work/state C=$work/etc
pid=
# the netns files are mounts (kept across a daemon stop, as designed)
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
	{ echo "   ctr: no busybox rootfs (busybox-static)"; exit 0; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
B() { "$bin" -c "$C" "$@"; }

echo "   containers   all running after daemon start (ms)   per container (ms)"
for n in 10 50; do
	unmount_netns
	rm -rf "$C" "$S"
	mkdir -p "$C/containers.d"
	printf '[daemon]\nstate_dir = %s\nrun_dir = %s/run\n[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n[dns]\nupstream = 127.0.0.1\n' \
		"$S" "$work" >"$C/berth.ini"
	i=1
	while [ $i -le $n ]; do
		printf '[container]\nrootfs = %s/rootfs\ncommand = sleep 1000\nstop_timeout = 0\n' "$work" \
			>"$C/containers.d/c$i.ini"
		i=$((i + 1))
	done
	t0=$(date +%s%N)
	"$bin" daemon -c "$C" --foreground >>"$work/daemon.log" 2>&1 &
	pid=$!
	for _ in $(seq 600); do
		[ "$(B ps 2>/dev/null | grep -c ' running ')" = "$n" ] && break
		sleep 0.02
	done
	t=$(ms "$t0")
	printf '   %-12s %-39s %s\n' "$n" "$t" "$((t / n))"
	if [ "$n" = 10 ]; then
		best=; bexec=
		for r in 1 2 3 4 5; do
			B stop c1 >/dev/null
			t0=$(date +%s%N); B start c1 >/dev/null; t=$(ms "$t0")
			[ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t
			t0=$(date +%s%N); B exec c1 -- true; t=$(ms "$t0")
			[ -z "$bexec" ] || [ "$t" -lt "$bexec" ] && bexec=$t
		done
		echo "   berth start (one container, request to running, best of 5): $best ms"
		echo "   berth exec c1 -- true (best of 5): $bexec ms"
		mon=$(sed -n 's/^monitor=//p' "$S/ctr/c2/monitor")
		echo "   RSS: monitor $(awk '/VmRSS/{print $2}' /proc/$mon/status) kB," \
			"daemon $(awk '/VmRSS/{print $2}' /proc/$pid/status) kB with $n containers"
	fi
	t0=$(date +%s%N)
	kill -TERM "$pid"; wait "$pid"; pid=
	echo "   SIGTERM, all $n stopped (stop_timeout 0: SIGKILL at once): $(ms "$t0") ms"
done
