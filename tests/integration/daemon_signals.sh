# daemon_signals.sh - the daemon runs in the foreground, reloads on SIGHUP and
# stops cleanly on SIGTERM and SIGINT.
. "$BERTH_TOP/tests/lib.sh"

log=$TMPDIR/daemon.log
wait_for_line() {  # FILE PATTERN: up to ~5 s
	for _ in $(seq 50); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

"$BERTH" daemon --foreground >"$log" 2>&1 &
pid=$!
check "the daemon says it started" wait_for_line "$log" "daemon started"
kill -HUP "$pid"
check "SIGHUP is a reload, not a stop" wait_for_line "$log" "SIGHUP: reload"
check "the daemon is still running after SIGHUP" kill -0 "$pid"
kill -TERM "$pid"
wait "$pid"; rc=$?
check_out "SIGTERM stops the daemon with status 0" 0 echo "$rc"
check "the daemon says it stopped" grep -q "stopped" "$log"

"$BERTH" daemon --foreground >"$log" 2>&1 &
pid=$!
wait_for_line "$log" "daemon started"
kill -INT "$pid"
wait "$pid"; rc=$?
check_out "SIGINT stops the daemon with status 0" 0 echo "$rc"

"$BERTH" daemon --bogus >"$log" 2>&1; rc=$?
check_out "an unknown daemon option is a usage error (exit 2)" 2 echo "$rc"
check "the unknown option is named" grep -q "unknown option '--bogus'" "$log"
done_testing
