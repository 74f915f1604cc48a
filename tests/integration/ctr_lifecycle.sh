# ctr_lifecycle.sh - containers outlive their daemon: SIGQUIT (upgrade) and
# kill -9 leave them running and logged, and the next daemon adopts and
# supervises them again (a later exit is restarted per policy); a killed
# monitor takes its container along; SIGTERM stops every container within its
# grace period; memory limits (cgroup v2) or a warning without cgroup v2.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
cat >"$R/ticker.sh" <<'SH'
trap 'echo got TERM; exit 0' TERM
i=0
while :; do echo "tick $i"; i=$((i + 1)); sleep 0.2; done
SH
cat >"$C/containers.d/ticker.ini" <<INI
[container]
rootfs  = $R
command = sh /ticker.sh
restart = always
stop_timeout = 5
INI
# ignores SIGTERM (berth's init forwards it, and sleep would obey)
cat >"$C/containers.d/stubborn.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "" TERM; sleep 1000'
stop_timeout = 2
INI
cat >"$C/containers.d/limited.ini" <<INI
[container]
rootfs  = $R
command = sleep 1000
memory  = 64M
cpus    = 0.5
stop_timeout = 1
INI

field() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }
ticks() { grep -c '^tick' "$S/logs/ticker.log"; }
alive() { kill -0 "$1" 2>/dev/null; }

start_daemon || skip_all "the daemon did not start"
tpid=$(field ticker pid); spid=$(field stubborn pid); lpid=$(field limited pid)
check_out "three containers run" "running running running" \
	echo "$(field ticker state) $(field stubborn state) $(field limited state)"

# --- memory limit
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
	check_out "memory.max is set in the container's cgroup" "67108864" cat /sys/fs/cgroup/berth/limited/memory.max
	check_out "cpu.max is set" "50000 100000" cat /sys/fs/cgroup/berth/limited/cpu.max
	B exec limited -- dd if=/dev/zero of=/dev/null bs=100M count=1 >/dev/null 2>&1; rc=$?
	check_out "a process allocating beyond the limit is killed (SIGKILL: 137)" 137 echo $rc
else
	skip "the memory limit kills a process allocating beyond it" \
		"no cgroup v2 here: /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup 2>/dev/null || echo missing), not cgroup2fs"
	check "without cgroup v2 the container runs anyway" alive "$lpid"
	check "and the log says why the limits are not applied" grep -q "^berth: warning: memory/cpus limits need cgroup v2" "$S/logs/limited.log"
	check_out "inspect shows the warning" \
		"memory/cpus limits need cgroup v2 (/sys/fs/cgroup is not cgroup2): running without them" \
		sh -c "'$BERTH' -c '$C' inspect limited | jq -r .warning"
	check "the daemon warned too" grep -q "container limited: memory/cpus limits need cgroup v2" "$log"
fi

# --- SIGQUIT: the daemon goes, the containers stay (an upgrade in place)
kill -QUIT "$pid"; wait "$pid"
check_out "SIGQUIT stops the daemon with status 0" 0 echo $?
check "the containers keep running without a daemon" sh -c "kill -0 $tpid && kill -0 $spid && kill -0 $lpid"
n1=$(ticks); sleep 1; n2=$(ticks)
if [ "$n2" -gt "$n1" ]; then ok "and the ticker's output is still logged ($n1 -> $n2 lines)"; else not_ok "output still logged without a daemon" "$n1 -> $n2"; fi
start_daemon
check_out "a new daemon adopts them: same pids, running" "running $tpid running $spid" \
	echo "$(field ticker state) $(field ticker pid) $(field stubborn state) $(field stubborn pid)"
check "it says so in its log" grep -q "container ticker: adopted its running monitor" "$log"
check_out "exec works into an adopted container" "ticker" B exec ticker -- hostname
kill -KILL "$tpid"
check "an adopted container that dies is noticed and restarted (restart = always)" \
	wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"ticker\") | \"\(.state) \(.restarts)\"')\" = 'running 1' ]"
tpid2=$(field ticker pid)
check "with a new pid" test "$tpid2" != "$tpid"
check_out "a stubborn container with restart = no was left alone" "$spid" field stubborn pid

# --- kill -9 of the daemon: the same, and then a monitor killed too
kill -KILL "$pid"; wait "$pid" 2>/dev/null
n1=$(ticks); sleep 1; n2=$(ticks)
if [ "$n2" -gt "$n1" ]; then ok "after kill -9 of the daemon the ticker runs and is logged ($n1 -> $n2)"; else not_ok "logged after kill -9" "$n1 -> $n2"; fi
start_daemon
check_out "the next daemon adopts it (same pid)" "running $tpid2" echo "$(field ticker state) $(field ticker pid)"
mon=$(grep '^monitor=' "$S/ctr/ticker/monitor" | cut -d= -f2)
kill -KILL "$mon"
check "a killed monitor takes its container along" wait_for sh -c "! kill -0 $tpid2"
check "and the daemon restarts it (restart = always)" \
	wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"ticker\") | \"\(.state) \(.restarts)\"')\" = 'running 2' ]"

# --- SIGTERM: every container stops within its grace period
tpid=$(field ticker pid); spid=$(field stubborn pid); lpid=$(field limited pid)
t0=$(date +%s)
kill -TERM "$pid"; wait "$pid"; rc=$?
t1=$(date +%s)
check_out "SIGTERM stops the daemon with status 0" 0 echo $rc
if [ $((t1 - t0)) -le 6 ]; then
	ok "within the longest grace period plus a margin ($((t1 - t0)) s; stubborn has 2 s)"
else
	not_ok "SIGTERM stop within the grace period" "took $((t1 - t0)) s"
fi
check "every container process is gone" sh -c "! kill -0 $tpid 2>/dev/null && ! kill -0 $spid 2>/dev/null && ! kill -0 $lpid 2>/dev/null"
check "the ticker got SIGTERM and ended by itself" grep -q "^got TERM$" "$S/logs/ticker.log"
check "the stubborn one was killed after its stop_timeout" grep -q "container stubborn: exited with code 137" "$log"
start_daemon
check "after a clean stop, the next daemon starts them afresh" sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"stubborn\") | .pid')\" != $spid ]"
check_out "and they run" "running running running" \
	echo "$(field ticker state) $(field stubborn state) $(field limited state)"
kill -TERM "$pid"; wait "$pid"
done_testing
