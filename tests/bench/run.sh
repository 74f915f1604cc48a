#!/bin/sh
# run.sh - make bench: run every tests/bench/*.sh in order. Each prints its own
# table of numbers, with the peer tools (CNI plugins, dnsmasq, iptables) beside
# berth where installed. Benchmarks print; they never fail on speed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export BERTH_TOP="$top" BERTH="$top/build/test/berth" BERTH_PROD="$top/build/$(uname -m)/berth"
export BENCH_BIN="$top/build/test/bench"
for b in "$top"/tests/bench/*.sh; do
	[ "$b" = "$top/tests/bench/run.sh" ] && continue
	echo "== ${b##*/}"
	sh "$b" || echo "   (${b##*/} exited with status $?)"
	echo
done
echo "binary size:"
"$top/mk/size.sh" "$top/build/$(uname -m)"
