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
# systemd Type=notify: READY=1 once the control socket answers, STOPPING=1 on stop
python3 -c '
import socket,sys,os
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(5)
out=open(sys.argv[2],"w")
for _ in range(2):
    try:
        out.write(s.recv(256).decode()+"\n"); out.flush()
    except socket.timeout:
        break
' "$TMPDIR/notify.sock" "$TMPDIR/notify.out" &
listener=$!
# the daemon sends once: the listener must be bound first, however slowly
# python starts on a loaded machine
for _ in $(seq 100); do [ -S "$TMPDIR/notify.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$TMPDIR/notify.sock "$BERTH" daemon --foreground >"$log" 2>&1 &
pid=$!
wait_for_line "$TMPDIR/notify.out" READY=1
check "READY=1 reaches NOTIFY_SOCKET" grep -qx READY=1 "$TMPDIR/notify.out"
check "the control socket answers once READY=1 was sent" "$BERTH" status
kill -TERM "$pid"; wait "$pid"
wait_for_line "$TMPDIR/notify.out" STOPPING=1
check "STOPPING=1 is sent on SIGTERM" grep -qx STOPPING=1 "$TMPDIR/notify.out"
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
done_testing
