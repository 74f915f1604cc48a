#!/bin/sh
# run.sh - make bench: the benchmarks, in three parts, into build/bench/results.md
# (and on the terminal as they run):
#
# 1. Headline: the shipped binary (build/ARCH/berth: static, musl, -Os) end to
#    end, through its daemon and CLI as a user runs it, beside a peer doing the
#    same work in the same run, interleaved (netadd ports dns mem start image
#    svc). Each prints berth, the peer, the ratio, the goal and the machine's
#    load; the summary table at the top of results.md gathers those rows, and
#    netadd.svg draws ADD latency against N for berth and the peers.
# 2. berth alone, end to end (reload ctr remote config health): no peer does
#    the same.
# 3. Micro-benchmarks (attach nat ipam fw): library calls in an -O2 glibc build,
#    in-process, against peers that pay a process start per operation: their
#    ratios are "daemon-resident vs exec-per-call", not berth vs the peer.
#
# Benchmarks print; they never fail on speed. BENCH_ONLY="netadd mem" runs
# only those and rebuilds results.md with the others' latest outputs (each
# part says when it ran), e.g. to re-run a part a busy machine disturbed.
# The machine's load is printed with each part: on a shared machine, a
# figure taken under load is slower than the same on an idle one.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/bench
export BERTH_TOP="$top" BERTH="$top/build/test/berth" BERTH_PROD="$top/build/$(uname -m)/berth"
export BENCH_BIN="$top/build/test/bench" BENCH_OUT="$out"
# the micro-benchmarks' slowest peers (a process per call) are capped to keep
# make bench within about a quarter of an hour on a small machine
export PORTMAP_MAX="${PORTMAP_MAX:-300}" HOSTLOCAL_MAX="${HOSTLOCAL_MAX:-300}"
mkdir -p "$out"

headline="netadd.py ports.py dns.sh mem.py start.py image.py svc.py"
alone="reload.sh ctr.sh remote.sh config.sh health.sh"
micro="attach.sh nat.sh ipam.sh fw.sh"

wanted() {
	[ -z "${BENCH_ONLY:-}" ] && return 0
	for w in $BENCH_ONLY; do [ "$w" = "${1%.*}" ] && return 0; done
	return 1
}

# run one benchmark: its output on the terminal and in $out/NAME.txt
run_one() {
	b=$1
	wanted "$b" || return 0
	name=${b%.*}
	l0=$(cut -d' ' -f1 /proc/loadavg)
	t0=$(date +%s)
	echo "== $b"
	: >"$out/$name.txt"
	# a headline benchmark's rows for the summary
	export BENCH_ROWS="$out/$name.rows"
	: >"$BENCH_ROWS"
	case $b in
	*.py) python3 "$top/tests/bench/$b" ;;
	*) sh "$top/tests/bench/$b" ;;
	esac >"$out/$name.txt" 2>&1 &
	pid=$!
	tail -n +1 -f --pid=$pid "$out/$name.txt"
	wait $pid || echo "   ($b exited with status $?)" >>"$out/$name.txt"
	echo "   ($(($(date +%s) - t0)) s, load $l0 -> $(cut -d' ' -f1 /proc/loadavg)," \
		"$(date -u '+%Y-%m-%d %H:%M UTC'))" >>"$out/$name.txt"
	tail -n 1 "$out/$name.txt"
	echo
}

t_all=$(date +%s)
l_all=$(cut -d' ' -f1 /proc/loadavg)
for b in $headline $alone $micro; do
	run_one "$b"
done

# results.md: how and where, the summary, then each benchmark's own table
{
	echo "# berth benchmarks"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), berth $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?'),"
	echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r)," \
		"load $l_all at the start, $(cut -d' ' -f1 /proc/loadavg) at the end, $(($(date +%s) - t_all)) s in all."
	[ -n "${BENCH_ONLY:-}" ] &&
		echo "This run: BENCH_ONLY=\"$BENCH_ONLY\"; the other parts are from earlier runs (each says when)."
	echo "The load is the 1-minute average of runnable tasks: above the number of CPUs,"
	echo "other work (other builds and tests on a shared machine) was competing, and every"
	echo "figure taken then, berth's and the peers' alike, is slower than on an idle machine."
	echo "Interleaving (each tool in turn, in the same run) keeps the ratios fair under load."
	echo
	rows=
	for b in $headline; do
		[ -s "$out/${b%.*}.rows" ] && rows="$rows $out/${b%.*}.rows"
	done
	if [ -n "$rows" ]; then
		echo "## Summary (headline: the shipped binary end to end, beside a peer in the same run)"
		echo
		echo "| figure | berth | peer | peer / berth | goal | load |"
		echo "|---|---|---|---|---|---|"
		# shellcheck disable=SC2086
		awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' $rows
		echo
		echo "Ratios are the peer's figure over berth's: above 1, berth does the same work in"
		echo "less. DNS: see dns below. ADD latency against N: [netadd.svg](netadd.svg)."
		echo
	fi
	section() {
		echo "## $1"
		echo
		shift
		for b in "$@"; do
			[ -f "$out/${b%.*}.txt" ] || continue
			echo "### ${b%.*}"
			echo
			echo '```'
			cat "$out/${b%.*}.txt"
			echo '```'
			echo
		done
	}
	section "Headline: end to end, beside the peers" $headline
	section "berth alone, end to end (no peer does the same)" $alone
	section "Micro-benchmarks (in-process library calls, -O2 glibc build; peers pay a process per call: read the ratios as daemon-resident vs exec-per-call)" $micro
	echo "## Binary size"
	echo
	echo '```'
	"$top/mk/size.sh" "$top/build/$(uname -m)" 2>&1
	echo '```'
} >"$out/results.md"
echo "results: $out/results.md (and netadd.svg)"
