# ctr_preflight.sh - a configuration that cannot start never costs a running
# container (issue 18 item 5): `config check` reports a missing rootfs as an
# error and a command the rootfs lacks as a warning; a reload with a missing
# rootfs is refused whole; a reload whose new command is absent leaves the
# old process running and says why; a daemon starting with a missing rootfs
# still brings up the other containers.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal"
printf '[container]\nrootfs  = %s\ncommand = sleep 3600\nstop_timeout = 1\n' "$R" \
	>"$C/containers.d/web.ini"
printf '[container]\nrootfs  = %s\ncommand = sh -c "trap \\"exit 0\\" TERM; while :; do sleep 1; done"\n' "$R" \
	>"$C/containers.d/other.ini"

check_out "config check: ok" "ok" sh -c "'$BERTH' config check -c '$C' | cut -d: -f1"
sed "s|^rootfs  = .*|rootfs  = $TMPDIR/nope|" "$C/containers.d/web.ini" >"$TMPDIR/web.missing"
sed 's|^command = .*|command = nginx -g daemon-off|' "$C/containers.d/web.ini" >"$TMPDIR/web.nocmd"
cp "$C/containers.d/web.ini" "$TMPDIR/web.good"

cp "$TMPDIR/web.missing" "$C/containers.d/web.ini"
out=$("$BERTH" config check -c "$C"); rc=$?
check_out "config check: a missing rootfs is an error (exit 1)" "1" echo "$rc"
check_out "naming file, line and the path" \
	"containers.d/web.ini:2: [container] rootfs $TMPDIR/nope: No such file or directory (ENOENT)
1 error" echo "$out"
cp "$TMPDIR/web.nocmd" "$C/containers.d/web.ini"
"$BERTH" config check -c "$C" >"$TMPDIR/out"; rc=$?
check_out "config check: a command the rootfs lacks is a warning (exit 0)" "0" echo "$rc"
check_out "naming the command and where it was looked for" \
	"warning: containers.d/web.ini:3: [container] command 'nginx' is not found in the rootfs $R (PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin): the container would fail to start" \
	grep '^warning' "$TMPDIR/out"
check_out "a command found through the rootfs's symlinks is fine" "" \
	sh -c "sed 's|^command = .*|command = /bin/sleep 1|' '$TMPDIR/web.good' >'$C/containers.d/web.ini'; '$BERTH' config check -c '$C' | grep warning"

cp "$TMPDIR/web.good" "$C/containers.d/web.ini"
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
state() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }
wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | .state')\" = running ]"
wpid=$(state web pid)

cp "$TMPDIR/web.missing" "$C/containers.d/web.ini"
B reload >"$TMPDIR/out" 2>&1; rc=$?
check_out "a reload with a missing rootfs is refused (exit 1)" "1" echo "$rc"
check "and says why" grep -q "web.ini:2: \[container\] rootfs $TMPDIR/nope" "$TMPDIR/out"
check_out "the running container is untouched" "running $wpid" sh -c "echo \$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | \"\(.state) \(.pid)\"')"

cp "$TMPDIR/web.nocmd" "$C/containers.d/web.ini"
B reload --wait >"$TMPDIR/out" 2>&1
check "a reload whose new command is absent says the old process keeps running" \
	grep -q "container web: its new configuration cannot start; the old process keeps running: command 'nginx' is not found" "$TMPDIR/out"
check_out "and it does" "running $wpid" sh -c "echo \$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | \"\(.state) \(.pid)\"')"
check "its process was never signalled" kill -0 "$wpid"
cp "$TMPDIR/web.good" "$C/containers.d/web.ini"
B reload >/dev/null 2>&1
check_out "the configuration it runs again: no restart" "running $wpid" sh -c "echo \$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | \"\(.state) \(.pid)\"')"

# start-up with a missing rootfs: that container fails, the other one runs
kill -TERM "$pid"; wait "$pid"
cp "$TMPDIR/web.missing" "$C/containers.d/web.ini"
start_daemon || { tail "$log"; not_ok "a daemon starts with one container's rootfs missing"; done_testing; }
ok "a daemon starts with one container's rootfs missing"
check "the other container runs" wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"other\") | .state')\" = running ]"
check "the one without its rootfs says why" sh -c \
	"'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | .error' | grep -q '$TMPDIR/nope'"
done_testing
