# dns_limits.sh - the DNS server under pressure, asked with dig: a dead first
# upstream (one timeout, then the live one at once; used again once back),
# the TCP connection limit (the longest-idle connection makes room, busy ones
# stay), and no descriptor left for accept() (no spinning, one log line,
# answers again once descriptors free up).
. "$BERTH_TOP/tests/lib.sh"
need_cmd dig python3
serve=$BERTH_TOP/build/test/helpers/dns_serve
[ -x "$serve" ] || skip_all "build/test/helpers/dns_serve is not built (make test-build)"

pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done' EXIT
wait_for() {    # FILE PATTERN: wait until the file has the pattern
	for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

rec=$TMPDIR/records
printf 'network default 10.88.0.0/16\ncontainer web1 default 10.88.1.1\n' >"$rec"
start() {       # NAME ARGS...: a dns_serve, its output in $TMPDIR/NAME.out, log in NAME.err
	n=$1; shift
	"$serve" -f "$rec" "$@" >"$TMPDIR/$n.out" 2>"$TMPDIR/$n.err" &
	pids="$pids $!"
	eval "pid_$n=$!"
	wait_for "$TMPDIR/$n.out" ready || not_ok "dns_serve $n started" "$(cat "$TMPDIR/$n.err")"
}
report() {      # NAME: the server's upstream and stats lines, fresh
	_n=$(grep -c '^stats' "$TMPDIR/$1.out")
	eval "kill -USR1 \$pid_$1"
	for _ in $(seq 50); do
		[ "$(grep -c '^stats' "$TMPDIR/$1.out")" -gt "$_n" ] && break
		sleep 0.1
	done
	# the last stats line and the upstream lines just before it
	tac "$TMPDIR/$1.out" | awk 'NR == 1 { print; next } /^stats/ { exit } { print }' | tac
}
stat() {        # NAME KEY: one counter of that server
	report "$1" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
qtime() {       # dig ARGS: "ANSWER MSEC" (the answer, dig's query time)
	dig +time=5 +tries=1 "$@" +noall +answer +stats |
		awk '$4 == "A" { a = $5 } /Query time:/ { t = $4 } END { print a, t }'
}

# Clients that connect in turn and then say nothing, held open until the file
# GO exists; the first asks one question after all are open, so the second is
# the one idle the longest. Then it prints which ones the server closed.
cat >"$TMPDIR/hold.py" <<'EOF'
import os, socket, struct, sys, time
addr, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(q)) + q
conns = []
for i in range(n):
    conns.append(socket.create_connection((addr, 53), timeout=5))
    time.sleep(0.005)
# the oldest connection asks something: now the second one is the longest idle
conns[0].sendall(query(1, "web1.berth.internal"))
conns[0].recv(512)
print("held", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
closed = []
for i, c in enumerate(conns):
    c.setblocking(False)
    try:
        if c.recv(10) == b"":
            closed.append(i)
    except BlockingIOError:
        pass
    except OSError:
        closed.append(i)
print("closed:", *closed, flush=True)
EOF

# An upstream that answers A ADDR to everything while the file ON exists, and
# says nothing at all (a black hole) while it does not; it logs every name.
cat >"$TMPDIR/up.py" <<'EOF'
import os, socket, struct, sys
addr, answer, log, on = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
open(log, "a").write("ready\n")
while True:
    m, peer = s.recvfrom(4096)
    p, labels = 12, []
    while m[p]:
        labels.append(m[p + 1:p + 1 + m[p]].decode()); p += 1 + m[p]
    with open(log, "a") as f:
        f.write(".".join(labels) + "\n")
    if not os.path.exists(on):
        continue
    rr = struct.pack(">HHHIH", 0xc00c, 1, 1, 60, 4) + socket.inet_aton(answer)
    s.sendto(struct.pack(">HHHHHH", struct.unpack(">H", m[:2])[0], 0x8180, 1, 1, 0, 0) +
             m[12:p + 5] + rr, peer)
EOF
python3 "$TMPDIR/up.py" 127.0.0.3 192.0.2.33 "$TMPDIR/up3.log" "$TMPDIR/on3" &
pids="$pids $!"
touch "$TMPDIR/on4"
python3 "$TMPDIR/up.py" 127.0.0.4 192.0.2.44 "$TMPDIR/up4.log" "$TMPDIR/on4" &
pids="$pids $!"
python3 "$TMPDIR/up.py" 127.0.0.5 192.0.2.55 "$TMPDIR/up5.log" "$TMPDIR/on5" &
pids="$pids $!"
for n in 3 4 5; do wait_for "$TMPDIR/up$n.log" ready || skip_all "python upstreams did not start"; done

# A: the first upstream is a black hole, the second answers.
start a -l 127.0.0.60 -u 127.0.0.3 -u 127.0.0.4 -t 1000
set -- $(qtime @127.0.0.60 first.pos.test)
check_out "first lookup: the black hole times out, the second upstream answers" \
	"192.0.2.44" echo "$1"
check "... after the timeout ($2 ms)" test "${2:-0}" -ge 900
slow=
for i in 1 2 3 4 5; do
	set -- $(qtime @127.0.0.60 "next$i.pos.test")
	[ "$1" = 192.0.2.44 ] && [ "${2:-9999}" -lt 100 ] || slow="$slow next$i:$1/${2}ms"
done
check_out "further uncached lookups go to the live upstream at once (< 100 ms each)" "" echo "$slow"
health() {      # NAME ADDR: "upstream ADDR:53 up|down"
	report "$1" | grep "^upstream $2:" | cut -d' ' -f1-3
}
check_out "the black hole is known to be down" "upstream 127.0.0.3:53 down" health a 127.0.0.3
touch "$TMPDIR/on3"     # it comes back
back=
for _ in $(seq 60); do
	sleep 0.25
	set -- $(qtime @127.0.0.60 "back$_.pos.test")
	[ "$1" = 192.0.2.33 ] && { back=$1; break; }
done
check_out "once the first upstream answers again, it is used again" "192.0.2.33" echo "$back"
check_out "... and it is up" "upstream 127.0.0.3:53 up" health a 127.0.0.3
probes=$(stat a probes)
check "... found by probing it in the background ($probes probes)" test "${probes:-0}" -ge 1

# B: the connection limit (64 by default) full of idle clients.
start b -l 127.0.0.61 -i 30000
python3 "$TMPDIR/hold.py" 127.0.0.61 64 "$TMPDIR/go.b" >"$TMPDIR/hold.b" 2>&1 &
pids="$pids $!"
wait_for "$TMPDIR/hold.b" held
check_out "64 idle TCP connections are open" "64" stat b tcp_conns
t0=$(date +%s%N)
ans=$(dig +tcp +time=1 +tries=1 +short @127.0.0.61 web1.berth.internal 2>&1)
ms=$((($(date +%s%N) - t0) / 1000000))
check_out "a new TCP client is answered at the limit" "10.88.1.1" echo "$ans"
check "... within 1 s ($ms ms)" test "$ms" -lt 1000
touch "$TMPDIR/go.b"
wait_for "$TMPDIR/hold.b" closed
check_out "the connection idle the longest was closed to make room, and only it" \
	"closed: 1" grep closed "$TMPDIR/hold.b"

# C: at the limit with every connection waiting for an upstream: the new one
# is refused, the busy ones keep their queries.
start c -l 127.0.0.62 -n 2 -u 127.0.0.5 -t 3000
cat >"$TMPDIR/busy.py" <<'EOF'
import socket, struct, time
def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(q)) + q
a = socket.create_connection(("127.0.0.62", 53), timeout=5)
b = socket.create_connection(("127.0.0.62", 53), timeout=5)
a.sendall(query(1, "a.pos.test"))
b.sendall(query(2, "b.pos.test"))
time.sleep(0.3)
c = socket.create_connection(("127.0.0.62", 53), timeout=5)
try:
    c.sendall(query(3, "web1.berth.internal"))
    third = "answered" if c.recv(512) else "closed"
except OSError:
    third = "closed"
print("third:", third)
for name, s in (("first", a), ("second", b)):
    m = s.recv(512)     # SERVFAIL when the upstream times out
    print(name + ":", "SERVFAIL" if len(m) > 5 and m[5] & 0xf == 2 else "closed")
EOF
check_out "every connection busy: the new one is refused, the busy ones are answered" \
	"third: closed
first: SERVFAIL
second: SERVFAIL" python3 "$TMPDIR/busy.py"

# D: no descriptor left. The server accepts until EMFILE; the connections
# still queued must not make it spin, and it answers over TCP again once
# descriptors free up.
"$serve" -f "$rec" -l 127.0.0.63 -n 200 -i 30000 >"$TMPDIR/d.out" 2>"$TMPDIR/d.err" &
pids="$pids $!"
pid_d=$!
wait_for "$TMPDIR/d.out" ready || not_ok "dns_serve d started" "$(cat "$TMPDIR/d.err")"
: # the limit: what it has open now plus room for 24 connections
limit=$(($(ls /proc/$pid_d/fd | wc -l) + 24))
prlimit --pid "$pid_d" --nofile="$limit:$limit" || skip_all "prlimit cannot lower the descriptor limit"
python3 "$TMPDIR/hold.py" 127.0.0.63 40 "$TMPDIR/go.d" >"$TMPDIR/hold.d" 2>&1 &
hold=$!
pids="$pids $hold"
wait_for "$TMPDIR/hold.d" held
sleep 0.5
accepted=$(stat d tcp_conns)
check "the server's descriptors are full: $accepted of 40 connections accepted, the rest queued" \
	test "${accepted:-40}" -lt 40
cpu() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid_d/stat"; }
c0=$(cpu)
sleep 1
c1=$(cpu)
hz=$(getconf CLK_TCK)
used=$(((c1 - c0) * 1000 / hz))
check "connections queued at EMFILE: no spinning ($used ms of CPU in 1 s, want < 200)" \
	test "$used" -lt 200
check_out "it says so once in its log" "1" grep -c "cannot accept TCP connections on 127.0.0.63:53: .*(EMFILE)" "$TMPDIR/d.err"
kill $hold
wait $hold 2>/dev/null
check_out "descriptors free again: TCP answers" "10.88.1.1" \
	dig +tcp +time=2 +tries=1 +short @127.0.0.63 web1.berth.internal
check_out "... and the log says it accepts again" "1" \
	grep -c "accepting TCP connections on 127.0.0.63:53 again" "$TMPDIR/d.err"

for n in a b c d; do
	eval "kill -TERM \$pid_$n; wait \$pid_$n"
	check_out "server $n stops cleanly (no leak, no error)" "0" echo $?
done
done_testing
