# ctr_init.sh - init = yes (the default): berth's init is the container's
# PID 1 and the command its child; `berth stop` of busybox httpd (no SIGTERM
# handler) ends at once with 143 (128 + SIGTERM), not 137 after stop_timeout;
# orphans are reaped; the command's exit status is the container's. init = no
# keeps the command as PID 1 (stop takes stop_timeout, ends in SIGKILL, and
# orphans stay zombies). With the shipped (static) binary: the init is that
# binary, bind-mounted read-only at /dev/.berth-init, and `berth stop` of
# httpd takes less than 100 ms.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
# each process of the container: "PID PPID STATE (COMM) CMDLINE"
cat >"$R/procs.sh" <<'SH'
for d in /proc/[0-9]*; do
	read -r pid comm state ppid rest <"$d/stat" 2>/dev/null || continue
	[ "$pid" = $$ ] && continue
	echo "$pid $ppid $state $comm $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)"
done
SH
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = $R
command = httpd -f -p 80 -h /www
INI
cat >"$C/containers.d/legacy.ini" <<INI
[container]
rootfs  = $R
command = httpd -f -p 80 -h /www
init    = no
stop_timeout = 1
INI
# an orphan (the subshell's child), which ends once /tmp/go exists, under a
# command that never reaps: only an init collects it
cat >"$R/orphan.sh" <<'SH'
(sh -c 'while [ ! -e /tmp/go ]; do sleep 0.05; done' &)
exec sleep 1000
SH
cat >"$C/containers.d/orphans.ini" <<INI
[container]
rootfs  = $R
command = sh /orphan.sh
INI
cat >"$C/containers.d/zombies.ini" <<INI
[container]
rootfs  = $R
command = sh /orphan.sh
init    = no
INI
cat >"$C/containers.d/three.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'sleep 0.3; exit 3'
INI

field() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }
procs() { B exec "$1" -- sh /procs.sh; }
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
check_out "every container runs" "legacy running
orphans running
web running
zombies running" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name!=\"three\") | \"\(.name) \(.state)\"'"

# --- who is PID 1
check_out "with init, PID 1 in the container is berth's init" "berth-init" \
	B exec web -- cat /proc/1/comm
check "and httpd is its child" sh -c "'$BERTH' -c '$C' exec web -- sh /procs.sh | grep -q '^[0-9]* 1 S (httpd) httpd -f -p 80 -h /www \$'"
wpid=$(field web pid)
check_out "ps's pid is the init on the host; httpd is its one child" "httpd" \
	sh -c "cat /proc/\$(pgrep -P $wpid)/comm"
check_out "the init holds only stdin, stdout and stderr" "0 1 2" \
	sh -c "'$BERTH' -c '$C' exec web -- ls /proc/1/fd | sort -n | xargs"
check_out "and runs with no_new_privs and Docker's capabilities" "1 00000000a80425fb" \
	sh -c "'$BERTH' -c '$C' exec web -- sh -c 'echo \$(awk \"/NoNewPrivs/{print \\\$2}\" /proc/1/status) \$(awk \"/CapBnd/{print \\\$2}\" /proc/1/status)'"
check_out "with init = no, PID 1 is the command" "httpd" B exec legacy -- cat /proc/1/comm
check_out "inspect says whether berth's init runs (no, yes)" "false true" \
	sh -c "echo \$('$BERTH' -c '$C' inspect legacy | jq .init) \$('$BERTH' -c '$C' inspect web | jq .init)"

# --- orphans
orphan="^[0-9]* 1 S (sh) sh -c while"
check "an orphan goes to PID 1 (the init)" wait_for sh -c "'$BERTH' -c '$C' exec orphans -- sh /procs.sh | grep -q '$orphan'"
B exec orphans -- touch /tmp/go
check "once it ends the init reaps it: no zombie is left" wait_for sh -c "! '$BERTH' -c '$C' exec orphans -- sh /procs.sh | grep -q ' Z \\|$orphan'"
check_out "the command is still there" "1 S (sleep)" \
	sh -c "'$BERTH' -c '$C' exec orphans -- sh /procs.sh | awk '\$5 == \"sleep\" && \$6 == \"1000\" {print \$2, \$3, \$4}'"
check "with init = no, PID 1 (the command) adopts the orphan too" wait_for sh -c "'$BERTH' -c '$C' exec zombies -- sh /procs.sh | grep -q '$orphan'"
B exec zombies -- touch /tmp/go
check "but leaves it a zombie" \
	wait_for sh -c "'$BERTH' -c '$C' exec zombies -- sh /procs.sh | grep -q '^[0-9]* 1 Z (sh)'"

# --- exit status
check "a command that exits 3 ends the container" wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"three\") | .state')\" = exited ]"
check_out "inspect: exit_code 3" "3" sh -c "'$BERTH' -c '$C' inspect three | jq .exit_code"
check "ps: exited (3)" sh -c "'$BERTH' -c '$C' ps | grep '^three' | grep -q 'exited (3)'"

# --- stop
t0=$(date +%s%N)
out=$(B stop web 2>&1); rc=$?
t=$(ms "$t0")
check_out "berth stop web succeeds" "0 stopped web" echo "$rc $(echo "$out" | tail -1)"
# the test build is sanitized (each CLI start alone costs tens of ms on a
# loaded machine): the 100 ms of the issue are checked below with the
# shipped binary; here against the 10 s that SIGTERM-deaf httpd used to take
if [ "$t" -lt 1000 ]; then
	ok "berth stop of busybox httpd returns at once ($t ms; without init: 10 s)"
else
	not_ok "berth stop of busybox httpd returns at once" "took $t ms"
fi
check_out "httpd died of the forwarded SIGTERM: 143, not 137" "143" \
	sh -c "'$BERTH' -c '$C' inspect web | jq .exit_code"
check "the daemon logged it" grep -q "container web: exited with code 143" "$log"
check "no process of it is left" sh -c "! kill -0 $wpid 2>/dev/null"
t0=$(date +%s%N)
B stop legacy >/dev/null 2>&1
t=$(ms "$t0")
if [ "$t" -ge 900 ]; then
	ok "with init = no, stop waits for stop_timeout ($t ms; stop_timeout = 1)"
else
	not_ok "with init = no, stop waits for stop_timeout" "took $t ms"
fi
check_out "and ends in SIGKILL: 137" "137" sh -c "'$BERTH' -c '$C' inspect legacy | jq .exit_code"

# --- a reload that changes init restarts the container
opid=$(field orphans pid)
echo "init = no" >>"$C/containers.d/orphans.ini"
check_out "reload --dry-run names the change" "~ container orphans: init" B reload --dry-run
B reload --wait >/dev/null
check "changing init restarts the container (new pid)" sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"orphans\") | .pid')\" != $opid ]"
check_out "now without init" "sleep" B exec orphans -- cat /proc/1/comm

# --- the shipped binary: the init is it, bind-mounted read-only
kill -TERM "$pid"; wait "$pid"
check_out "the daemon stops with status 0" 0 echo $?
prod=
[ "$(uname -m)" = x86_64 ] && [ -x "${BERTH_X86_64:-}" ] && prod=$BERTH_X86_64
if [ -z "$prod" ]; then
	for what in "the shipped binary is the init" "mounted read-only" \
		"berth stop of httpd within 100 ms"; do
		skip "$what" "no shipped x86_64 binary at build/x86_64/berth (make)"
	done
	done_testing
fi
BERTH=$prod
start_daemon || { tail "$log"; skip_all "the shipped daemon did not start"; }
check "the shipped daemon starts web" sh -c "'$BERTH' -c '$C' start web | grep -q '^started web'"
check "with the shipped binary PID 1 is /dev/.berth-init init --child PID -- httpd ..." \
	sh -c "'$BERTH' -c '$C' exec web -- cat /proc/1/cmdline | tr '\\0' ' ' | grep -q '^/dev/.berth-init init --child [0-9]* -- httpd -f -p 80 -h /www \$'"
check_out "/dev/.berth-init is berth itself" "$(sha256sum <"$prod")" \
	sh -c "'$BERTH' -c '$C' exec web -- cat /dev/.berth-init | sha256sum"
check_out "mounted read-only, nosuid, nodev" "ro nosuid nodev" \
	sh -c "'$BERTH' -c '$C' exec web -- awk '\$5 == \"/dev/.berth-init\" { n = split(\$6, o, \",\"); for (i = 1; i <= n; i++) if (o[i] ~ /^(ro|nosuid|nodev)\$/) { printf \"%s%s\", s, o[i]; s = \" \" } }' /proc/self/mountinfo"
check_out "nothing in the container can write it (through /proc/1/exe either)" "no no" \
	sh -c "'$BERTH' -c '$C' exec web -- sh -c '(echo >>/dev/.berth-init) 2>/dev/null && echo yes || echo no; (echo >>/proc/1/exe) 2>/dev/null && echo yes || echo no' | xargs"
check "the rootfs got nothing: no .berth-init in the image" test ! -e "$R/dev/.berth-init"
# the issue's number, measured as a user runs it; the best of three, so that
# one unlucky moment of a loaded machine does not decide
best=100000
for _ in 1 2 3; do
	B start web >/dev/null 2>&1
	t0=$(date +%s%N)
	B stop web >/dev/null 2>&1 || continue
	t=$(ms "$t0")
	[ "$t" -lt "$best" ] && best=$t
done
if [ "$best" -lt 100 ]; then
	ok "berth stop of busybox httpd takes $best ms (best of 3; the issue asks < 100 ms)"
else
	not_ok "berth stop of busybox httpd takes less than 100 ms" "best of 3: $best ms"
fi
check_out "and it ends in SIGTERM (143)" "143" sh -c "'$BERTH' -c '$C' inspect web | jq .exit_code"
kill -TERM "$pid"; wait "$pid"
done_testing
