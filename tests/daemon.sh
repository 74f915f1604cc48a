# daemon.sh - for shell tests that run the daemon (sourced after tests/lib.sh;
# C, the config directory, and S, its state_dir, default to $TMPDIR/etc and
# $TMPDIR/state):
#
#   busybox_world [LINE...]
#                    a busybox root in $R and $C/berth.ini: one network
#                    (berth0, 10.88.0.0/16), DNS forwarding to 127.0.0.1, and
#                    the given lines in [dns]; skips the test without busybox
#   B ARGS...        the CLI against that daemon
#   start_daemon     start it in the background ($pid, output in $log) and
#                    wait until it answers (1 if it never does) and its
#                    containers' starts are done
#   wait_for CMD...  up to ~10 s for CMD to succeed
#   world_ns         a namespace "world" behind a veth (192.0.2.2, the host
#                    192.0.2.1) with no route to the containers; world CMD...
#                    runs a command there
#   cni VERB [VAR=VALUE...] < NETCONF
#                    run berth as a CNI plugin as a runtime does (env -i, only
#                    the variables given, BERTH_SOCKET passed on); its stdout
#                    in $out, its exit status in $rc
#
# On exit, whatever happened, the daemon and every container monitor of $S
# are killed (each monitor checked by its command line first): a test never
# leaves a container behind on the host.
C=${C:-$TMPDIR/etc}
S=${S:-$TMPDIR/state}
busybox_world() {
	R=$TMPDIR/rootfs
	sh "$BERTH_TOP/mk/busybox-rootfs.sh" x86_64 "$R" >/dev/null 2>&1 ||
		skip_all "mk/busybox-rootfs.sh could not assemble a rootfs (busybox-static missing?)"
	mkdir -p "$C/containers.d"
	{
		printf '[daemon]\nstate_dir = %s\nrun_dir   = %s\n' "$S" "$TMPDIR/run"
		printf '[network default]\nbridge  = berth0\nsubnet  = 10.88.0.0/16\n[dns]\n'
		for line in "$@"; do printf '%s\n' "$line"; done
		printf 'upstream = 127.0.0.1\n'
	} >"$C/berth.ini"
}
cleanup() {
	[ -n "${pid:-}" ] && kill -KILL "$pid" 2>/dev/null
	for m in "$S"/ctr/*/monitor; do
		[ -f "$m" ] || continue
		p=$(sed -n 's/^monitor=//p' "$m")
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^berth monitor $S " &&
			kill -KILL "$p"
	done
	return 0
}
trap cleanup EXIT
B() { "$BERTH" -c "$C" "$@"; }
log=$TMPDIR/daemon.log
# The daemon answers before its containers' starts are done (they run on
# its loop): start_daemon also waits, a few seconds at most, until none is
# still starting, as a user who starts it and then looks would see it.
start_daemon() {
	"$BERTH" daemon -c "$C" --foreground >>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do B status >/dev/null 2>&1 && break; sleep 0.05; done
	B status >/dev/null 2>&1 || return 1
	for _ in $(seq 100); do
		B ps 2>/dev/null | awk 'NR > 1 && ($2 == "starting" || $2 == "created") { f = 1 } END { exit !f }' || return 0
		sleep 0.05
	done
	return 0
}
wait_for() {
	for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
world_ns() {
	ip netns add world
	ip link add wv0 type veth peer name wv1
	ip link set wv1 netns world
	ip addr add 192.0.2.1/24 dev wv0
	ip link set wv0 up
	ip -n world addr add 192.0.2.2/24 dev wv1
	ip -n world link set wv1 up
	ip -n world link set lo up
}
world() { ip netns exec world "$@"; }
cni() {
	_verb=$1; shift
	out=$(env -i PATH="$PATH" BERTH_SOCKET="${BERTH_SOCKET:-}" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
		UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" CNI_COMMAND="$_verb" "$@" "$BERTH")
	rc=$?
}
