#!/bin/sh
# run.sh - run berth's test layers and close with "N passed, N failed[, N skipped]".
#
#   tests/run.sh [build] [unit] [integration] [board] [fuzz]   (default: all, in that order)
#
# Every test program speaks TAP: "ok N - what", "not ok N - what", and
# "ok N - what # SKIP why". A program that exits 77 without output is one skip
# (its last line says why); one that exits non-zero without a "not ok" line is
# one failure. Integration tests run as root, each inside its own
# `unshare --net --mount` sandbox, so the machine's own network is never touched.
# The board layer boots the QEMU boards, this machine's architecture first
# (BOARDS overrides, e.g. BOARDS=qemu-x86_64), and counts each on-board step as
# a test; the other architecture's board runs under TCG in well under a minute.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
layers=${*:-build unit integration board fuzz}

export BERTH_TOP="$top"
export BERTH="${BERTH:-$top/build/test/berth}"            # sanitized flavour
export BERTH_X86_64="$top/build/x86_64/berth"
export BERTH_AARCH64="$top/build/aarch64/berth"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
TEST_TIMEOUT=${TEST_TIMEOUT:-600}

passed=0 failed=0 skipped=0
skip_reasons=
work=$(mktemp -d /tmp/berth-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

# ONLY=GLOB (e.g. ONLY='ctr_*'): run just the unit and integration tests
# whose file name matches, while working on them.
only() {
	case "${1##*/}" in
	${ONLY:-*}) return 0 ;;
	*) return 1 ;;
	esac
}

# count NAME OUTFILE RC: add the file's TAP results to the totals, print a line.
count() {
	name=$1 out=$2 rc=$3
	p=$(grep -cE '^ok [0-9]+' "$out" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# SKIP' "$out" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$out" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" = 77 ] && [ $((p + f + s)) = 0 ]; then
		s=1
		why=$(grep -v '^#* *$' "$out" | tail -1)
		skip_reasons="$skip_reasons
  $name: ${why:-no reason given}"
	elif [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ "$f" = 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc" >>"$out"
	fi
	if [ "$s" != 0 ]; then
		grep -E '^ok [0-9]+.*# SKIP' "$out" | while IFS= read -r l; do
			echo "  $name: ${l#*# SKIP }"
		done >>"$work/skips"
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	if [ "$f" != 0 ]; then
		echo "FAIL $name ($p passed, $f failed)"
		sed 's/^/    /' "$out"
	else
		echo "pass $name ($p passed${s:+, $s skipped})" | sed 's/, 0 skipped//'
	fi
}

run_one() {
	name=$1; shift
	out=$work/out
	timeout -k 10 "$TEST_TIMEOUT" "$@" >"$out" 2>&1 </dev/null
	rc=$?
	[ "$rc" = 124 ] && echo "not ok - timed out after ${TEST_TIMEOUT}s" >>"$out"
	count "$name" "$out" "$rc"
}

can_sandbox() {
	[ "$(id -u)" = 0 ] || { echo "integration tests need root (they create namespaces, bridges and nf_tables)"; return 1; }
	command -v unshare >/dev/null || { echo "unshare not found (util-linux)"; return 1; }
	unshare --net --mount true 2>/dev/null || { echo "unshare --net --mount is not permitted here"; return 1; }
	return 0
}

# can_board BOARD: say why it cannot run here, or succeed.
can_board() {
	[ -f "board/$1/board.conf" ] || { echo "no board/$1/board.conf"; return 1; }
	q=$(sed -n 's/^BOARD_QEMU=\([a-z0-9_-]*\).*/\1/p' "board/$1/board.conf")
	a=$(sed -n 's/^BOARD_ARCH=\([a-z0-9_]*\).*/\1/p' "board/$1/board.conf")
	for c in "$q" cpio busybox apt-get python3; do
		command -v "$c" >/dev/null || { echo "$c is not installed (mk/deps.sh board)"; return 1; }
	done
	[ -x "build/$a/berth" ] || { echo "build/$a/berth is not built (make ARCH=$a)"; return 1; }
	return 0
}

for layer in $layers; do
	case $layer in
	build)
		for t in tests/build/*.sh; do
			[ -f "$t" ] && run_one "build/${t##*/}" sh "$t"
		done ;;
	unit)
		for t in build/test/unit/test_*; do
			[ -x "$t" ] || continue
			only "$t" || continue
			tmp=$(mktemp -d "$work/unit.XXXXXX")
			TMPDIR=$tmp run_one "unit/${t##*/}" "$t"
			rm -rf "$tmp"
		done ;;
	integration)
		if ! why=$(can_sandbox); then
			for t in tests/integration/*.sh; do
				[ -f "$t" ] || continue
				skipped=$((skipped + 1))
				echo "skip integration/${t##*/}: $why"
				echo "  integration/${t##*/}: $why" >>"$work/skips"
			done
			continue
		fi
		for t in tests/integration/*.sh; do
			[ -f "$t" ] || continue
			only "$t" || continue
			tmp=$(mktemp -d "$work/int.XXXXXX")
			# A fresh network and mount namespace per test: nothing it does
			# to links, routes, nf_tables or mounts reaches the machine.
			# Private tmpfs on /run and /var/lib keep sockets, netns mounts
			# and a default state_dir (/var/lib/berth) inside it too.
			TMPDIR=$tmp run_one "integration/${t##*/}" \
				unshare --net --mount --propagation private \
				sh -c 'mount -t tmpfs -o mode=0755 berth-test-run /run &&
					mount -t tmpfs -o mode=0755 berth-test-var /var/lib &&
					ip link set lo up && exec sh "$0"' "$t"
			rm -rf "$tmp"
		done ;;
	board)
		# a QEMU board boots the static berth from init and runs the
		# on-board scenario (board/board.sh); each step is one test
		boards=${BOARDS:-qemu-$(uname -m) $(ls -d board/qemu-* 2>/dev/null | sed 's|board/||' | grep -vx "qemu-$(uname -m)")}
		for b in $boards; do
			if ! why=$(can_board "$b"); then
				skipped=$((skipped + 1))
				echo "skip board/$b: $why"
				echo "  board/$b: $why" >>"$work/skips"
				continue
			fi
			run_one "board/$b" board/board.sh "$b" --tap
		done ;;
	fuzz)
		# every libFuzzer target over its committed corpus, briefly: a crash
		# or sanitizer report fails the run (make fuzz runs them longer)
		if ! command -v clang >/dev/null; then
			skipped=$((skipped + 1))
			echo "  fuzz: clang is not installed (mk/deps.sh test)" >>"$work/skips"
			continue
		fi
		for f in tests/fuzz/fuzz_*.c; do
			[ -f "$f" ] || continue
			name=${f##*/}; name=${name%.c}
			out=$work/out
			if make -s "build/fuzz/$name" >"$out" 2>&1 &&
			   FUZZ_SECONDS=${FUZZ_CI_SECONDS:-15} tests/fuzz/run.sh "build/fuzz/$name" >>"$out" 2>&1; then
				echo "ok 1 - $name: ${FUZZ_CI_SECONDS:-15}s over tests/fuzz/corpus/${name#fuzz_} without a crash" >>"$out"
			else
				echo "not ok 1 - $name crashed or failed to build" >>"$out"
			fi
			count "fuzz/$name" "$out" 0
		done ;;
	*)
		echo "run.sh: unknown layer '$layer' (build, unit, integration, board, fuzz)" >&2
		exit 2 ;;
	esac
done

if [ -n "$skip_reasons" ] || [ -s "$work/skips" ]; then
	echo "skipped:"
	[ -s "$work/skips" ] && cat "$work/skips"
	[ -n "$skip_reasons" ] && printf '%s\n' "$skip_reasons" | sed '/^$/d'
fi
if [ "$skipped" != 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
