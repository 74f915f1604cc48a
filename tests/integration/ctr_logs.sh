# ctr_logs.sh - stdout and stderr of a container go to STATE_DIR/logs/NAME.log,
# capped at log_size with one rotation (NAME.log.1); `berth logs NAME`,
# `--tail N` and `-f` (which follows across a rotation).
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
# out: one line on stdout, one on stderr, then waits for /tmp/go (from exec)
# and writes 400 lines of ~110 bytes (44 KB: more than two log_size files),
# in chunks of 5.5 KB 0.3 s apart, so that a follower polling every 0.2 s
# sees each rotation (a burst of more than log_size between two polls is
# lost for it as it is for the log)
cat >"$R/burst.sh" <<'SH'
echo to-stdout
echo to-stderr >&2
while [ ! -e /tmp/go ]; do sleep 0.1; done
i=0
while [ $i -lt 400 ]; do
	echo "line $i ...................................................................................................."
	i=$((i + 1))
	[ $((i % 50)) = 0 ] && sleep 0.3
done
echo last-line
exec sleep 1000
SH
cat >"$C/containers.d/out.ini" <<INI
[container]
rootfs   = $R
command  = sh /burst.sh
log_size = 16K
stop_timeout = 1
INI

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }

wait_for grep -q to-stderr "$S/logs/out.log"
check_out "logs: stdout and stderr, in order" "to-stdout
to-stderr" B logs out
check_out "logs --tail 1" "to-stderr" B logs out --tail 1
check_out "logs --tail 0 prints nothing" "" B logs out --tail 0
check_out "logs of an unknown container is an error" "berth: no container named 'nope'" B logs nope
check_out "--tail takes a number" "berth: --tail takes a number of lines, not 'x'" B logs out --tail x

# follow: started before the burst, it must see every line after it, in order
B logs out -f >"$TMPDIR/follow.out" 2>&1 &
follow=$!
sleep 0.5
B exec out -- touch /tmp/go
wait_for grep -q last-line "$S/logs/out.log"
check "the log was rotated once: out.log.1 exists" test -f "$S/logs/out.log.1"
sz=$(stat -c %s "$S/logs/out.log"); sz1=$(stat -c %s "$S/logs/out.log.1")
if [ "$sz" -le 16384 ] && [ "$sz1" -le 16384 ]; then
	ok "both files stay within log_size = 16K ($sz1 + $sz bytes)"
else
	not_ok "both files stay within log_size = 16K" "out.log.1: $sz1, out.log: $sz"
fi
check "older lines were dropped (44 KB written, at most 32 KiB kept)" sh -c "! grep -q to-stdout '$S/logs/out.log' '$S/logs/out.log.1'"
check_out "logs prints the rotated file, then the current one, ending with the last line" "last-line" \
	sh -c "'$BERTH' -c '$C' logs out | tail -1"
check_out "logs shows a contiguous run of lines across the rotation" "ok" \
	sh -c "'$BERTH' -c '$C' logs out | grep '^line' | awk '{ if (NR > 1 && \$2 != prev + 1) bad = 1; prev = \$2 } END { print bad ? \"gap at \" prev : \"ok\" }'"
wait_for grep -q last-line "$TMPDIR/follow.out"
kill "$follow" 2>/dev/null; wait "$follow" 2>/dev/null
check_out "logs -f saw every line of the burst, across the rotation, in order" "400 ok" \
	sh -c "grep '^line' '$TMPDIR/follow.out' | awk '{ if (\$2 != NR - 1) bad = 1 } END { print NR, bad ? \"out of order\" : \"ok\" }'"
check "logs -f printed what was there before it started" grep -q to-stdout "$TMPDIR/follow.out"

kill -TERM "$pid"; wait "$pid"
check_out "the daemon stops with status 0" 0 echo $?
check_out "logs stay readable from the files after the stop" "last-line" sh -c "tail -1 '$S/logs/out.log'"
done_testing
