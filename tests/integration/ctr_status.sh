# ctr_status.sh - what `berth ps` says of containers that did not just run
# (issue 18 item 14): one that never started shows "-" for when it ended, not
# "20794d0h ago" (the epoch); one that ended while no daemon watched shows
# when it ended, as its monitor recorded.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal"
cat >>"$C/berth.ini" <<INI
[network lab]
bridge  = berth9
subnet  = 10.99.0.0/24
INI
printf '[container]\nrootfs  = %s\ncommand = sleep 3600\nnetworks = lab\n' "$R" \
	>"$C/containers.d/never.ini"
printf '[container]\nrootfs  = %s\ncommand = sh -c "trap \\"exit 0\\" TERM; sleep 3600 & wait"\n' "$R" \
	>"$C/containers.d/gone.ini"
# lab cannot be set up (a veth holds its bridge name): "never" never starts
ip link add berth9 type veth peer name berth9p || skip_all "cannot create a veth pair"

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
status() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .status"; }
B stop never >/dev/null 2>&1
check_out "a container that never started, stopped: its status is -" "-" status never
check "and no status anywhere counts from the epoch" sh -c "! '$BERTH' -c '$C' ps | grep -q '[0-9]\{4,\}d'"

wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"gone\") | .state')\" = running ]"
kill -KILL "$pid"; wait "$pid" 2>/dev/null
# the container ends while no daemon watches: its monitor records when
gpid=$(sed -n 's/^init=//p' "$S/ctr/gone/monitor")
kill -TERM "$gpid"
wait_for sh -c "[ -f '$S/ctr/gone/exit' ]"
start_daemon || { tail "$log"; skip_all "the daemon did not restart"; }
check "one that ended while the daemon was down says when (seconds ago)" \
	sh -c "status=\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"gone\") | .status'); echo \"\$status\"; echo \"\$status\" | grep -q '^exited (0) [0-9]s ago\$'"
done_testing
