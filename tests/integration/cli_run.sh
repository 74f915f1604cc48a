# cli_run.sh - the commands a docker user reaches for, as they see them:
# run -> ps -> rm (containers.d/NAME.ini appears and goes), run refusing a
# name that exists or an invalid spec (config check's file:line message, no
# file left), rm of a running container (refused; -f), kill -s, stop -t,
# stop/start twice (said once, exit 3), logs and exec with flags in any
# order, exec -it with a pseudo-terminal under script(1); JSON throughout.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox script

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal"
echo "hello from web" >"$R/www/index.html"
# a fixed container, to name the others by DNS and to hold a name
cat >"$C/containers.d/fixed.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
INI
# remote management on loopback: run and rm work over TLS too
"$BERTH" tls init "$TMPDIR/tls" --name localhost --ip 127.0.0.1 >/dev/null 2>&1
cat >>"$C/berth.ini" <<INI
[remote]
listen    = 127.0.0.1:7443
cert      = $TMPDIR/tls/server.crt
key       = $TMPDIR/tls/server.key
client_ca = $TMPDIR/tls/ca.crt
INI
RB() { "$BERTH" -r 127.0.0.1:7443 --cert "$TMPDIR/tls/client.crt" --key "$TMPDIR/tls/client.key" \
	--ca "$TMPDIR/tls/ca.crt" "$@"; }
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
cd "$TMPDIR" || exit 1
ln -s "$R" rootfs-rel

jstate() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }

# ---- run -> ps -> rm ----------------------------------------------------------------
out=$(B -o json run web --rootfs rootfs-rel -p 8080:80 -l app=web -e GREETING=hi \
	-- httpd -f -p 80 -h /www 2>&1)
check_out "run -o json answers with the container, its file and its state" \
	"web containers.d/web.ini running" sh -c "echo '$out' | jq -r '\"\(.name) \(.file) \(.state)\"'"
check "run -o json: the pid is a number" sh -c "echo '$out' | jq -e '.pid > 0'"
check "the file appeared" test -f "$C/containers.d/web.ini"
check "its rootfs is absolute (the CLI's directory made it so)" \
	grep -qx "rootfs  = $TMPDIR/rootfs-rel" "$C/containers.d/web.ini"
check_out "config check agrees with the file" "" sh -c "'$BERTH' config check -c '$C' >/dev/null"
check_out "ps: web runs" "running" jstate web state
ip=$(B -o json inspect web | jq -r '.addresses[] | select(.family=="ipv4") | .address')
case $ip in 10.88.*) ok "web got an address ($ip)" ;; *) not_ok "web got an address" "$ip" ;; esac
check_out "its command runs: fixed fetches its page by name" "hello from web" \
	B exec fixed -- wget -qO- http://web/
check_out "its label and environment are the ones given" "web hi" \
	sh -c "'$BERTH' -c '$C' -o json inspect web | jq -r '\"\(.labels.app) \(.env[0])\"' | sed 's/GREETING=//'"
check_out "its port is published" "8080 80 tcp" \
	sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.container==\"web\") | \"\(.host_port) \(.container_port) \(.proto)\"'"
check_out "run without -o json prints the name" "plain" \
	B run plain --rootfs "$R" -- sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
check_out "a command word with quotes and blanks survives the file" "it's a b;c" \
	sh -c "'$BERTH' -c '$C' run quoted --rootfs '$R' -- echo \"it's a b;c\" >/dev/null &&
		sleep 0.3 && cat '$S/logs/quoted.log'"
words=$(for i in $(seq 40); do printf 'env=%s ' "$i"; done)
labels=$(for i in $(seq 30); do printf -- '-l key%s=value%s ' "$i" "$i"; done)
# shellcheck disable=SC2086
B run long --rootfs "$R" $labels -- echo $words >/dev/null
check "a command and a label list longer than a line go on continuation lines" \
	sh -c "[ \$(grep -c '^	' '$C/containers.d/long.ini') -ge 2 ]"
check_out "and come back whole: 30 labels" "30" \
	sh -c "'$BERTH' -c '$C' -o json inspect long | jq '.labels | length'"
check_out "and 41 words of command ('env=N' starting a line is not a key)" "41" \
	sh -c "'$BERTH' -c '$C' -o json inspect long | jq '.command | length'"
B rm long >/dev/null
check_out "run over remote TLS: the file is the daemon's, the container runs" "far running" \
	sh -c "'$BERTH' -r 127.0.0.1:7443 --cert '$TMPDIR/tls/client.crt' --key '$TMPDIR/tls/client.key' --ca '$TMPDIR/tls/ca.crt' -o json run far --rootfs '$R' -- sleep 1000 | jq -r '\"\\(.name) \\(.state)\"'"
check "its file is in the daemon's containers.d" test -f "$C/containers.d/far.ini"
check_out "rm -f over remote TLS" "removed far (containers.d/far.ini)" RB rm -f far
check "and the file is gone" test ! -e "$C/containers.d/far.ini"

# ---- run refused ---------------------------------------------------------------------
check_out "run with a name that exists is refused" "1" \
	sh -c "'$BERTH' -c '$C' run web --rootfs '$R' -- true 2>/dev/null; echo \$?"
check "and says which file defines it" \
	sh -c "'$BERTH' -c '$C' run fixed --rootfs '$R' -- true 2>&1 | grep -q 'containers.d/fixed.ini'"
check_out "run with a bad -p gives config check's file:line message" \
	"containers.d/bad.ini:5: [container] ports: " \
	sh -c "'$BERTH' -c '$C' run bad --rootfs '$R' -p 80x:80 -- true 2>&1 | grep -o '^containers.d/bad.ini:[0-9]*: \[container\] ports: '"
check "and leaves no file behind" test ! -e "$C/containers.d/bad.ini"
check "a bad label: file:line, no file" \
	sh -c "'$BERTH' -c '$C' run bad --rootfs '$R' -l '-x=1' -- true 2>&1 | grep -q '^containers.d/bad.ini:[0-9]*: \[container\] labels' && test ! -e '$C/containers.d/bad.ini'"
check "an unknown network: file:line, no file" \
	sh -c "'$BERTH' -c '$C' run bad --rootfs '$R' --network nosuch -- true 2>&1 | grep -q '^containers.d/bad.ini:[0-9]*: \[container\] networks.*nosuch' && test ! -e '$C/containers.d/bad.ini'"
check "a rootfs that does not exist: preflight's file:line, no file" \
	sh -c "'$BERTH' -c '$C' run bad --rootfs /nonexistent -- true 2>&1 | grep -q '^containers.d/bad.ini:[0-9]*: .*/nonexistent' && test ! -e '$C/containers.d/bad.ini'"
check_out "-o json: the error and its details as one object" "true containers.d/bad.ini" \
	sh -c "'$BERTH' -c '$C' -o json run bad --rootfs '$R' -p 80x:80 -- true | jq -r '\"\(.error | test(\"rejected\")) \(.details[0] | split(\":\")[0])\"'"
check "nothing left in containers.d (no temporary file either)" \
	sh -c "test \"\$(ls -A '$C/containers.d' | sort | tr '\n' ' ')\" = 'fixed.ini plain.ini quoted.ini web.ini '"

# ---- rm ------------------------------------------------------------------------------
check_out "rm of a running container without -f is refused (exit 1)" "1" \
	sh -c "'$BERTH' -c '$C' rm web 2>/dev/null; echo \$?"
check "and says to stop it first or use -f" \
	sh -c "'$BERTH' -c '$C' rm web 2>&1 | grep -q 'stop it first.*rm -f'"
check "its file is still there" test -f "$C/containers.d/web.ini"
check_out "rm -f: says which file it removed" "removed web (containers.d/web.ini)" B rm -f web
check "the file is gone" test ! -e "$C/containers.d/web.ini"
check_out "ps: web is gone" "" jstate web state
check_out "its port is withdrawn" "" \
	sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.container==\"web\") | .host_port'"
check_out "rm of an exited container needs no -f; -o json" "quoted containers.d/quoted.ini true" \
	sh -c "'$BERTH' -c '$C' -o json rm quoted | jq -r '\"\(.name) \(.file) \(.removed)\"'"
check_out "rm of a name that does not exist" "1" sh -c "'$BERTH' -c '$C' rm nosuch 2>/dev/null; echo \$?"
check_out "and the round trip again: the name is free" "web" \
	B run -d web --rootfs "$R" -- sh -c 'trap "" TERM; echo started; while :; do sleep 1; done'
wait_for sh -c "'$BERTH' -c '$C' ps | grep -q '^web *running'"

# ---- kill -------------------------------------------------------------------------------
check_out "kill -s TERM to a process that ignores TERM: sent, it keeps running" "running" \
	sh -c "'$BERTH' -c '$C' kill -s TERM web >/dev/null && sleep 0.5 && '$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | .state'"
check_out "kill -o json says what it sent" "SIGHUP 1" \
	sh -c "'$BERTH' -c '$C' -o json kill --signal=HUP plain | jq -r '\"\(.signal) \(.signal_number)\"'"
wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '.[] | select(.name==\"plain\") | .state == \"exited\"'"
check_out "SIGHUP ended plain (berth's init forwarded it): exit code 129" "129" \
	sh -c "'$BERTH' -c '$C' -o json inspect plain | jq -r .exit_code"
check_out "kill -s 9 web: exited, 137" "exited 137" \
	sh -c "'$BERTH' -c '$C' kill -s 9 web >/dev/null; for i in \$(seq 50); do '$BERTH' -c '$C' -o json inspect web | jq -e '.state == \"exited\"' >/dev/null && break; sleep 0.1; done; '$BERTH' -c '$C' -o json inspect web | jq -r '\"\(.state) \(.exit_code)\"'"
check_out "kill of a stopped container fails" "1" sh -c "'$BERTH' -c '$C' kill web 2>/dev/null; echo \$?"
check_out "kill -s with no such signal is a usage error" "2" \
	sh -c "'$BERTH' -c '$C' kill -s NOPE fixed 2>/dev/null; echo \$?"

# ---- stop -t, stop twice, start twice -----------------------------------------------------
B start web >/dev/null
t0=$(date +%s%N)
B stop -t 1 web >/dev/null
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -ge 800 ] && [ "$ms" -lt 4000 ]; then
	ok "stop -t 1 of a process that ignores TERM takes about 1 s ($ms ms), not stop_timeout"
else
	not_ok "stop -t 1 of a process that ignores TERM takes about 1 s" "took $ms ms"
fi
B start web >/dev/null
B stop web >/dev/null 2>&1 &
first=$!
sleep 0.3
t0=$(date +%s%N)
B stop -t 1 web >/dev/null
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
if [ "$ms" -lt 4000 ]; then
	ok "stop -t 1 during a stop under way (stop_timeout 10 s) brings the SIGKILL nearer ($ms ms)"
else
	not_ok "stop -t 1 during a stop under way brings the SIGKILL nearer" "took $ms ms"
fi
wait "$first"
check_out "stop again: says so once, exit 3" "web is not running
3" sh -c "'$BERTH' -c '$C' stop web; echo \$?"
check_out "-o json: changed false, exit 3" "3 false" \
	sh -c "'$BERTH' -c '$C' -o json stop web >'$TMPDIR/j'; echo \$? \$(jq -r .changed '$TMPDIR/j')"
check_out "start: started" "started" sh -c "'$BERTH' -c '$C' start web | cut -d' ' -f1"
check_out "start again: says so once, exit 3" "3 web is already running" \
	sh -c "'$BERTH' -c '$C' start web >'$TMPDIR/o' 2>&1; echo \$? \$(cut -d' ' -f1-4 '$TMPDIR/o')"
check_out "start of a running one, -o json" "running false" \
	sh -c "'$BERTH' -c '$C' -o json start web | jq -r '\"\(.state) \(.changed)\"'"
check_out "stop -o json: one object" "web stopped true" \
	sh -c "'$BERTH' -c '$C' -o json stop -t 0 web | jq -r '\"\(.name) \(.state) \(.changed)\"'"
check_out "stop of an unknown container: -o json error object, exit 1" "1 no container named 'nosuch'" \
	sh -c "'$BERTH' -c '$C' -o json stop nosuch >'$TMPDIR/j'; echo \$? \$(jq -r .error '$TMPDIR/j')"
B start web >/dev/null

# ---- logs, flags in any order -------------------------------------------------------------
B run -d counter --rootfs "$R" -- sh -c 'i=1; while [ $i -le 3 ]; do echo line$i; i=$((i+1)); done; trap "exit 0" TERM; while :; do sleep 1; done' >/dev/null
wait_for grep -q line3 "$S/logs/counter.log"
check_out "logs --tail 1 NAME" "line3" B logs --tail 1 counter
check_out "logs NAME --tail 2" "line2
line3" B logs counter --tail 2
B logs -f counter >"$TMPDIR/follow1" 2>&1 &
f1=$!
B logs counter -f --tail 1 >"$TMPDIR/follow2" 2>&1 &
f2=$!
sleep 0.5
B exec counter -- sh -c 'echo line4 >/proc/1/fd/1'
wait_for grep -q line4 "$TMPDIR/follow2"
kill "$f1" "$f2" 2>/dev/null
check_out "logs -f NAME: everything, then what comes, in order" "line1
line2
line3
line4" cat "$TMPDIR/follow1"
check_out "logs NAME -f --tail 1" "line3
line4" cat "$TMPDIR/follow2"

# ---- exec: -i, -t, order ------------------------------------------------------------------
check_out "exec NAME -- CMD" "hi" B exec web -- echo hi
check_out "exec NAME CMD (no --)" "hi" B exec web echo hi
check_out "exec without -i: the command reads nothing" "" sh -c "echo piped | '$BERTH' -c '$C' exec web cat"
check_out "exec -i keeps stdin" "piped" sh -c "echo piped | '$BERTH' -c '$C' exec -i web cat"
# (script's stdin stays open a moment: its EOF would reach the pty as ^D)
check_out "exec -it under script(1): the command has a /dev/pts tty" "/dev/pts/0" \
	sh -c "sleep 1 | script -qec \"'$BERTH' -c '$C' exec -it web tty\" /dev/null | tr -d '\r'"
check_out "exec -i without -t has none" "not a tty" \
	sh -c "script -qec \"'$BERTH' -c '$C' exec -i web tty\" /dev/null | tr -d '\r'"
check_out "exec web -it -- CMD: flags after the name too; the exit status passes" "5" \
	sh -c "script -qec \"'$BERTH' -c '$C' exec web -it -- sh -c 'exit 5'\" /dev/null >/dev/null; echo \$?"
check_out "exec -t: the terminal's size reaches the command" "33 101" \
	sh -c "script -qec \"stty rows 33 cols 101; '$BERTH' -c '$C' exec -t web stty size\" /dev/null | tr -d '\r'"
check_out "exec -it: input typed reaches the command through the pty" "typed" \
	sh -c "printf 'typed\n' | script -qec \"'$BERTH' -c '$C' exec -it web head -n1\" /dev/null | tr -d '\r' | tail -n1"

# ---- run --health ---------------------------------------------------------------------------
check "run --health: the check's keys go into the file" sh -c "'$BERTH' -c '$C' run hc --rootfs '$R' \
	--health http:80/ --health-interval 200ms --health-retries 2 --on-unhealthy none \
	-- httpd -f -p 80 -h /www >/dev/null &&
	grep -qx 'health  = http:80/' '$C/containers.d/hc.ini' &&
	grep -qx 'health_interval = 200ms' '$C/containers.d/hc.ini'"
hc_healthy() { [ "$(B -o json ps | jq -r '.[] | select(.name == "hc") | .health')" = healthy ]; }
check "and its health check runs: healthy" wait_for hc_healthy
check "a bad --health: file:line, no file" \
	sh -c "'$BERTH' -c '$C' run bad --rootfs '$R' --health ftp:21 -- true 2>&1 | grep -q '^containers.d/bad.ini:[0-9]*: \[container\] health' && test ! -e '$C/containers.d/bad.ini'"
B rm -f hc >/dev/null 2>&1

# ---- run --image ----------------------------------------------------------------------------
mkdir -p "$TMPDIR/images"
if python3 "$BERTH_TOP/tests/helpers/mkimage.py" --rootfs "$R" --format docker-archive \
	--name reg.test/app:1 --out "$TMPDIR/images/app.tar" >/dev/null 2>&1 &&
	B image import "$TMPDIR/images/app.tar" >/dev/null 2>&1; then
	check_out "run --image: from an image in the store, its command replacing Cmd" "img running" \
		sh -c "'$BERTH' -c '$C' -o json run img --image reg.test/app:1 -- hold | jq -r '\"\\(.name) \\(.state)\"'"
	check "the file names the image" grep -qx "image   = reg.test/app:1" "$C/containers.d/img.ini"
	check_out "exec runs as the image's user" "1000" B exec img -- id -u
	check_out "rm -f" "removed img (containers.d/img.ini)" B rm -f img
else
	skip "run --image" "mkimage.py could not write the test image, or the import failed"
fi

done_testing
