# cli_events.sh - `berth events` as a user follows it: `events -f` sees a
# container start, its death with its exit code and a rejected reload with
# its error, as lines for people and as JSON Lines; --since and --type
# filter; the ring stays bounded; every reload (SIGHUP, `berth reload`) is
# logged with its outcome; the pid file in run_dir comes and goes with the
# daemon; Ctrl-C ends a follower cleanly.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox sqlite3

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = $R
command = httpd -f -p 80 -h /www
ports   = 8080:80/tcp
stop_timeout = 1
init    = no
INI

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
pidfile=$TMPDIR/run/berth.pid
check_out "run_dir/berth.pid holds the daemon's pid" "$pid" cat "$pidfile"

# ---- what happened before anyone looked -------------------------------------
check "events: the daemon's start" sh -c "'$BERTH' -c '$C' events | grep -q ' daemon started: pid $pid'"
check "events: web was created, from its rootfs" sh -c \
	"'$BERTH' -c '$C' events | grep -q ' container web created: rootfs $R\$'"
check "events: web started" sh -c "'$BERTH' -c '$C' events | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z container web started\$'"
check "events: its port was published, as docker port says it" sh -c \
	"'$BERTH' -c '$C' events | grep -q ' port web published ports=1: 80/tcp -> 0.0.0.0:8080\$'"
check "events -o json: an array that jq reads" sh -c \
	"'$BERTH' -c '$C' -o json events | jq -e 'type == \"array\" and length >= 4' >/dev/null"
check_out "each event has the same fields" \
	"action,attributes,container,id,message,object,time,type" sh -c \
	"'$BERTH' -c '$C' -o json events | jq -r '[.[] | keys | join(\",\")] | unique | .[]'"

# ---- following ----------------------------------------------------------------
# (the CLI itself in the background, not a shell function: $! is its pid)
"$BERTH" -c "$C" events -f >"$TMPDIR/follow.txt" 2>"$TMPDIR/follow.err" &
fpid=$!
"$BERTH" -c "$C" -o json events -f >"$TMPDIR/follow.json" 2>&1 &
jpid=$!
"$BERTH" -c "$C" events -f --type reload >"$TMPDIR/follow-reload.txt" 2>&1 &
rpid=$!
sleep 0.5
cat >"$C/containers.d/dier.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'sleep 0.5; exit 3'
restart = no
INI
check "reload adds a container that exits with 3" B reload
check "events -f sees it start" wait_for grep -q ' container dier started$' "$TMPDIR/follow.txt"
check "events -f sees it die with its exit code" \
	wait_for grep -q ' container dier died exit_code=3$' "$TMPDIR/follow.txt"
check "events -f sees the reload applied, with what changed" \
	wait_for grep -q ' reload config applied source=request changes=1 problems=0: + container dier$' \
	"$TMPDIR/follow.txt"
cat >"$C/containers.d/flaky.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'sleep 0.3; exit 1'
restart = on-failure
INI
mkdir -p "$C/policies.d"
printf '[policy]\nselect = all\n[ingress any]\nfrom = all\n' >"$C/policies.d/open.ini"
printf '[network second]\nbridge = berth1\nsubnet = 10.89.0.0/16\n' >>"$C/berth.ini"
check "reload: a container that fails, a policy, a network" B reload
check "events -f: the policy added" wait_for grep -q ' policy open added$' "$TMPDIR/follow.txt"
check "events -f: the network created" wait_for grep -q ' network second created$' "$TMPDIR/follow.txt"
check "events -f: flaky died with 1" wait_for grep -q ' container flaky died exit_code=1$' "$TMPDIR/follow.txt"
check "events -f: and its restart policy restarted it" \
	wait_for grep -q ' container flaky restarted$' "$TMPDIR/follow.txt"
rm "$C/containers.d/flaky.ini"
printf '[policy]\nselect = all\ntypes = ingress, egress\n[ingress any]\nfrom = all\n' >"$C/policies.d/open.ini"
check "reload: the policy changed, flaky removed" B reload
check "events -f: the policy changed, and which key" \
	wait_for grep -q ' policy open changed: types$' "$TMPDIR/follow.txt"
check "events -f: flaky removed" wait_for grep -q ' container flaky removed$' "$TMPDIR/follow.txt"
rm "$C/policies.d/open.ini"
sed -i '/^\[network second\]/,$d' "$C/berth.ini"
check "reload: policy and network gone" B reload
check "events -f: the policy removed" wait_for grep -q ' policy open removed$' "$TMPDIR/follow.txt"
check "events -f: the network removed" wait_for grep -q ' network second removed$' "$TMPDIR/follow.txt"
check "restart web" B restart web
check "events -f: web stopped by the restart, with its exit code" \
	wait_for grep -q ' container web stopped exit_code=' "$TMPDIR/follow.txt"
check "events -f: web restarted" wait_for grep -q ' container web restarted$' "$TMPDIR/follow.txt"
printf '[container]\nrootfs = %s\ncommand = true\nports = 9090:90/tpc\n' "$R" >"$C/containers.d/bad.ini"
out=$(B reload 2>&1); rc=$?
check_out "a broken file: reload is rejected (exit 1)" 1 echo "$rc"
check "events -f sees the rejected reload with its error" \
	wait_for grep -q " reload config rejected source=request errors=1: .*bad.ini:4: .*ports.*protocol" \
	"$TMPDIR/follow.txt"
rm "$C/containers.d/bad.ini"
kill -HUP "$pid"
check "a SIGHUP reload is an event too, and says where it came from" \
	wait_for grep -q ' reload config applied source=signal changes=0 problems=0: no changes$' \
	"$TMPDIR/follow.txt"
check "the log has every reload with its outcome" sh -c \
	"grep -q 'reload (request) applied: + container dier' '$log' &&
	 grep -q 'reload (request) rejected, the running configuration stays: 1 error:' '$log' &&
	 grep -q 'bad.ini:4: .*protocol' '$log' &&
	 grep -q 'reload (signal) applied: no changes' '$log'"

# --type while following: only reloads
wait_for grep -q 'source=signal' "$TMPDIR/follow-reload.txt"
check_out "events -f --type reload: the six reloads and nothing else" "6 6" sh -c \
	"printf '%s %s\n' \"\$(wc -l <'$TMPDIR/follow-reload.txt')\" \"\$(grep -c ' reload config ' '$TMPDIR/follow-reload.txt')\""

# JSON Lines
wait_for grep -q 'source=signal' "$TMPDIR/follow.json" || wait_for grep -q '"source":"signal"' "$TMPDIR/follow.json"
check "events -o json -f: one JSON object per line" sh -c \
	"jq -c . '$TMPDIR/follow.json' >/dev/null && [ \$(jq -s length '$TMPDIR/follow.json') = \$(wc -l <'$TMPDIR/follow.json') ]"
check_out "the death as JSON: container, action and the exit code as a number" '"dier" "died" 3' sh -c \
	"jq -r 'select(.type == \"container\" and .action == \"died\" and .container == \"dier\") | \"\\(.container|tojson) \\(.action|tojson) \\(.attributes.exit_code)\"' '$TMPDIR/follow.json'"
rejected=$(jq -c 'select(.type == "reload" and .action == "rejected")' "$TMPDIR/follow.json")
check "the rejected reload as JSON: its error in the message, the count a number" sh -c \
	'printf "%s" "$1" | jq -e ".attributes.errors == 1 and (.message | test(\"bad.ini:4\")) and (.time | test(\"^[0-9-]{10}T[0-9:]{8}Z$\"))"' _ "$rejected"

# Ctrl-C ends a follower cleanly
kill -INT "$fpid"; wait "$fpid"; rc=$?
check_out "Ctrl-C ends events -f with status 0" 0 echo "$rc"
check_out "and nothing on stderr" "" cat "$TMPDIR/follow.err"
kill -INT "$jpid" "$rpid"; wait "$jpid" "$rpid"

# ---- --since and --type ----------------------------------------------------------
now=$(date +%s)
check_out "--since in the future: nothing" "" B events --since $((now + 100))
check "--since 1h: everything so far" sh -c "'$BERTH' -c '$C' events --since 1h | grep -q 'daemon started'"
check "--since RFC 3339" sh -c "'$BERTH' -c '$C' events --since $(date -u -d @$((now - 3600)) +%Y-%m-%dT%H:%M:%SZ) | grep -q 'daemon started'"
check_out "--since RFC 3339 with an offset, in the future: nothing" "" \
	B events --since "$(date -d @$((now + 7200)) +%Y-%m-%dT%H:%M:%S+01:00)"
check_out "--type container: container events only" "container" sh -c \
	"'$BERTH' -c '$C' -o json events --type container | jq -r '[.[].type] | unique | .[]'"
check_out "--type port,reload (and repeated --type): those two" "port
reload" sh -c \
	"'$BERTH' -c '$C' -o json events --type port,reload --type reload | jq -r '[.[].type] | unique | .[]'"
out=$(B events --type bogus 2>&1); rc=$?
check_out "--type bogus: named, exit 1" "1 berth: unknown event type 'bogus' (container, network, reload, port, policy, image, cni or daemon)" echo "$rc $out"
out=$(B events --since yesterday 2>&1); rc=$?
check "--since yesterday: a usage error (exit 2) that says what is expected" \
	sh -c "[ $rc = 2 ] && printf '%s' \"\$1\" | grep -q 'expected RFC 3339'" _ "$out"
check "--since 10m with -f shows the recent past, then follows" sh -c \
	"timeout 2 '$BERTH' -c '$C' events -f --since 10m --type daemon | grep -q 'daemon started'"

# ---- over the remote TLS transport -------------------------------------------------
tls=$TMPDIR/tls
"$BERTH" tls init "$tls" --name localhost --ip 127.0.0.1 >/dev/null 2>&1
printf '[remote]\nlisten = 127.0.0.1:7443\ncert = %s\nkey = %s\nclient_ca = %s\n' \
	"$tls/server.crt" "$tls/server.key" "$tls/ca.crt" >>"$C/berth.ini"
check "reload opens the remote listener" B reload
"$BERTH" -r 127.0.0.1:7443 --cert "$tls/client.crt" --key "$tls/client.key" --ca "$tls/ca.crt" \
	events -f --type container >"$TMPDIR/remote.txt" 2>&1 &
tpid=$!
sleep 1
check "stop web" B stop web
check "events -f over TLS sees web stop" wait_for grep -q ' container web stopped exit_code=' "$TMPDIR/remote.txt"
# a wait ends after ~25 s without an event; the follower asks again
sleep 27
check "start web" B start web
check "and, after a long poll came back empty, web start again" \
	wait_for grep -q ' container web started$' "$TMPDIR/remote.txt"
check "the follower is still there" kill -0 "$tpid"
kill -INT "$tpid"; wait "$tpid"

# ---- the ring ---------------------------------------------------------------------
# 1,500 rows from another writer, then one event from the daemon: its insert
# trims the ring to its bound in the same transaction
sqlite3 "$S/state.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
	INSERT INTO events (time, kind, action, object, message, attrs) SELECT strftime('%s','now'), 'daemon', 'test', 'x', 'filler ' || i, '' FROM n;" 2>&1
check "reload" B reload
check_out "the ring keeps 1000 events" 1000 sh -c "'$BERTH' -c '$C' -o json events | jq length"
check_out "the newest among them" "applied" sh -c "'$BERTH' -c '$C' -o json events | jq -r '.[-1].action'"

# ---- the pid file at exit ------------------------------------------------------------
"$BERTH" -c "$C" events -f --type daemon >"$TMPDIR/last.txt" 2>&1 &
lpid=$!
sleep 0.5
kill -TERM "$pid"; wait "$pid"
pid=
wait "$lpid"; rc=$?
check "a follower hears the daemon stop" grep -q ' daemon stopped: clean exit$' "$TMPDIR/last.txt"
check_out "then ends (exit 1: no daemon to follow)" 1 echo "$rc"
check "a clean exit removes the pid file" test ! -e "$pidfile"
check_out "and records the daemon's stop" "daemon stopped" \
	sqlite3 "$S/state.db" "SELECT kind || ' ' || action FROM events ORDER BY id DESC LIMIT 1"
done_testing
