# dns_forward.sh - the DNS server as a forwarder, asked with dig: a local
# dnsmasq upstream, a scripted upstream (negative answers with SOA, spoofed
# replies, SERVFAIL, TC) and a silent one: caching, failover, timeouts.
. "$BERTH_TOP/tests/lib.sh"
need_cmd dig python3 dnsmasq
serve=$BERTH_TOP/build/test/helpers/dns_serve
[ -x "$serve" ] || skip_all "build/test/helpers/dns_serve is not built (make test-build)"

pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done' EXIT
wait_for() {    # FILE PATTERN: wait until the file has the pattern
	for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# dnsmasq: the ordinary upstream.
dnsmasq --no-daemon --conf-file=/dev/null --listen-address=127.0.0.2 --port=53 \
	--bind-interfaces --no-resolv --no-hosts --local-ttl=60 \
	--address=/example.com/192.0.2.7 --address=/fail.test/192.0.2.8 \
	--log-queries --log-facility="$TMPDIR/dnsmasq.log" 2>"$TMPDIR/dnsmasq.err" &
dm=$!
pids="$pids $dm"

# A scripted upstream: what dnsmasq cannot be asked to do.
cat >"$TMPDIR/up.py" <<'EOF'
import socket, struct, sys, threading
addr, log, mode = sys.argv[1], sys.argv[2], sys.argv[3]
def rr(t, ttl, rdata):
    return struct.pack(">HHHIH", 0xc00c, t, 1, ttl, len(rdata)) + rdata
soa = rr(6, 300, b"\x02ns\xc0\x0c\x02hm\xc0\x0c" + struct.pack(">IIIII", 1, 3600, 600, 86400, 60))
def answers(m, port, tcp):
    p, labels = 12, []
    while m[p]:
        labels.append(m[p + 1:p + 1 + m[p]].decode().lower()); p += 1 + m[p]
    name, e = ".".join(labels), p + 1
    qid, question = struct.unpack(">H", m[:2])[0], m[12:e + 4]
    with open(log, "a") as f:
        f.write("%s %d %d%s\n" % (name, qid, port, " tcp" if tcp else ""))
    def reply(rcode, an=b"", nan=0, ns=b"", nns=0, tc=0, i=qid, q=question):
        return struct.pack(">HHHHHH", i, 0x8180 | rcode | tc, 1, nan, nns, 0) + q + an + ns
    if name.endswith("neg.test"):
        return [reply(3, ns=soa, nns=1)]
    if name.endswith("nodata.test"):
        return [reply(0, ns=soa, nns=1)]
    if name.endswith("fail.test"):
        return [reply(2)]
    if name.endswith("big.test"):
        if not tcp:
            return [reply(0, tc=0x200)]
        return [reply(0, b"".join(rr(1, 100, bytes([198, 51, 100, i])) for i in range(100)), 100)]
    if name.endswith("spoof.test"):
        evil = b"\x04evil\x04test\x00" + question[-4:]
        return [reply(0, rr(1, 100, bytes([6, 6, 6, 6])), 1, i=qid ^ 1),
                reply(0, rr(1, 100, bytes([6, 6, 6, 7])), 1, q=evil),
                reply(0, rr(1, 100, bytes([192, 0, 2, 11])), 1)]
    return [reply(0, rr(1, 100, bytes([192, 0, 2, 10])), 1)]
def tcp_server():
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, 53)); t.listen(8)
    while True:
        c, peer = t.accept()
        b = b""
        while len(b) < 2 or len(b) < 2 + struct.unpack(">H", b[:2])[0]:
            d = c.recv(4096)
            if not d: break
            b += d
        if len(b) >= 2:
            for a in answers(b[2:], peer[1], True):
                c.sendall(struct.pack(">H", len(a)) + a)
        c.close()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
if mode != "silent":
    threading.Thread(target=tcp_server, daemon=True).start()
open(log, "a").write("ready\n")
while True:
    m, peer = s.recvfrom(4096)
    if mode == "silent":
        continue
    for a in answers(m, peer[1], False):
        s.sendto(a, peer)
EOF
python3 "$TMPDIR/up.py" 127.0.0.4 "$TMPDIR/up.log" normal &
pids="$pids $!"
python3 "$TMPDIR/up.py" 127.0.0.3 "$TMPDIR/silent.log" silent &
pids="$pids $!"
wait_for "$TMPDIR/up.log" ready && wait_for "$TMPDIR/silent.log" ready || skip_all "python upstreams did not start"
wait_for "$TMPDIR/dnsmasq.err" started || skip_all "dnsmasq did not start: $(cat "$TMPDIR/dnsmasq.err")"

rec=$TMPDIR/records
printf 'network default 10.88.0.0/16\ncontainer web1 default 10.88.1.1\n' >"$rec"
start() {       # NAME ARGS...: a dns_serve, its output in $TMPDIR/NAME.out
	n=$1; shift
	"$serve" -f "$rec" "$@" >"$TMPDIR/$n.out" 2>"$TMPDIR/$n.err" &
	pids="$pids $!"
	eval "pid_$n=$!"
	wait_for "$TMPDIR/$n.out" ready || not_ok "dns_serve $n started" "$(cat "$TMPDIR/$n.err")"
}
stat() {        # NAME KEY: one counter of that server
	eval "kill -USR1 \$pid_$1"
	sleep 0.2
	tail -1 "$TMPDIR/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
status() { dig +time=3 +tries=1 "$@" +noall +comments | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

# A: forwarding to dnsmasq, caching
start a -l 127.0.0.53 -u 127.0.0.2 -t 500
check_out "forwarded name is answered" "192.0.2.7" dig +short @127.0.0.53 www.example.com
flags() { dig +time=3 +tries=1 "$@" +noall +comments | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p'; }
check_out "relayed answer: RA set, AA not (berth is not the authority)" "qr rd ra" \
	flags @127.0.0.53 www.example.com
check_out "forwarded answer: the question's case kept" "WwW.ExAmPlE.cOm.	60	IN	A	192.0.2.7" \
	dig @127.0.0.53 WwW.ExAmPlE.cOm +noall +answer
check_out "local names are still answered locally" "10.88.1.1" dig +short @127.0.0.53 web1.berth.internal
check_out "forwarded over TCP too" "192.0.2.7" dig +tcp +short @127.0.0.53 tcp.example.com
sleep 1.1
ttl=$(dig @127.0.0.53 www.example.com +noall +answer | cut -f2)
check "cached answer: its TTL counts down ($ttl < 60)" test "$ttl" -lt 60
check_out "dnsmasq was asked once for a name asked four times" "1" \
	grep -c 'query\[A\] www.example.com' "$TMPDIR/dnsmasq.log"
check_out "cache hits are counted" "3" stat a cache_hits
# dnsmasq claims authority for its --address names; what berth relays must not
check_out "the upstream itself sets AA" "qr aa rd ra" flags @127.0.0.2 aa.example.com
check_out "forwarded answer from an authoritative upstream: no AA" "qr rd ra" \
	flags @127.0.0.53 noaa.example.com
check_out "the same answer from the cache: no AA either" "qr rd ra" \
	flags @127.0.0.53 noaa.example.com
check_out "... (it was a cache hit)" "4" stat a cache_hits
kill $dm
wait $dm 2>/dev/null
check_out "upstream gone: the cached answer is still served" "192.0.2.7" \
	dig +short @127.0.0.53 www.example.com
check_out "upstream gone, name not cached: SERVFAIL" "SERVFAIL" status @127.0.0.53 new.example.com

# B: failover across a refusing, a silent and a scripted upstream
start b -l 127.0.0.54 -u 127.0.0.9 -u 127.0.0.3 -u 127.0.0.4 -t 300
check_out "first upstreams dead or silent: the third answers" "192.0.2.10" \
	dig +time=3 +tries=1 +short @127.0.0.54 www.pos.test
check_out "the silent one timed out once" "1" stat b timeouts
check_out "spoofed replies (wrong ID, wrong question) are ignored" "192.0.2.11" \
	dig +time=3 +tries=1 +short @127.0.0.54 www.spoof.test
check_out "NXDOMAIN is relayed" "NXDOMAIN" status @127.0.0.54 x.neg.test
check_out "... with the upstream's SOA" "1" sh -c \
	"dig @127.0.0.54 x.neg.test +noall +authority | grep -c SOA"
check_out "negative answer cached: the upstream saw one query" "1" grep -c '^x.neg.test ' "$TMPDIR/up.log"
check_out "NODATA is relayed" "NOERROR" status @127.0.0.54 x.nodata.test AAAA
dig @127.0.0.54 x.nodata.test AAAA >/dev/null
check_out "NODATA is cached: the upstream saw one query" "1" grep -c '^x.nodata.test ' "$TMPDIR/up.log"
check_out "truncated upstream answer: asked again over TCP, relayed whole to TCP clients" "100" \
	sh -c "dig +tcp +short @127.0.0.54 x.big.test | wc -l"
check_out "the upstream saw one UDP and one TCP query" "x.big.test
x.big.test tcp" sh -c "grep '^x.big.test ' $TMPDIR/up.log | cut -d' ' -f1,4"
check_out "too big for a UDP client: TC=1 (the answer is cached whole)" "qr ra rd tc" sh -c \
	"dig @127.0.0.54 y.big.test +ignore +noall +comments | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'"
check_out "dig's own TCP retry then gets all 100 from the cache" "100 2" sh -c \
	"echo \$(dig +short @127.0.0.54 y.big.test | wc -l) \$(grep -c '^y.big.test ' $TMPDIR/up.log)"
for i in 1 2 3 4 5; do dig +short @127.0.0.54 "r$i.pos.test" >/dev/null; done
ids=$(grep '^r[0-9].pos.test ' "$TMPDIR/up.log" | cut -d' ' -f2 | sort -u | wc -l)
ports=$(grep '^r[0-9].pos.test ' "$TMPDIR/up.log" | cut -d' ' -f3 | sort -u | wc -l)
check "upstream query IDs are random ($ids distinct of 5)" test "$ids" -ge 4
check "upstream source ports are fresh ($ports distinct of 5)" test "$ports" -ge 4

# C: the only upstream never answers
start c -l 127.0.0.55 -u 127.0.0.3 -t 300
check_out "silent upstream: SERVFAIL after the timeout" "SERVFAIL" status @127.0.0.55 www.pos.test
check_out "RA is set on SERVFAIL too" "qr rd ra" sh -c \
	"dig @127.0.0.55 www2.pos.test +noall +comments | sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p'"
check_out "SERVFAIL is not cached: the next query is forwarded again" "2" stat c forwarded

# D: SERVFAIL from one upstream: the next is asked
dnsmasq --no-daemon --conf-file=/dev/null --listen-address=127.0.0.2,::1 --port=53 \
	--bind-interfaces --no-resolv --no-hosts --local-ttl=60 \
	--address=/fail.test/192.0.2.8 --address=/six.test/192.0.2.6 2>"$TMPDIR/dnsmasq2.err" &
pids="$pids $!"
wait_for "$TMPDIR/dnsmasq2.err" started
start d -l 127.0.0.56 -u 127.0.0.4 -u 127.0.0.2 -t 300
check_out "upstream SERVFAIL: the next upstream answers" "192.0.2.8" \
	dig +time=3 +tries=1 +short @127.0.0.56 x.fail.test

# E: an IPv6 upstream
start e -l 127.0.0.57 -u '[::1]:53' -t 300
check_out "IPv6 upstream" "192.0.2.6" dig +time=3 +tries=1 +short @127.0.0.57 www.six.test

for n in a b c d e; do
	eval "kill -TERM \$pid_$n; wait \$pid_$n"
	check_out "server $n stops cleanly (no leak, no error)" "0" echo $?
done
done_testing
