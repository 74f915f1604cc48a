# health.sh - health checks as a user sees them (issue 23, item 1): a tcp
# check becomes healthy; an http check turns unhealthy when its page is gone
# (404) and healthy again when it is back, with ps, inspect, events and
# metrics saying so, and the service's DNS answer losing and regaining that
# member; an exec check (test -f) with a start period; on_unhealthy =
# restart restarts the container; a listener that never answers is timed
# out; a container without a check has health null.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox dig

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal" "host     = yes"

# an httpd serving /tmp/www (the root is read-only; /tmp is the container's)
web_cmd="sh -c 'mkdir -p /tmp/www && echo ok >/tmp/www/health && exec httpd -f -p 80 -h /tmp/www'"
cat >"$C/containers.d/tcpc.ini" <<INI
[container]
rootfs  = $R
command = $web_cmd
health  = tcp:80
health_interval = 300ms
stop_timeout = 1
INI
for w in web1 web2; do
	cat >"$C/containers.d/$w.ini" <<INI
[container]
rootfs  = $R
command = $web_cmd
service = web
health  = http:80/health
health_interval = 1s
health_timeout  = 1s
health_retries  = 2
stop_timeout = 1
INI
done
cat >"$C/containers.d/execc.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
health  = exec:test -f /tmp/ok
health_interval = 300ms
health_retries  = 1
health_start_period = 4s
stop_timeout = 1
INI
cat >"$C/containers.d/restarter.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
health  = exec:sh -c 'echo probing; exit 3'
health_interval = 300ms
health_retries  = 2
on_unhealthy = restart
stop_timeout = 1
INI
cat >"$C/containers.d/hang.ini" <<INI
[container]
rootfs  = $R
command = nc -ll -p 81 -e sleep 3600
health  = http:81/
health_interval = 300ms
health_timeout  = 500ms
health_retries  = 1
stop_timeout = 1
INI
cat >"$C/containers.d/slowexec.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
health  = exec:sleep 100
health_interval = 300ms
health_timeout  = 500ms
health_retries  = 1
stop_timeout = 1
INI
cat >"$C/containers.d/plain.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
stop_timeout = 1
INI

health() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .health"; }
is_health() { [ "$(health "$1")" = "$2" ]; }
ip_of() { B inspect "$1" | jq -r '.addresses[] | select(.family==4 or (.address|test("\\."))) | .address' 2>/dev/null | head -1 | sed 's,/.*,,'; }
web() { dig +short +time=1 +tries=1 @127.0.0.53 web.berth.internal A | sort | tr '\n' ' ' | sed 's/ $//'; }
web_is() { [ "$(web)" = "$1" ]; }
# up to ~N tenths of a second for CMD to succeed
wait_tenths() {
	n=$1
	shift
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
t0=$(date +%s)

check_out "execc: within its start period, failures leave it starting" "starting" health execc
check_out "a container without a check: health null in ps" "null" health plain
check_out "and in inspect" "null" sh -c "'$BERTH' -c '$C' inspect plain | jq -c .health"

check "tcp: healthy once connecting works" wait_for is_health tcpc healthy
check_out "inspect: status, a zero failing streak, the last probe's output and exit" \
	"healthy 0 connected to 127.0.0.1:80 0" \
	sh -c "'$BERTH' -c '$C' inspect tcpc | jq -r '.health | \"\(.status) \(.failing_streak) \(.last.output) \(.last.exit_code)\"'"
check "inspect: the last probe's time is RFC 3339" sh -c \
	"'$BERTH' -c '$C' inspect tcpc | jq -r .health.last.end | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\$'"
check "ps has a HEALTH column saying healthy" sh -c \
	"'$BERTH' -c '$C' ps | head -1 | grep -q 'STATUS *HEALTH' && '$BERTH' -c '$C' ps | grep '^tcpc ' | grep -q ' healthy '"

# http: both members healthy, both in the service
check "http: web1 healthy" wait_for is_health web1 healthy
check "http: web2 healthy" wait_for is_health web2 healthy
ip1=$(ip_of web1)
ip2=$(ip_of web2)
both=$(printf '%s\n%s\n' "$ip1" "$ip2" | sort | tr '\n' ' ' | sed 's/ $//')
check_out "the service answers with both members" "$both" web
check "the page was fetched: its status line is the probe's output" sh -c \
	"'$BERTH' -c '$C' inspect web1 | jq -r .health.last.output | grep -q '^HTTP/1.[01] 200'"

# the page goes: 404, unhealthy within interval * retries (+ the probe and slack)
B exec web1 -- rm /tmp/www/health
t1=$(date +%s%N)
if wait_tenths 60 is_health web1 unhealthy; then
	ms=$(( ($(date +%s%N) - t1) / 1000000 ))
	ok "http 404: web1 unhealthy after ${ms} ms (interval 1 s x retries 2)"
	t2=$(date +%s%N)
	if wait_tenths 15 sh -c "[ \"\$(dig +short +time=1 +tries=1 @127.0.0.53 web.berth.internal A)\" = '$ip2' ]"; then
		ok "the service answer drops web1 within one interval ($(( ($(date +%s%N) - t2) / 1000000 )) ms after ps said so)"
	else
		not_ok "the service answer drops web1 within one interval" "answer: $(web)"
	fi
else
	not_ok "http 404: web1 unhealthy" "health: $(health web1); $(B inspect web1 | jq -c .health)"
fi
check_out "inspect: the failing streak and the 404" "unhealthy 404" sh -c \
	"'$BERTH' -c '$C' inspect web1 | jq -r '.health | \"\(.status) \(.last.output)\"' | sed 's,HTTP/1.[01] \\([0-9]*\\).*,\\1,'"
check "inspect: failing_streak >= retries" sh -c \
	"[ \"\$('$BERTH' -c '$C' inspect web1 | jq .health.failing_streak)\" -ge 2 ]"
check "events: web1 became unhealthy" sh -c \
	"'$BERTH' -c '$C' events | grep -q ' container web1 health_status health=unhealthy'"
check "events: web1 had become healthy before" sh -c \
	"'$BERTH' -c '$C' events | grep -q ' container web1 health_status health=healthy'"
check "metrics: a gauge per container and state" sh -c \
	"'$BERTH' -c '$C' metrics | grep -q '^berth_container_health{container=\"web1\",state=\"unhealthy\"} 1\$' &&
	 '$BERTH' -c '$C' metrics | grep -q '^berth_container_health{container=\"web1\",state=\"healthy\"} 0\$' &&
	 '$BERTH' -c '$C' metrics | grep -q '^berth_container_health{container=\"web2\",state=\"healthy\"} 1\$'"
check_out "web1 keeps running (on_unhealthy = none)" "running 0" sh -c \
	"'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web1\") | \"\(.state) \(.restarts)\"'"

# the page is back: healthy again, back in the service
B exec web1 -- sh -c 'echo ok >/tmp/www/health'
check "the page back: web1 healthy again" wait_for is_health web1 healthy
check "and back in the service's answer within one interval" wait_tenths 12 web_is "$both"

# a stopped member leaves the service
B stop web2 >/dev/null
check "web2 stopped: ps shows no health" wait_for is_health web2 null
check_out "and it left the service's answer" "$ip1" web
B start web2 >/dev/null
check "started again: starting, then healthy" wait_for is_health web2 healthy
check_out "and back in the service's answer" "$both" web

# exec with a start period: failures did not count until it ended
check "execc: unhealthy once its start period is over" wait_for is_health execc unhealthy
el=$(( $(date +%s) - t0 ))
if [ "$el" -ge 3 ]; then ok "not before the start period (4 s) ended (${el} s after start)"; else not_ok "start period respected" "unhealthy ${el} s after start"; fi
check "its failed probes were counted" sh -c \
	"[ \"\$('$BERTH' -c '$C' inspect execc | jq .health.failures)\" -ge 2 ]"
B exec execc -- touch /tmp/ok
check "exec: test -f /tmp/ok succeeds: healthy" wait_for is_health execc healthy
check_out "exec: the last exit code" "0" sh -c "'$BERTH' -c '$C' inspect execc | jq .health.last.exit_code"

# on_unhealthy = restart
check "restarter: restarted when unhealthy (restarts goes up)" wait_for sh -c \
	"[ \"\$('$BERTH' -c '$C' -o json ps | jq '.[] | select(.name==\"restarter\") | .restarts')\" -ge 1 ]"
check "events: restarter became unhealthy, then restarted" sh -c \
	"'$BERTH' -c '$C' events | grep -q ' container restarter health_status health=unhealthy' &&
	 '$BERTH' -c '$C' events | grep -q ' container restarter restarted'"
check "the probe's output is kept with its exit code" sh -c \
	"'$BERTH' -c '$C' inspect restarter | jq -r .health.last.output | grep -q 'probing'"

# a listener that never answers
check "hang: a probe that never gets an answer is timed out: unhealthy" wait_for is_health hang unhealthy
check "inspect says it timed out" wait_for sh -c \
	"'$BERTH' -c '$C' inspect hang | jq -r .health.last.output | grep -q 'timed out after 500 ms'"
check "exec: a command that outlives the timeout: unhealthy" wait_for is_health slowexec unhealthy
check "inspect says it timed out" wait_for sh -c \
	"'$BERTH' -c '$C' inspect slowexec | jq -r .health.last.output | grep -q 'timed out after 500 ms'"
check "after several probes" wait_for sh -c "[ \"\$('$BERTH' -c '$C' inspect slowexec | jq .health.failures)\" -ge 4 ]"
check "the timed-out commands were killed: at most the current probe's sleep runs" sh -c \
	"[ \"\$('$BERTH' -c '$C' exec slowexec -- ps -o comm,args | grep -c '^sleep *sleep 100')\" -le 1 ]"

# a reload changes a check in place: no restart
tpid=$(B -o json ps | jq -r '.[] | select(.name=="tcpc") | .pid')
sed -i 's/^health_interval = 300ms/health_interval = 200ms/' "$C/containers.d/tcpc.ini"
check "reload --dry-run names the changed key" sh -c "'$BERTH' -c '$C' reload --dry-run | grep -q 'container tcpc: health_interval'"
B reload >/dev/null
check_out "inspect: the new interval" "200" sh -c "'$BERTH' -c '$C' inspect tcpc | jq .health.check.interval_ms"
check_out "the container was not restarted" "$tpid healthy" sh -c \
	"'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"tcpc\") | \"\(.pid) \(.health)\"'"

# a check removed by a reload: the container is back in its service whatever it serves
B exec web1 -- rm /tmp/www/health
check "web1 unhealthy again" wait_for is_health web1 unhealthy
check "and out of the service" wait_tenths 12 web_is "$ip2"
sed -i '/^health/d' "$C/containers.d/web1.ini"
B reload >/dev/null
check_out "its check removed: health null" "null" health web1
check "and back in its service at once" wait_tenths 5 web_is "$both"

# the daemon killed and started again adopts the containers and probes them again
kill -KILL "$pid"
wait "$pid" 2>/dev/null
start_daemon || not_ok "the daemon started again" "$(tail -5 "$log")"
check_out "after a daemon restart: tcpc runs on (the same process)" "$tpid" sh -c \
	"'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"tcpc\") | .pid'"
check "and is probed again: healthy" wait_for is_health tcpc healthy
check "web2 healthy again, and the only one of its service with a check" wait_for is_health web2 healthy
check "the service has both again" wait_tenths 20 web_is "$both"

# the daemon's loop never waited for any of it
check "the daemon answers promptly throughout" sh -c "timeout 2 '$BERTH' -c '$C' status >/dev/null"
check "no probe is left a zombie of the daemon" wait_for sh -c \
	"! ps --ppid $pid -o stat= | grep -q Z"
[ "$_t_failed" = 0 ] || tail -40 "$log" | sed 's/^/# daemon: /'
done_testing
