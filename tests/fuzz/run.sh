#!/bin/sh
# run.sh - run each libFuzzer target for FUZZ_SECONDS over its committed seed
# corpus (tests/fuzz/corpus/NAME/); new inputs go to build/fuzz/corpus/NAME/.
# A crash leaves its reproducer in build/fuzz/ and fails the run.
#   tests/fuzz/run.sh build/fuzz/fuzz_NAME...
set -u
secs=${FUZZ_SECONDS:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
for bin in "$@"; do
	name=${bin##*/}; name=${name#fuzz_}
	seeds=$top/tests/fuzz/corpus/$name
	work=$top/build/fuzz/corpus/$name
	mkdir -p "$work" "$seeds"
	echo "fuzz $name: ${secs}s"
	if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$top/build/fuzz/$name-" \
		"$work" "$seeds" >"$top/build/fuzz/$name.log" 2>&1; then
		tail -40 "$top/build/fuzz/$name.log"
		echo "fuzz $name: FAILED (reproducer in build/fuzz/$name-*)"
		fail=1
	else
		grep -E 'stat::number_of_executed_runs|cov:' "$top/build/fuzz/$name.log" | tail -2
	fi
done
exit $fail
