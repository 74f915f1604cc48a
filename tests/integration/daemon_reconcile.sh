# daemon_reconcile.sh - the daemon as a user runs it: from a config directory to
# bridges, netns, addresses and DNS names; ps/inspect/ip/ports/dns/policy; reload
# (dry run, applied, rejected whole); one daemon per state directory; kill -9 and
# restart adopt everything without changing an address or dropping a connection.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq dig python3 nsenter ip busybox

C=$TMPDIR/etc
S=$TMPDIR/state
mkdir -p "$C/containers.d" "$C/policies.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run
log_level = debug

[network default]
bridge  = berth0
subnet  = 10.88.0.0/16
subnet6 = fd88::/64

[dns]
domain   = berth.internal
upstream = 127.0.0.1
host     = yes
INI
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
stop_timeout = 1
labels  = app=web, tier=frontend
ports   = 8080:80/tcp
service = websvc
INI
cat >"$C/containers.d/client.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
stop_timeout = 1
labels  = app=client
INI
cat >"$C/policies.d/web.ini" <<INI
[policy]
select = app=web
[ingress from-clients]
from  = app=client
ports = 80/tcp
INI

# the containers really run: never leave one behind (tests/daemon.sh)
. "$BERTH_TOP/tests/daemon.sh"

start_daemon; check_out "the daemon starts from a config directory and answers" 0 echo $?
check_out "ps lists both containers as running" "client running
web running" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | \"\(.name) \(.state)\"'"
web4=$(B -o json ps | jq -r '.[] | select(.name=="web") | [.addresses[] | select(.family=="ipv4") | .address] | join(",")')
web6=$(B -o json ps | jq -r '.[] | select(.name=="web") | [.addresses[] | select(.family=="ipv6") | .address] | join(",")')
cli4=$(B -o json ps | jq -r '.[] | select(.name=="client") | [.addresses[] | select(.family=="ipv4") | .address] | join(",")')
case $web4 in 10.88.*) ok "web got an IPv4 address in the subnet ($web4)" ;; *) not_ok "web got an IPv4 address" "$web4" ;; esac
case $web6 in fd88::*) ok "web got an IPv6 address in subnet6 ($web6)" ;; *) not_ok "web got an IPv6 address" "$web6" ;; esac
check "the bridge holds the gateway 10.88.0.1/16" sh -c "ip -j addr show berth0 | jq -e '.[0].addr_info[] | select(.local==\"10.88.0.1\" and .prefixlen==16)'"
inns() { nsenter --net="$S/netns/$1" sh -c "$2"; }
check_out "inside web's netns, eth0 has its address" "$web4/16" \
	inns web "ip -j addr show eth0 | jq -r '.[0].addr_info[] | select(.family==\"inet\") | \"\(.local)/\(.prefixlen)\"'"
check_out "inside web's netns, the default route is via the gateway" "10.88.0.1" \
	inns web "ip -j route show default | jq -r '.[0].gateway'"
client4=$(B -o json ps | jq -r '.[] | select(.name == "client") | [.addresses[] | select(.family=="ipv4") | .address] | join(",")')
check "web reaches client over IPv4" inns web "busybox ping -c1 -W2 $client4"
# policy web admits only 80/tcp from app=client: its ping is dropped
check_out "policy web drops client's ping to web" 1 sh -c "nsenter --net='$S/netns/client' busybox ping -c1 -W1 $web4 >/dev/null 2>&1; echo \$?"

check_out "DNS: web.berth.internal from the host" "$web4" dig +short +time=2 +tries=1 @10.88.0.1 web.berth.internal A
check_out "DNS: the bare name from inside client's netns" "$web4" \
	inns client "dig +short +time=2 +tries=1 @10.88.0.1 web A"
check_out "DNS: AAAA for web" "$web6" dig +short +time=2 +tries=1 @10.88.0.1 web.berth.internal AAAA
check_out "DNS: the service name" "$web4" dig +short +time=2 +tries=1 @10.88.0.1 websvc.berth.internal A
check_out "DNS: SRV for the declared port" "0 0 80 web.berth.internal." dig +short +time=2 +tries=1 @10.88.0.1 _80._tcp.websvc.berth.internal SRV
check_out "DNS: the host listener on 127.0.0.53" "$cli4" dig +short +time=2 +tries=1 @127.0.0.53 client.berth.internal A
check_out "DNS: an unknown container is NXDOMAIN" "NXDOMAIN" \
	sh -c "dig +time=2 +tries=1 @10.88.0.1 nosuch.berth.internal A | sed -n 's/.*status: \([A-Z]*\).*/\1/p'"
check_out "berth dns query web" "web.berth.internal A $web4" \
	sh -c "'$BERTH' -c '$C' -o json dns query web | jq -r '.[] | select(.type==\"A\") | \"\(.name) \(.type) \(.address)\"'"
out=$(B dns query nosuch 2>&1); rc=$?
check_out "berth dns query of an unknown name fails with NXDOMAIN" "1 berth: nosuch: no such name (NXDOMAIN)" echo "$rc $out"
check_out "inspect web names its netns and eth0" "$S/netns/web eth0 $web4" \
	sh -c "'$BERTH' -c '$C' inspect web | jq -r '\"\(.netns) \(.addresses[0].interface) \(.addresses[0].address)\"'"
out=$(B inspect nosuch 2>&1); rc=$?
check_out "inspect of an unknown container" "1 berth: no container named 'nosuch'" echo "$rc $out"
check_out "ip ls lists both IPv4 and IPv6 allocations" 4 sh -c "'$BERTH' -c '$C' -o json ip ls | jq length"
check_out "ports lists web's published port" "8080 web 80 tcp" \
	sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | \"\(.host_port) \(.container) \(.container_port) \(.proto)\"'"
check_out "policy ls: the web policy selects one container" "web 1 1" \
	sh -c "'$BERTH' -c '$C' -o json policy ls | jq -r '.[] | \"\(.name) \(.rules) \(.selected)\"'"
check "metrics are Prometheus text" sh -c "'$BERTH' -c '$C' metrics | grep -q '^berth_containers{state=\"running\"} 2$'"
check "metrics count DNS answers" sh -c "'$BERTH' -c '$C' metrics | grep -Eq '^berth_dns_queries_total\{result=\"noerror\"\} [1-9]'"

# --- a second daemon on the same state directory is refused
out=$("$BERTH" daemon -c "$C" --foreground 2>&1); rc=$?
check_out "a second daemon on the same state directory is refused" \
	"1 berth: another berth daemon (pid $pid) is using state directory $S" echo "$rc $out"

# --- reload: dry run, then applied
cat >"$C/containers.d/api.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
stop_timeout = 1
ports   = 9000:9000/udp
INI
check_out "reload --dry-run prints the difference" "+ container api" B reload --dry-run
check_out "and applies nothing" "" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"api\") | .name'"
check_out "reload applies it" "+ container api" B reload
api4=$(B -o json ps | jq -r '.[] | select(.name=="api") | [.addresses[] | select(.family=="ipv4") | .address] | join(",")')
check_out "the new container's name resolves" "$api4" dig +short +time=2 +tries=1 @10.88.0.1 api.berth.internal A
check_out "its port is recorded as published" "9000 api udp" \
	sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.container==\"api\") | \"\(.host_port) \(.container) \(.proto)\"'"
check "and is in the kernel's port map, to api's address" \
	sh -c "nft list map inet berth ports4 | grep -q 'udp . 9000 : $api4 . 9000'"
sed -i 's/app=client/app=client, tier=backend/' "$C/containers.d/client.ini"
check_out "a label change is a change of that container only" "~ container client: labels" B reload --dry-run

# --- a broken config is rejected whole; the old one keeps serving
cat >"$C/containers.d/bad.ini" <<INI
[container]
rootfs = /
command = true
ports  = 8081:80/tpc
INI
out=$(B reload 2>&1); rc=$?
check_out "a broken reload exits 1" 1 echo "$rc"
check_out "and says why, with file:line, section and key" \
	"berth: reload rejected: 1 error in the configuration; the running configuration stays
containers.d/bad.ini:4: [container] ports: '8081:80/tpc': protocol must be tcp, udp or sctp" echo "$out"
check_out "the running config still answers DNS" "$web4" dig +short +time=2 +tries=1 @10.88.0.1 web.berth.internal A
check_out "and ps is unchanged" "api client web" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '[.[].name] | sort | join(\" \")'"
kill -HUP "$pid"; sleep 0.5
check "SIGHUP with a broken config is logged" grep -q "containers.d/bad.ini:4" "$log"
check "and the daemon keeps running" kill -0 "$pid"
rm "$C/containers.d/bad.ini"

# --- removing a container releases its address and its netns
rm "$C/containers.d/api.ini"
check_out "reload removes api (--wait: until its process is gone)" "~ container client: labels
- container api" sh -c "'$BERTH' -c '$C' reload --wait | grep -v '^stopp'"
check "api's netns file is gone" test ! -e "$S/netns/api"
check_out "api's address is released" "" sh -c "'$BERTH' -c '$C' -o json ip ls | jq -r '.[] | select(.container==\"api\") | .address'"

# --- kill -9 and restart: same addresses, established connection survives
# an echo server inside web's netns, and a client in client's netns that sends a
# line, waits for a go file, sends another (files, not fifos: nothing can hang)
nsenter --net="$S/netns/web" python3 - "$web4" "$TMPDIR/srv" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 80)); s.listen(1); s.settimeout(20)
open(sys.argv[2] + ".ready", "w").close()
c, _ = s.accept(); c.settimeout(20)
while True:
    d = c.recv(100)
    if not d: break
    c.sendall(d)
PY
srv=$!
for _ in $(seq 50); do [ -e "$TMPDIR/srv.ready" ] && break; sleep 0.1; done
nsenter --net="$S/netns/client" python3 - "$web4" "$TMPDIR/go" "$TMPDIR/cli.out" <<'PY' &
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
out = open(sys.argv[3], "w")
s.sendall(b"before\n"); out.write(s.recv(100).decode()); out.flush()
for _ in range(200):
    if os.path.exists(sys.argv[2]): break
    time.sleep(0.05)
s.sendall(b"after\n"); out.write(s.recv(100).decode()); out.flush()
PY
cli=$!
sleep 0.3
before=$(B -o json ip ls | jq -c 'sort_by(.container, .address)')
kill -9 "$pid"; wait "$pid" 2>/dev/null
start_daemon; rc=$?; [ $rc = 0 ] || tail -5 "$log" | sed "s/^/# /"; check_out "after kill -9 the daemon starts again" 0 echo $rc
check_out "every address is unchanged" "$before" sh -c "'$BERTH' -c '$C' -o json ip ls | jq -c 'sort_by(.container, .address)'"
touch "$TMPDIR/go"
wait "$cli" 2>/dev/null
check_out "a TCP connection into web established before kill -9 still works" "before
after" cat "$TMPDIR/cli.out"
kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null

kill -TERM "$pid"; wait "$pid"; rc=$?
check_out "SIGTERM stops the daemon with status 0" 0 echo "$rc"
start_daemon; check_out "start again after a clean stop" 0 echo $?
check_out "addresses are kept across a clean stop" "$before" sh -c "'$BERTH' -c '$C' -o json ip ls | jq -c 'sort_by(.container, .address)'"
kill -TERM "$pid"; wait "$pid"
done_testing
