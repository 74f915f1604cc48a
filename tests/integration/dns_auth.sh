# dns_auth.sh - the DNS server's own names, asked with dig: A/AAAA, services,
# SRV, PTR, SOA/NS, NXDOMAIN/NODATA, case, EDNS, NOTIMP, TC + TCP, pipelined
# TCP, scoping by source address, reload without a dropped query, port in use.
. "$BERTH_TOP/tests/lib.sh"
need_cmd dig python3 ip
serve=$BERTH_TOP/build/test/helpers/dns_serve
[ -x "$serve" ] || skip_all "build/test/helpers/dns_serve is not built (make test-build)"

# Two networks' gateways and a few client addresses to ask from, on lo of
# this sandbox (no module needed; only the source addresses matter).
for a in 10.88.0.1/16 10.88.1.1/16 10.88.1.9/16 10.88.3.3/16 10.89.0.1/16 10.89.1.5/16; do
	ip addr add "$a" dev lo || skip_all "cannot add addresses in the sandbox"
done
ip -6 addr add fd88::1/64 dev lo nodad

rec=$TMPDIR/records
cat >"$rec" <<'EOF'
# test records
domain berth.internal
ttl 10
network default 10.88.0.0/16 fd88::/64
network back 10.89.0.0/16
container web1 default 10.88.1.1 fd88::11 service=web
container web2 default 10.88.1.2 service=web
container web3 default 10.88.1.3 service=web
container db back 10.89.1.5
container api default 10.88.1.9
container api back 10.89.1.9
srv web 80 tcp
srv web 53 udp
EOF
i=1
while [ $i -le 40 ]; do
	echo "container m$i default 10.88.5.$i service=many" >>"$rec"
	i=$((i + 1))
done

"$serve" -f "$rec" -l 10.88.0.1 -l 10.89.0.1 -l 127.0.0.53 -l '[fd88::1]:53' >"$TMPDIR/out" 2>"$TMPDIR/err" &
pid=$!
for _ in $(seq 50); do grep -q ready "$TMPDIR/out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$TMPDIR/out" || { cat "$TMPDIR/err"; skip_all "dns_serve did not start"; }
trap 'kill $pid 2>/dev/null' EXIT

q() { dig +time=2 +tries=1 @127.0.0.53 "$@"; }
status() { q "$@" +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }
flags() { q "$@" +noall +comments | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p'; }

check_out "A for NAME.DOMAIN" "10.88.1.1" q +short web1.berth.internal A
check_out "AAAA for NAME.DOMAIN" "fd88::11" q +short web1.berth.internal AAAA
check_out "A for the bare NAME" "10.88.1.2" q +short web2 A
check_out "answer flags: authoritative, recursion available" "qr aa rd ra" flags web1.berth.internal
check_out "the question's case is echoed in question and answer" \
	"WeB1.BeRtH.InTeRnAl.	10	IN	A	10.88.1.1" q +noall +answer WeB1.BeRtH.InTeRnAl
check_out "unknown name: NXDOMAIN" "NXDOMAIN" status nope.berth.internal
check_out "NXDOMAIN carries the zone's SOA" \
	"berth.internal.		10	IN	SOA	ns.berth.internal. hostmaster.berth.internal." \
	sh -c "dig +time=2 +tries=1 @127.0.0.53 nope.berth.internal +noall +authority | cut -d' ' -f1-2"
check_out "NODATA: NOERROR, no answer, SOA in authority" "NOERROR 0 1" sh -c \
	"dig @127.0.0.53 web2.berth.internal AAAA +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p;s/.*ANSWER: \([0-9]*\), AUTHORITY: \([0-9]*\),.*/\1 \2/p' | tr '\n' ' ' | sed 's/ $//'"
check_out "service: every member" "10.88.1.1
10.88.1.2
10.88.1.3" sh -c "dig +short @127.0.0.53 web.berth.internal | sort"
firsts=$(for _ in 1 2 3 4 5 6; do q +short web.berth.internal | head -1; done | sort -u | wc -l)
check_out "service order rotates between queries" "3" echo "$firsts"
check_out "SRV _80._tcp.SERVICE.DOMAIN lists the members" "0 0 80 web1.berth.internal.
0 0 80 web2.berth.internal.
0 0 80 web3.berth.internal." sh -c "dig +short @127.0.0.53 _80._tcp.web.berth.internal SRV | sort"
check_out "SRV answer carries the targets' addresses" "4" \
	sh -c "dig @127.0.0.53 _53._udp.web.berth.internal SRV +noall +additional | grep -c 'IN	A'"
check_out "SRV for an undeclared port: NXDOMAIN" "NXDOMAIN" status _8080._tcp.web.berth.internal SRV
check_out "PTR v4" "web2.berth.internal." q +short -x 10.88.1.2
check_out "PTR v6" "web1.berth.internal." q +short -x fd88::11
check_out "PTR of a free address of a subnet: NXDOMAIN" "NXDOMAIN" status -x 10.88.9.9
check_out "... with the reverse zone's SOA" "88.10.in-addr.arpa." \
	sh -c "dig @127.0.0.53 -x 10.88.9.9 +noall +authority | cut -f1"
check_out "SOA at the apex" "ns.berth.internal. hostmaster.berth.internal." \
	sh -c "dig +short @127.0.0.53 berth.internal SOA | cut -d' ' -f1-2"
check_out "NS at the apex" "ns.berth.internal." q +short berth.internal NS
check_out "ns.DOMAIN is the address asked" "10.88.0.1" \
	dig +short @10.88.0.1 ns.berth.internal
check_out "EDNS: OPT echoed with a 1232-byte payload" "; EDNS: version: 0, flags:; udp: 1232" \
	sh -c "dig @127.0.0.53 web1.berth.internal +edns=0 +noall +comments | grep '^; EDNS'"
check_out "EDNS version 1: BADVERS" "BADVERS" \
	sh -c "dig @127.0.0.53 web1.berth.internal +edns=1 +noednsnegotiation +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'"
check_out "opcode STATUS: NOTIMP" "NOTIMP" status +opcode=2 web1.berth.internal
check_out "40 members over UDP without EDNS: TC=1" "qr aa tc rd ra" \
	flags +noedns +ignore many.berth.internal
check_out "the same query over TCP: all 40" "40" \
	sh -c "dig +tcp +short @127.0.0.53 many.berth.internal | wc -l"
check_out "dig falls back to TCP by itself" "40" \
	sh -c "dig +noedns +short @127.0.0.53 many.berth.internal | wc -l"
check_out "IPv6 listener answers" "10.88.1.1" dig +short @fd88::1 web1.berth.internal

# Scoping: who asks decides what exists.
check_out "web1 (default) does not see db (back)" "NXDOMAIN" \
	sh -c "dig -b 10.88.1.1 @10.88.0.1 db.berth.internal +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'"
check_out "web1 sees api's default address only" "10.88.1.9" \
	dig +short -b 10.88.1.1 @10.88.0.1 api.berth.internal
check_out "db sees api's back address only" "10.89.1.9" \
	dig +short -b 10.89.1.5 @10.89.0.1 api.berth.internal
check_out "api, on both networks, sees db" "10.89.1.5" \
	dig +short -b 10.88.1.9 @10.88.0.1 db.berth.internal
check_out "an unknown address of default's subnet sees default's names" "10.88.1.1" \
	dig +short -b 10.88.3.3 @10.88.0.1 web1.berth.internal
check_out "... and not back's" "NXDOMAIN" \
	sh -c "dig -b 10.88.3.3 @10.88.0.1 db.berth.internal +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'"
check_out "the host (loopback) sees every network" "10.89.1.5" q +short db.berth.internal

# Pipelined TCP: three queries in one write, answered on one connection;
# then a query dribbled one byte at a time (partial reads).
cat >"$TMPDIR/pipe.py" <<'EOF'
import socket, struct, sys, time
def query(qid, name, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    return struct.pack(">H", len(q)) + q
def recv_msg(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise SystemExit("connection closed")
            b += c
        return b
    n = struct.unpack(">H", exact(2))[0]
    return exact(n)
s = socket.create_connection(("127.0.0.53", 53), timeout=3)
s.sendall(query(1, "web1.berth.internal") + query(2, "db.berth.internal") + query(3, "nope.berth.internal"))
got = []
for _ in range(3):
    m = recv_msg(s)
    qid, flags, qd, an = struct.unpack(">HHHH", m[:8])
    got.append("%d:%d:%d" % (qid, flags & 15, an))
print(" ".join(sorted(got)))
q = query(4, "web2.berth.internal")
for i in range(len(q)):
    s.send(q[i:i+1]); time.sleep(0.002)
m = recv_msg(s)
print(struct.unpack(">H", m[:2])[0], ".".join(str(b) for b in m[-4:]))
EOF
check_out "three pipelined queries on one TCP connection: three answers" "1:0:1 2:0:1 3:3:0
4 10.88.1.2" python3 "$TMPDIR/pipe.py"

# Malformed input never stops the server.
python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
bad = [b"", b"\x00" * 5, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
       b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40abc", b"\xff" * 600,
       b"\x12\x34\x01\x00\x00\x01\xff\xff\xff\xff\xff\xff\x01a\x00\x00\x01\x00\x01"]
for b in bad:
    s.sendto(b, ("127.0.0.53", 53))
EOF
check_out "a query with a compression loop: FORMERR" "FORMERR" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", ("127.0.0.53", 53))
m = s.recv(600)
print({1: "FORMERR"}.get(m[3] & 15, m[3] & 15))'
check_out "still answering after malformed packets" "10.88.1.1" q +short web1.berth.internal

# Reload (SIGHUP) while a client asks as fast as it can: no query dropped,
# new names appear, removed names go.
cp "$rec" "$TMPDIR/records.new"
echo "container newbie default 10.88.6.6" >>"$TMPDIR/records.new"
python3 - "$pid" "$rec" "$TMPDIR/records.new" >"$TMPDIR/reload.out" <<'EOF' &
import os, shutil, signal, sys, time
pid, rec, new = int(sys.argv[1]), sys.argv[2], sys.argv[3]
old = open(rec).read()
for i in range(40):
    if i == 39:
        shutil.copy(new, rec + ".tmp"); os.rename(rec + ".tmp", rec)
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.02)
print("done")
EOF
hup=$!
python3 - >"$TMPDIR/burst.out" <<'EOF'
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x04web1\x05berth\x08internal\x00\x00\x01\x00\x01"
ok = lost = bad = 0
end = time.time() + 1.5
while time.time() < end:
    s.sendto(q, ("127.0.0.53", 53))
    try:
        m = s.recv(600)
        if m[3] & 15 == 0 and struct.unpack(">H", m[6:8])[0] == 1: ok += 1
        else: bad += 1
    except socket.timeout:
        lost += 1
print(ok > 100, lost, bad)
EOF
wait $hup
check_out "queries during 40 reloads: all answered, none wrong" "True 0 0" cat "$TMPDIR/burst.out"
check_out "reloads applied" "40" grep -c reloaded "$TMPDIR/out"
check_out "a container added by the reload resolves" "10.88.6.6" q +short newbie.berth.internal

# TCP limits: a client that does not read (answers queue up, nothing is
# lost), a connection limit (the longest-idle connection makes room for a
# new one, RFC 7766 §6.2.3), and the idle timeout.
"$serve" -f "$rec" -l 127.0.0.57 -n 2 -i 500 >"$TMPDIR/out57" 2>&1 &
pid57=$!
for _ in $(seq 50); do grep -q ready "$TMPDIR/out57" 2>/dev/null && break; sleep 0.1; done
cat >"$TMPDIR/tcp.py" <<'EOF'
import socket, struct, sys, time
def query(qid, name, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for l in name.split("."):
        q += bytes([len(l)]) + l.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    return struct.pack(">H", len(q)) + q
def exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b
def recv_msg(s):
    h = exact(s, 2)
    return exact(s, struct.unpack(">H", h)[0]) if h else None
if sys.argv[1] == "slow":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # the server's writes block
    s.settimeout(5)
    s.connect(("127.0.0.57", 53))
    s.sendall(b"".join(query(i, "many.berth.internal") for i in range(2000)))
    time.sleep(0.3)
    ids = set()
    for _ in range(2000):
        m = recv_msg(s)
        if m is None or struct.unpack(">H", m[6:8])[0] != 40:
            break
        ids.add(struct.unpack(">H", m[:2])[0])
    print(len(ids))
else:
    a = socket.create_connection(("127.0.0.57", 53), timeout=3)
    b = socket.create_connection(("127.0.0.57", 53), timeout=3)
    a.sendall(query(1, "web1.berth.internal")); recv_msg(a)
    b.sendall(query(2, "web1.berth.internal")); recv_msg(b)
    c = socket.create_connection(("127.0.0.57", 53), timeout=3)
    try:
        c.sendall(query(3, "web1.berth.internal"))
        third = "answered" if recv_msg(c) else "closed"
    except OSError:
        third = "closed"
    print("third:", third)
    print("first:", "closed" if a.recv(10) == b"" else "open")
    print("idle:", "closed" if c.recv(10) == b"" else "open")
EOF
check_out "2000 pipelined queries from a client that reads late: 2000 answers" "2000" \
	python3 "$TMPDIR/tcp.py" slow
check_out "at the connection limit the longest-idle one makes room; idle ones time out" \
	"third: answered
first: closed
idle: closed" python3 "$TMPDIR/tcp.py" limits
kill -USR1 $pid57
sleep 0.2
check_out "... the first one was closed to make room, not by its idle timer" "1" \
	sh -c "tail -1 $TMPDIR/out57 | tr ' ' '\n' | sed -n 's/^tcp_evicted=//p'"
kill $pid57

# A listener may come before its address (the bridge gets it later).
"$serve" -f "$rec" -l 10.77.0.1 >"$TMPDIR/out77" 2>&1 &
pid77=$!
for _ in $(seq 50); do grep -q ready "$TMPDIR/out77" 2>/dev/null && break; sleep 0.1; done
check "listening on an address that does not exist yet" grep -q ready "$TMPDIR/out77"
ip addr add 10.77.0.1/24 dev lo
check_out "it answers once the address appears" "10.88.1.1" dig +short +time=2 @10.77.0.1 web1.berth.internal
kill $pid77

# A port in use is an error that names the address.
"$serve" -f "$rec" -l 127.0.0.53 >/dev/null 2>"$TMPDIR/err2"
check_out "port in use: a clear error naming the address" \
	"dns_serve: listen on 127.0.0.53:53/udp: Address already in use (EADDRINUSE)" cat "$TMPDIR/err2"

kill -TERM $pid
wait $pid
check_out "SIGTERM: clean exit" "0" echo $?
done_testing
