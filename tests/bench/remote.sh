#!/bin/sh
# remote.sh - make bench: one request's round trip through the CLI (`berth status`,
# process start included) over the local Unix socket and over mutual TLS on
# loopback (full handshake each time: ECDHE P-256, ECDSA certificates both ways),
# product binary, p50 and p90 of 50 runs each. Runs in its own network namespace.
set -u
if [ -z "${BENCH_REMOTE_SANDBOX:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "remote: skipped (needs root for a network namespace)"; exit 0; }
	BENCH_REMOTE_SANDBOX=1 exec unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up
top=${BERTH_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${BERTH_PROD:-$top/build/$(uname -m)/berth}
[ -x "$bin" ] || { echo "   no product binary ($bin): run make"; exit 0; }
work=$(mktemp -d /tmp/berth-remote-bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

"$bin" tls init "$work/tls" --name localhost --ip 127.0.0.1 >/dev/null
mkdir -p "$work/cfg"
cat >"$work/cfg/berth.ini" <<EOT
[daemon]
state_dir = $work/state
run_dir = $work/run
log_level = warn
[remote]
listen = 127.0.0.1:7443
cert = $work/tls/server.crt
key = $work/tls/server.key
client_ca = $work/tls/ca.crt
EOT
"$bin" -c "$work/cfg" daemon --foreground >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$work/run/berth.sock" ] && break; sleep 0.1; done

# times (µs) of 50 runs of "$@", sorted, one per line
measure() {
	for _ in $(seq 50); do
		t0=$(date +%s%N)
		"$@" >/dev/null || { echo "failed: $*" >&2; return 1; }
		echo $(( ($(date +%s%N) - t0) / 1000 ))
	done | sort -n
}
row() {  # WHAT FILE
	p50=$(sed -n 25p "$2") p90=$(sed -n 45p "$2")
	printf '   %-32s %4d.%03d %4d.%03d\n' "$1" $((p50 / 1000)) $((p50 % 1000)) $((p90 / 1000)) $((p90 % 1000))
}
measure "$bin" -s "$work/run/berth.sock" status >"$work/unix" || exit 0
measure "$bin" -r 127.0.0.1:7443 --cert "$work/tls/client.crt" --key "$work/tls/client.key" \
	--ca "$work/tls/ca.crt" status >"$work/tls.t" || exit 0
printf '   %-32s %8s %8s\n' "berth status round trip (ms)" p50 p90
row "Unix socket" "$work/unix"
row "mutual TLS (new handshake)" "$work/tls.t"
