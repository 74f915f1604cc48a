# image_pull_wait.sh - a container whose image must be pulled (issue 21):
# the reload that needs the pull returns at once, `ps` says "pulling N%"
# (and `image ls` shows the pull) while the pull tries, `rm` and `prune`
# wait for it, then the pull's error is the container's, a reload tries
# again, and the daemon exits at once in the middle of a pull. The
# registry is 127.0.0.1:9, where nothing listens: every try is refused and
# retried with back-off (about 7 s) before the pull fails. The containers
# already running are untouched throughout. The CLI's pull: exit 1 with the
# error; a progress bar on a terminal, a line per step otherwise.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = $R
command = sleep 1000
stop_timeout = 1
INI
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }
wpid=$(field web .pid)

cat >"$C/containers.d/late.ini" <<INI
[container]
image   = 127.0.0.1:9/late:1
command = true
INI
t0=$(date +%s)
check "a reload that needs a pull is applied" B reload
t1=$(date +%s)
check "without waiting for the pull ($((t1 - t0)) s)" test $((t1 - t0)) -le 2
check_out "ps: the container is pulling" "pulling" field late .state
check "ps: its status is 'pulling N%'" sh -c "'$BERTH' -c '$C' ps | grep '^late ' | grep -Eq 'pulling [0-9]+%'"
check "inspect says so too" sh -c "'$BERTH' -c '$C' inspect late | jq -e '.state == \"pulling\" and (.status | startswith(\"pulling\")) and .error == null'"
check "image ls shows the pull under way" \
	sh -c "'$BERTH' -c '$C' image ls | grep '^127.0.0.1:9/late:1 ' | grep -Eq 'pulling [0-9]+%'"
check "image ls -o json: its state and percent" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -e '.[] | select(.ref == \"127.0.0.1:9/late:1\") | .state == \"pulling\" and (.percent | type) == \"number\" and .digest == null'"
check "image status REF: the job's state" \
	sh -c "'$BERTH' -c '$C' -o json image status 127.0.0.1:9/late:1 | jq -e '.kind == \"pull\" and (.state | IN(\"queued\",\"resolving\",\"fetching\")) and .error == null'"
check_out "rm is refused while a pull runs" "berth: image jobs running: try again when they finish" \
	B image rm 127.0.0.1:9/late:1
check_out "so is prune" "berth: image jobs running: try again when they finish" B image prune
check_out "a start is refused, saying why" "berth: container late cannot start: its image 127.0.0.1:9/late:1 is being pulled" \
	sh -c "'$BERTH' -c '$C' start late 2>&1 | head -1"

for _ in $(seq 300); do
	st=$(field late .state)
	[ "$st" = pulling ] || break
	sleep 0.1
done
check_out "once the pull has failed, the container is in error" "error" echo "$st"
check "with the pull's error, naming the registry, and when it is tried again" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"late\") | .error' | grep '127.0.0.1:9' | grep -q 'next pull in'"
check_out "ps: its status" "image pull failed" field late .status
check "the daemon's log has the failed pull, naming the image once" \
	sh -c "grep 'image pull failed: 127.0.0.1:9/late:1: manifest 1: ' '$log' | grep -vq '127.0.0.1:9/late:.*127.0.0.1:9/late'"
check_out "web kept running all along" "running $wpid" field web '"\(.state) \(.pid)"'

# the CLI
check_out "berth image pull: exit 1 when the pull fails" "1" \
	sh -c "'$BERTH' -c '$C' image pull 127.0.0.1:9/other:1 >/dev/null 2>&1; echo \$?"
B image pull 127.0.0.1:9/other:2 >"$TMPDIR/pull.out" 2>"$TMPDIR/pull.err"
check "without a terminal: a line per step" grep -q '^pulling 127.0.0.1:9/other:2: resolving$' "$TMPDIR/pull.err"
check "and the pull's error, once, naming the image and the step" \
	sh -c "grep -c '^berth: image pull failed: 127.0.0.1:9/other:2: manifest 2: connect 127.0.0.1:9: ' '$TMPDIR/pull.err' | grep -qx 1"
script -qec "'$BERTH' -c '$C' image pull 127.0.0.1:9/other:3" /dev/null >"$TMPDIR/pull.tty" 2>&1
check "on a terminal: a progress bar" sh -c "tr '\\r' '\\n' <'$TMPDIR/pull.tty' | grep -Eq '^pulling 127.0.0.1:9/other:3  \\[-+\\] '"
check_out "image status of a failed pull" "failed" \
	sh -c "'$BERTH' -c '$C' -o json image status 127.0.0.1:9/other:3 | jq -r .state"
check_out "a bad reference is refused at once" "1" \
	sh -c "'$BERTH' -c '$C' image pull 'UPPER/Case' >/dev/null 2>&1; echo \$?"
check_out "import of a file that is not there" "1" \
	sh -c "cd '$TMPDIR' && '$BERTH' -c '$C' image import nothere.tar >/dev/null 2>&1; echo \$?"

# a reload tries again at once; the daemon does not wait for a pull to exit
check "a reload starts the pull again" B reload
check "the pull runs again" sh -c "'$BERTH' -c '$C' -o json image ls | jq -e 'any(.[]; .state == \"pulling\")'"
check_out "and the container waits for it again" "pulling" field late .state
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "the daemon exits within 5 s in the middle of a pull (the worker is cancelled)" \
	sh -c "! kill -0 $pid 2>/dev/null"
pid=
done_testing
