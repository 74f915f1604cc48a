# reload.sh - reload wall time with 100 running containers, one of them
# removed: as the user sees it (`berth reload`, file edit to reply) and with
# --wait (until the removed container's process is gone). The removed one is
# either "deaf" (busybox sleep as PID 1 ignores SIGTERM: its stop_timeout of
# 10 s runs out) or exits on SIGTERM. Also the longest a DNS query waited
# while the reload ran. Product binary (BERTH_PROD overrides, e.g. an older
# build for a before/after), in a throwaway `unshare --net --mount`.
set -u
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${BERTH_PROD:-$top/build/$(uname -m)/berth}
[ -x "$bin" ] || { echo "   no product binary ($bin): run make"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "   reload: needs root (namespaces)"; exit 0; }
command -v python3 >/dev/null || { echo "   reload: needs python3"; exit 0; }
if [ -z "${RELOAD_IN_SANDBOX:-}" ]; then
	exec env RELOAD_IN_SANDBOX=1 unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up 2>/dev/null
N=${RELOAD_N:-100}
work=$(mktemp -d /tmp/berth-bench-reload.XXXXXX)
S=$work/state C=$work/etc
pid=
unmount_netns() {
	for f in "$S"/netns/*; do [ -e "$f" ] && umount "$f" 2>/dev/null; done
	return 0
}
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	for m in "$S"/ctr/*/monitor; do
		[ -f "$m" ] && kill -KILL "$(sed -n 's/^monitor=//p' "$m")" 2>/dev/null
	done
	unmount_netns
	rm -rf "$work"
}
trap cleanup EXIT
sh "$top/mk/busybox-rootfs.sh" "$(uname -m)" "$work/rootfs" >/dev/null 2>&1 ||
	{ echo "   reload: no busybox rootfs (busybox-static)"; exit 0; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
B() { "$bin" -c "$C" "$@"; }

# the longest wait for a DNS answer (ms) while the file named by $1 is absent
cat >"$work/probe.py" <<'PY'
import os, socket, struct, sys, time
stop = sys.argv[1]
q = struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\x02c1\x05berth\x08internal\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(15)
worst = 0.0
while not os.path.exists(stop):
    t = time.monotonic()
    s.sendto(q, ("10.88.0.1", 53))
    try:
        s.recvfrom(4096)
    except socket.timeout:
        pass
    worst = max(worst, time.monotonic() - t)
    time.sleep(0.01)
print("%.0f" % (worst * 1000))
PY

mkdir -p "$C/containers.d"
printf '[daemon]\nstate_dir = %s\nrun_dir = %s/run\n[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n[dns]\nupstream = 127.0.0.1\n' \
	"$S" "$work" >"$C/berth.ini"
i=1
while [ $i -le "$N" ]; do
	printf '[container]\nrootfs = %s/rootfs\ncommand = sleep 3600\n' "$work" >"$C/containers.d/c$i.ini"
	i=$((i + 1))
done
"$bin" daemon -c "$C" --foreground >>"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1500); do
	[ "$(B ps 2>/dev/null | grep -c ' running ')" = "$N" ] && break
	sleep 0.02
done
echo "   $N containers running; one removed by a reload          reply (ms)  --wait (ms)  DNS worst (ms)"
for kind in deaf quick; do
	name=c$N
	[ "$kind" = quick ] && name=q1 &&
		printf '[container]\nrootfs = %s/rootfs\ncommand = sh -c "trap \\"exit 0\\" TERM; while :; do sleep 1; done"\n' \
			"$work" >"$C/containers.d/q1.ini" && B reload >/dev/null 2>&1 &&
		for _ in $(seq 200); do B ps | grep -q '^q1 .*running' && break; sleep 0.02; done
	rm -f "$work/stop"
	python3 "$work/probe.py" "$work/stop" >"$work/probe.out" &
	probe=$!
	sleep 0.2
	rm "$C/containers.d/$name.ini"
	t0=$(date +%s%N)
	B reload >/dev/null 2>&1
	reply=$(ms "$t0")
	# --wait: a second reload with nothing to change waits for the stop
	B reload --wait >/dev/null 2>&1
	waited=$(ms "$t0")
	touch "$work/stop"; wait "$probe"
	case $kind in
	deaf) what="ignores SIGTERM (stop_timeout 10 s)" ;;
	quick) what="exits on SIGTERM" ;;
	esac
	printf '   %-52s %-11s %-12s %s\n' "$what" "$reply" "$waited" "$(cat "$work/probe.out")"
done
echo "   (an older berth without --wait answers the second reload at once: its first reply already waited)"
