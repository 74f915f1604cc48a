# svc_vip.sh - services with virtual IPs as a user sees them (issue 23, items
# 2 and 3): a [service] gets a VIP from its network's service range and DNS
# names it (A, AAAA, SRV); 300 requests through the VIP reach all three
# healthy backends, each at least 20 %; IPv6 VIP; the host reaches it, and a
# published service port; round-robin spreads evenly; client-ip affinity
# keeps a client on one backend; a backend turned unhealthy gets no new
# request after one interval and no request fails; a service with no ready
# backend refuses at once (TCP reset, ICMP for UDP); a policy denying client
# -> backend denies client -> VIP, and `policy why` says so per backend; a
# reload adding and removing services while a connection runs through a VIP
# leaves it alone; the VIP stays the service's across a restart.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox dig python3 timeout

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
mkdir -p "$C/services.d" "$C/policies.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run
[network default]
bridge  = berth0
subnet  = 10.88.0.0/16
subnet6 = fd88::/64
service_range  = 10.96.0.0/24
service_range6 = fd96::/112
[dns]
domain = berth.internal
host   = yes
upstream = 127.0.0.1
[service web]
select = app=web
ports  = 80, 9000/tcp
INI
cat >"$C/services.d/rr.ini" <<INI
[service]
select  = app=web
ports   = 80
balance = round-robin
vip     = 10.96.0.50, fd96::50
INI
cat >"$C/services.d/sticky.ini" <<INI
[service]
select   = app=web
ports    = 81:80
affinity = client-ip 10m
publish  = 8088:81
INI
cat >"$C/services.d/empty.ini" <<INI
[service]
select = app=nothing
ports  = 80, 53/udp
INI
# Each backend serves its name at / and /health, and echoes on 9000.
for w in web1 web2 web3; do
	cat >"$C/containers.d/$w.ini" <<INI
[container]
rootfs  = $R
labels  = app=web
command = sh -c 'mkdir -p /tmp/www; echo $w >/tmp/www/index.html; echo ok >/tmp/www/health; nc -ll -p 9000 -e /bin/cat & exec httpd -f -p 80 -h /tmp/www'
health  = http:80/health
health_interval = 500ms
health_timeout  = 1s
health_retries  = 1
stop_timeout = 1
INI
done
cat >"$C/containers.d/solo.ini" <<INI
[container]
rootfs  = $R
labels  = app=solo
service = group
command = sh -c 'mkdir -p /tmp/www; echo solo >/tmp/www/index.html; exec httpd -f -p 80 -h /tmp/www'
stop_timeout = 1
INI
for c in cli friend; do
	cat >"$C/containers.d/$c.ini" <<INI
[container]
rootfs  = $R
labels  = app=$c
command = sh -c 'trap "exit 0" TERM; while :; do sleep 1; done'
stop_timeout = 1
INI
done

svc_field() { B -o json service ls | jq -r ".[] | select(.name==\"$1\") | $2"; }
vip4() { svc_field "$1" '.vips[] | select(test("\\."))'; }
vip6() { svc_field "$1" '.vips[] | select(test(":"))'; }
backends_are() { [ "$(svc_field "$1" .backends)" = "$2" ]; }
health_is() { [ "$(B -o json ps | jq -r ".[] | select(.name==\"$1\") | .health")" = "$2" ]; }
# N requests from container $1 to ADDR PORT: one backend name per line (the
# rootfs's static busybox wget cannot run in a container: nc speaks HTTP)
fetch_n() {
	B exec "$1" sh -c "i=0; while [ \$i -lt $2 ]; do printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $3 $4 | tail -1 | grep . || echo FAIL; i=\$((i+1)); done"
}
get() {  # CONTAINER ADDR [PORT]: the page, or "blocked"
	B exec "$1" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 $2 ${3:-80} 2>/dev/null | tail -1 | grep . || echo blocked"
}
# counts of each answer, "web1=N web2=N web3=N" (FAIL=N when any failed)
tally() { sort | uniq -c | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1 }'; }
at_least() {  # MIN TALLY: every backend of web1..3 has at least MIN, no FAIL
	for w in web1 web2 web3; do
		n=$(printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$w=//p")
		[ "${n:-0}" -ge "$1" ] || return 1
	done
	! printf '%s' "$2" | grep -q FAIL
}

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
for w in web1 web2 web3; do
	check "$w is healthy" wait_for health_is "$w" healthy
done
check "service ls: web has three ready backends" wait_for backends_are web 3
V=$(vip4 web)
V6=$(vip6 web)
check "web's VIP comes from the service range" sh -c "echo '$V' | grep -q '^10\\.96\\.0\\.'"
check "and its IPv6 VIP from service_range6" sh -c "echo '$V6' | grep -q '^fd96::'"
check_out "rr has the VIPs its file gives" "10.96.0.50 fd96::50" \
	sh -c "'$BERTH' -c '$C' -o json service ls | jq -r '.[] | select(.name==\"rr\") | .vips | join(\" \")'"
check_out "DNS: web.berth.internal is its VIP" "$V" dig +short @127.0.0.53 web.berth.internal A
check_out "DNS: and AAAA its IPv6 VIP" "$V6" dig +short @127.0.0.53 web.berth.internal AAAA
check_out "DNS: SRV per port" "0 0 80 web.berth.internal.
0 0 9000 web.berth.internal." sh -c "dig +short @127.0.0.53 _80._tcp.web.berth.internal SRV; dig +short @127.0.0.53 _9000._tcp.web.berth.internal SRV"
check_out "DNS: a container resolves the service to its VIP" "$V" \
	sh -c "'$BERTH' -c '$C' exec cli nslookup web.berth.internal | sed -n 's/^Address: *//p' | grep -v ':' | tail -1"

out=$(fetch_n cli 300 "$V" 80 | tally)
check "300 requests through the VIP reach all three, each at least 20 % ($out)" at_least 60 "$out"
out=$(fetch_n cli 30 "$V6" 80 | tally)
check "IPv6 VIP: 30 requests, none failing, spread ($out)" at_least 3 "$out"
# The host's requests: python (the rootfs's static busybox wget is not for
# the host either).
host_get() {  # URL: the body's last line, or FAIL
	python3 -c 'import sys, urllib.request
try: print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip().splitlines()[-1])
except Exception: print("FAIL")' "$1"
}
check_out "the host reaches the VIP too" "ok" host_get "http://$V/health"
out=$(fetch_n cli 30 10.96.0.50 80 | tally)
check_out "round-robin: 30 requests are 10 each" "web1=10 web2=10 web3=10" echo "$out"
out=$(fetch_n cli 20 "$(vip4 sticky)" 81 | tally)
check "affinity = client-ip: one client stays on one backend ($out)" \
	sh -c "echo '$out' | grep -Eq '^web[123]=20\$'"
out=$(for _ in $(seq 12); do host_get http://10.88.0.1:8088/; done | tally)
check "publish: the service's port on the host's address answers ($out)" \
	sh -c "echo '$out' | grep -Eq '^web[123]=12\$'"

# No ready backend: refused at once, not a timeout.
E=$(vip4 empty)
check "a service with no ready backend refuses TCP at once (reset)" python3 - "$E" <<'PY'
import socket, sys, time
t = time.monotonic()
try:
    socket.create_connection((sys.argv[1], 80), timeout=3)
    sys.exit("connected")
except ConnectionRefusedError:
    sys.exit(0 if time.monotonic() - t < 1 else "refused, but slowly")
PY
# (the host's own datagram is rejected in output: its send fails at once)
check "and UDP from the host at once (the send is refused)" python3 - "$E" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 53))
try:
    s.send(b"x")
    s.recv(100)
    sys.exit("an answer")
except (ConnectionRefusedError, PermissionError):
    sys.exit(0)
PY
# (UDP from a container is svc_kernel.sh's: this busybox's nc has no -u)
check "from a container too (nc: connection refused)" sh -c \
	"'$BERTH' -c '$C' exec cli nc -w 3 $E 80 </dev/null 2>&1 | grep -qi refused"

# An established connection keeps its backend through reloads that add and
# remove services (and through a membership change of its own service).
B exec cli sh -c "(i=0; while [ \$i -lt 80 ]; do echo line\$i; i=\$((i+1)); sleep 0.1; done) | nc $V 9000 >/tmp/echo.out" &
long=$!
sleep 0.5
for i in $(seq 20); do
	printf '[service]\nselect = app=web\nports = %d\n' $((1000 + i)) >"$C/services.d/extra$i.ini"
done
check "a reload adds 20 services while the connection runs" B reload
check_out "they are listed" 24 sh -c "'$BERTH' -c '$C' -o json service ls | jq length"
rm -f "$C"/services.d/extra*.ini
check "a reload removes them again" B reload
wait "$long"
check_out "the connection through the VIP lost nothing (80 lines echoed)" 80 \
	sh -c "'$BERTH' -c '$C' exec cli wc -l /tmp/echo.out | awk '{print \$1}'"

# Unhealthy: out of the VIP within one interval; no request fails.
check "web3's health page goes" B exec web3 rm /tmp/www/health
check "web3 turns unhealthy" wait_for health_is web3 unhealthy
check "web has two ready backends" wait_for backends_are web 2
out=$(fetch_n cli 60 "$V" 80 | tally)
check "60 requests: none to web3, none failing ($out)" \
	sh -c "echo '$out' | grep -Eq '^web1=[0-9]+ web2=[0-9]+\$'"
check "web3 healthy again" B exec web3 sh -c 'echo ok >/tmp/www/health'
check "and back in the service" wait_for backends_are web 3

# A container without a check: in its service's names (and a service's
# backends) while its process runs; stopped, it leaves at once.
cat >"$C/services.d/solos.ini" <<INI
[service]
select = app=solo
ports  = 80
INI
check "a service selecting solo reloads" B reload
group() { dig +short +time=1 +tries=1 @127.0.0.53 group.berth.internal A; }
solo_ip=$(B -o json ps | jq -r '.[] | select(.name == "solo") | .addresses[] | select(.family == "ipv4") | .address')
check_out "the group name answers with solo while it runs" "$solo_ip" group
check "and solos has it as its backend" wait_for backends_are solos 1
check "solo is stopped" B stop solo
check_out "the group name no longer answers with it" "" group
check_out "and solos has no backend" 0 svc_field solos .backends
check "solo is started again" B start solo
check_out "the group answers again" "$solo_ip" group
check "and solos has its backend back" wait_for backends_are solos 1
rm -f "$C/services.d/solos.ini"
B reload >/dev/null

# Policies see the backend: deny cli -> web, and cli -> VIP is denied too.
cat >"$C/policies.d/web.ini" <<INI
[policy]
select = app=web
[ingress friends]
from  = app=friend
ports = 80/tcp
INI
check "a policy letting only app=friend reach app=web reloads" B reload
check_out "cli cannot reach the VIP" "blocked" get cli "$V"
friend_gets() { get friend "$V" | grep -q '^web'; }
check "friend can" friend_gets
check "policy why cli web 80/tcp: deny, per backend" sh -c \
	"'$BERTH' -c '$C' policy why cli web 80/tcp | head -1 | grep -qx deny &&
	 '$BERTH' -c '$C' policy why cli web 80/tcp | grep -q 'backend web1: deny'"
check "policy why friend VIP 80/tcp: allow" sh -c \
	"'$BERTH' -c '$C' policy why friend $V 80/tcp | head -1 | grep -qx allow"
check "policy why on the empty service: no ready backend" sh -c \
	"'$BERTH' -c '$C' policy why cli empty 80/tcp | grep -q 'no ready backend'"
rm -f "$C/policies.d/web.ini"
B reload >/dev/null

# The VIP is the service's for good: the same after a daemon restart.
kill -TERM "$pid"
wait "$pid" 2>/dev/null
start_daemon || { tail "$log"; skip_all "the daemon did not start again"; }
web_vips() { echo "$(vip4 web) $(vip6 web)"; }
check_out "after a restart web has the same VIPs" "$V $V6" web_vips
answers() { get cli "$V" | grep -q '^web'; }
check "and answers there" wait_for answers
check_out "config check lists a service change" "~ service web: ports" sh -c \
	"sed -i 's/^ports  = 80, 9000\\/tcp/ports = 80/' '$C/berth.ini' && '$BERTH' -c '$C' reload --dry-run | grep 'service web'"
done_testing
