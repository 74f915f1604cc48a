# ctr_restart.sh - restart policies (always, on-failure, no) with exponential
# back-off visible in ps; bad input (missing rootfs, a command absent from the
# rootfs, a crash loop, invalid memory/cpus) gives clear errors in ps, inspect
# and the log, and the daemon keeps running.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
ctr() {  # NAME RESTART COMMAND [ROOTFS]
	cat >"$C/containers.d/$1.ini" <<INI
[container]
rootfs  = ${4:-$R}
command = $3
restart = $2
INI
}
ctr crashloop on-failure "sh -c 'echo crash; exit 3'"
ctr okexit on-failure "sh -c 'echo done; exit 0'"
ctr always always "sh -c 'echo tick; exit 0'"
ctr once no "sh -c 'exit 5'"
ctr noroot always "true" /nonexistent/rootfs
ctr nocmd on-failure "no-such-command --flag"

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
field() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }
t0=$(date +%s)

sleep 4.5
# 1 s, 2 s, 4 s: by 4.5 s two restarts (one on a slow machine), never more than
# three (without back-off a crash loop would have hundreds)
n=$(field crashloop restarts)
if [ "$n" -ge 1 ] && [ "$n" -le 3 ]; then
	ok "on-failure: a crash loop is restarted with back-off 1, 2, 4 s ($n restarts after 4.5 s)"
else
	not_ok "on-failure: a crash loop is restarted with back-off (restarts after 4.5 s)" "got $n"
fi
check_out "ps shows it in back-off" "backoff" field crashloop state
check "STATUS says when the next try is" sh -c "'$BERTH' -c '$C' ps | grep '^crashloop' | grep -q 'backoff (next try in [0-9]*s)'"
check_out "inspect gives the last exit code" "3" sh -c "'$BERTH' -c '$C' inspect crashloop | jq .exit_code"
check "the log has every run's output" sh -c "[ \$(grep -c crash '$S/logs/crashloop.log') -ge 3 ]"
check_out "on-failure: a clean exit is not restarted" "exited 0" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"okexit\") | \"\(.state) \(.restarts)\"'"
check "STATUS of an exited container: its code" sh -c "'$BERTH' -c '$C' ps | grep '^okexit' | grep -q 'exited (0) [0-9]*s ago'"
n=$(field always restarts)
if [ "$n" -ge 1 ] && [ "$n" -le 3 ]; then
	ok "always: a clean exit is restarted too ($n restarts after 4.5 s)"
else
	not_ok "always: a clean exit is restarted too" "got $n restarts"
fi
check_out "no: not restarted, exit code kept" "exited 0 5" \
	sh -c "'$BERTH' -c '$C' inspect once | jq -r '\"\(.state) \(.restarts) \(.exit_code)\"'"

# bad input
check_out "a missing rootfs: the error in ps" "rootfs /nonexistent/rootfs: No such file or directory (ENOENT)" field noroot error
check_out "and in inspect" "rootfs /nonexistent/rootfs: No such file or directory (ENOENT)" \
	sh -c "'$BERTH' -c '$C' inspect noroot | jq -r .error"
check "and in its log" grep -q "^berth: cannot start noroot: rootfs /nonexistent/rootfs: No such file or directory (ENOENT)$" "$S/logs/noroot.log"
check_out "restart = always keeps trying it, with back-off" "backoff" field noroot state
check_out "a command absent from the rootfs: the error" \
	"command 'no-such-command' not found in the rootfs $R (PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)" \
	field nocmd error
check "start of it answers with the reason" sh -c "'$BERTH' -c '$C' start nocmd 2>&1 | grep -q \"^berth: container nocmd cannot start: command 'no-such-command' not found\""
check "the daemon logged it" grep -q "container nocmd: cannot start: command 'no-such-command' not found" "$log"

# a longer back-off: the 4th and 5th waits are 8 and 16 s; reset after 10 s up
sleep 3
n=$(field crashloop restarts)
left=$(B ps | awk '/^crashloop/{for (i=1;i<=NF;i++) if ($i=="in") print $(i+1)}' | tr -d 's)')
case $left in
''|*[!0-9]*) not_ok "the next try moves further out" "ps said: $(B ps | grep ^crashloop)" ;;
*) if [ "$left" -le 16 ]; then ok "the next try is at most 16 s out after $n restarts ($left s)"; else not_ok "back-off too long" "$left"; fi ;;
esac

# invalid memory / cpus: config check names them; a reload is refused whole
cat >"$C/containers.d/bad.ini" <<INI
[container]
rootfs = $R
command = true
memory = lots
cpus = -1
INI
check_out "invalid memory and cpus: config check names file:line, key and what is expected" \
	"containers.d/bad.ini:4: [container] memory: 'lots': expected bytes with an optional K, M or G suffix, at least 1M (e.g. 64M)
containers.d/bad.ini:5: [container] cpus: '-1': expected a number of CPUs from 0.001 to 1024 (e.g. 0.5)
2 errors" "$BERTH" config check -c "$C"
check "reload refuses it, the running containers stay" sh -c "! '$BERTH' -c '$C' reload >/dev/null 2>&1"
rm "$C/containers.d/bad.ini"
check "the daemon is still running after all this" kill -0 "$pid"
check "and answers" B status

kill -TERM "$pid"; wait "$pid"
check_out "SIGTERM stops the daemon (and the crash loops) with status 0" 0 echo $?
t1=$(date +%s)
echo "# took $((t1 - t0)) s"
done_testing
