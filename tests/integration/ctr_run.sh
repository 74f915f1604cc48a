# ctr_run.sh - containers as a user sees them: their own hostname, resolv.conf,
# hosts and eth0 address; a read-only busybox root with /proc, /dev, /tmp;
# Docker's capabilities and no_new_privs; `berth exec` (DNS by name, exit
# status, env); ps/inspect; start/stop/restart; a reload restarts a container
# only when what it runs changed, and stops a removed one. web runs with
# init = no (its command is PID 1), client with berth's init (the default).
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal"
echo "hello from web" >"$R/www/index.html"
cat >"$R/check-proc.sh" <<'SH'
printf '%s ' "$(stat -c %t:%T /proc/timer_list)"
awk '$5 == "/proc/sys" { split($6, o, ","); print o[1] }' /proc/self/mountinfo
SH
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = $R
command = httpd -f -p 80 -h /www
labels  = app=web
ip      = 10.88.0.50
stop_timeout = 1
init    = no
INI
cat >"$C/containers.d/client.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'echo "hostname=\$(hostname)"; echo "greeting=\$GREETING"; trap "exit 0" TERM; while :; do sleep 1; done'
env     = GREETING=hello, world
labels  = app=client
restart = always
INI

state() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | .$2"; }

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
check_out "ps: both containers run" "client running
web running" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | \"\(.name) \(.state)\"'"
cpid=$(state client pid)
case $cpid in ''|null|0) not_ok "ps shows client's pid" "$cpid" ;; *) ok "ps shows client's pid ($cpid)" ;; esac
check_out "the pid is a process on the host: client's init (berth)" "berth-init" cat /proc/$cpid/comm
check_out "whose one child is client's shell" "sh" sh -c "cat /proc/\$(pgrep -P $cpid)/comm"
check "ps has STATE, PID, RESTARTS and STATUS columns" sh -c "'$BERTH' -c '$C' ps | head -1 | grep -q 'NAME *STATE *PID *RESTARTS *STATUS'"
check "STATUS says how long it is up" sh -c "'$BERTH' -c '$C' ps | grep '^client' | grep -q ' up [0-9]*s'"

# what the container's process sees
wait_for grep -q greeting "$S/logs/client.log"
check_out "the process sees its own hostname" "hostname=client" grep hostname= "$S/logs/client.log"
check_out "and its environment from the config" "greeting=hello, world" grep greeting= "$S/logs/client.log"
check_out "exec: /etc/resolv.conf points at the gateway with search DOMAIN" "nameserver 10.88.0.1
search berth.internal" B exec client -- cat /etc/resolv.conf
check_out "exec: /etc/hostname" "web" B exec web -- cat /etc/hostname
check_out "exec: eth0 has web's static address" "10.88.0.50/16" \
	sh -c "'$BERTH' -c '$C' exec web -- ip -4 -o addr show eth0 | awk '{print \$4}'"
check "exec: /etc/hosts names the container" sh -c "'$BERTH' -c '$C' exec web -- cat /etc/hosts | grep -q '^10.88.0.50	web.berth.internal web$'"
check_out "exec: pid 1 is the container's command" "httpd" \
	sh -c "'$BERTH' -c '$C' exec web -- cat /proc/1/comm"
check_out "exec: the host's processes are not visible" "" \
	sh -c "'$BERTH' -c '$C' exec web -- ps -o pid,comm | awk 'NR>1 && \$2 != \"httpd\" && \$2 != \"ps\"'"
check_out "exec resolves another container by name through berth's DNS" "10.88.0.50" \
	sh -c "'$BERTH' -c '$C' exec client -- nslookup web | awk '/^Address: /{print \$2}'"
check_out "exec: client fetches web's page by name" "hello from web" B exec client -- wget -qO- http://web/
check_out "exec passes the exit status through" "3" sh -c "'$BERTH' -c '$C' exec client -- sh -c 'exit 3'; echo \$?"
check_out "exec: a command absent from the rootfs is 127" "127" sh -c "'$BERTH' -c '$C' exec client -- no-such-cmd 2>/dev/null; echo \$?"
check_out "exec gets the container's environment" "hello, world" B exec client -- sh -c 'echo $GREETING'
check_out "exec: the working directory is /" "/" B exec client -- pwd
check_out "exec -i: stdin passes through" "piped" sh -c "echo piped | '$BERTH' -c '$C' exec -i client -- cat"
check_out "the rootfs is read-only" "ro" \
	sh -c "'$BERTH' -c '$C' exec client -- sh -c 'touch /newfile 2>/dev/null && echo rw || echo ro'"
check_out "/tmp is writable" "ok" B exec client -- sh -c 'echo x >/tmp/x && echo ok'
check "/dev has null, zero, full, random, urandom, tty, pts, shm" \
	B exec client -- sh -c 'for d in null zero full random urandom tty; do [ -c /dev/$d ] || exit 1; done; [ -d /dev/pts ] && [ -d /dev/shm ]'
check_out "Docker's default capability set (bounding)" "00000000a80425fb" \
	sh -c "'$BERTH' -c '$C' exec client -- grep CapBnd /proc/self/status | awk '{print \$2}'"
check_out "the container's init runs with no_new_privs" "1" \
	sh -c "'$BERTH' -c '$C' exec client -- grep NoNewPrivs /proc/1/status | awk '{print \$2}'"
check_out "/proc/timer_list is masked (/dev/null), /proc/sys is mounted read-only (as in Docker)" "1:3 ro" \
	B exec client -- sh /check-proc.sh
check_out "the host's state directory is not visible inside" "absent" \
	sh -c "'$BERTH' -c '$C' exec client -- sh -c '[ -e $S ] && echo present || echo absent'"
check_out "the container's init holds only stdin, stdout and stderr (nothing of berth's)" "0 1 2" \
	sh -c "'$BERTH' -c '$C' exec client -- ls /proc/1/fd | sort -n | xargs"
check_out "stdin is /dev/null" "/dev/null" B exec client -- readlink /proc/1/fd/0
check "inspect: state, pid, restarts, log" sh -c "'$BERTH' -c '$C' inspect client | jq -e '.state == \"running\" and .pid == $cpid and .restarts == 0 and (.log | endswith(\"/logs/client.log\"))'"

# stop / start / restart
check_out "stop: SIGTERM, and the CLI waits for the end" "stopping client (SIGTERM, SIGKILL after 10 s)
stopped client" B stop client
check_out "ps: client is stopped" "stopped" state client state
check "its process is gone" sh -c "! kill -0 $cpid 2>/dev/null"
check "a stopped container is not restarted by restart = always" sh -c "sleep 1.5; [ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"client\") | .state')\" = stopped ]"
check_out "exec into a stopped container is an error" "berth: container client is not running (stopped)" B exec client -- true
check "start runs it again" sh -c "'$BERTH' -c '$C' start client | grep -q '^started client (pid [0-9]*)$'"
check_out "ps: running again" "running" state client state
p1=$(state client pid)
check "restart gives it a new process" sh -c "'$BERTH' -c '$C' restart client >/dev/null && [ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"client\") | .pid')\" != $p1 ]"
check_out "an unknown container is an error" "berth: no container named 'nope'" B stop nope

# reload: labels do not restart, the command does; a removed container stops
wpid=$(state web pid)
sed -i 's/^labels  = app=web$/labels  = app=web, tier=front/' "$C/containers.d/web.ini"
B reload --wait >/dev/null
check_out "a label change does not restart the container" "$wpid" state web pid
sed -i 's|^command = httpd -f -p 80 -h /www$|command = httpd -f -p 8080 -h /www|' "$C/containers.d/web.ini"
B reload --wait >/dev/null
check "a command change restarts it (new pid)" sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"web\") | .pid')\" != $wpid ]"
check "and the old process is gone" sh -c "! kill -0 $wpid 2>/dev/null"
check_out "the new one listens on the new port" "hello from web" B exec client -- wget -qO- http://web:8080/
wpid=$(state web pid)
rm "$C/containers.d/web.ini"
B reload --wait >/dev/null
check "removing a container from the config stops its process" sh -c "! kill -0 $wpid 2>/dev/null"
check_out "and ps no longer lists it" "client" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[].name'"

kill -TERM "$pid"; wait "$pid"
check_out "the daemon stops with status 0" 0 echo $?
done_testing
