# dns_reload.sh - DNS names follow reloads at once (the daemon changes its
# records container by container, issue 19): a container removed by a reload
# is NXDOMAIN as soon as the reload returns, its PTR too, and it leaves its
# service; a service renamed moves its addresses and SRV to the new name; an
# address given to another container points at it; a container moved to
# another network answers there only; a change of the networks (which builds
# the names anew) keeps every name. Asked on 127.0.0.53, which sees every
# network. Answers sent together to one client (one UDP GSO send) reach a
# container's socket as separate, whole datagrams through the bridge, veth
# and the firewall.
. "$BERTH_TOP/tests/lib.sh"
need_cmd dig nsenter python3

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal" "host     = yes"
cat >>"$C/berth.ini" <<INI
[network back]
bridge  = berth7
subnet  = 10.87.0.0/24
INI
ctr() {   # NAME EXTRA-LINES...
	_n=$1
	shift
	{
		printf '[container]\nrootfs  = %s\ncommand = sleep 3600\nstop_timeout = 1\n' "$R"
		for l in "$@"; do printf '%s\n' "$l"; done
	} >"$C/containers.d/$_n.ini"
}
ctr web1 "service = web" "ports = 8081:80/tcp" "ip = 10.88.0.11"
ctr web2 "service = web" "ports = 8082:80/tcp" "ip = 10.88.0.12"
ctr db "networks = back" "ip = 10.87.0.5"
q() { dig +short +time=1 +tries=1 @127.0.0.53 "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
status() { dig +time=1 +tries=1 @127.0.0.53 "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
check_out "web1 resolves" "10.88.0.11" q web1.berth.internal A
check_out "the service web lists both members" "10.88.0.11 10.88.0.12" q web.berth.internal A
check_out "with an SRV for each" "0 0 80 web1.berth.internal. 0 0 80 web2.berth.internal." \
	q _80._tcp.web.berth.internal SRV
check_out "web2's address has its PTR" "web2.berth.internal." q -x 10.88.0.12

rm "$C/containers.d/web2.ini"
B reload >/dev/null 2>&1
check_out "web2 removed: NXDOMAIN as soon as the reload returns" "NXDOMAIN" \
	status web2.berth.internal A
check_out "its PTR too" "NXDOMAIN" status -x 10.88.0.12
check_out "the service lists web1 only" "10.88.0.11" q web.berth.internal A
check_out "and its SRV" "0 0 80 web1.berth.internal." q _80._tcp.web.berth.internal SRV

ctr web1 "service = api" "ports = 8081:80/tcp" "ip = 10.88.0.11"
B reload --wait >/dev/null 2>&1
check_out "the service renamed: the old name is NXDOMAIN" "NXDOMAIN" status web.berth.internal A
check_out "and its SRV" "NXDOMAIN" status _80._tcp.web.berth.internal SRV
check_out "the new name answers" "10.88.0.11" q api.berth.internal A
check_out "with the SRV" "0 0 80 web1.berth.internal." q _80._tcp.api.berth.internal SRV
check_out "web1 still resolves" "10.88.0.11" q web1.berth.internal A

ctr web3 "ip = 10.88.0.12"
B reload --wait >/dev/null 2>&1
check_out "a new container on web2's old address resolves" "10.88.0.12" q web3.berth.internal A
check_out "and the address's PTR is the new container" "web3.berth.internal." q -x 10.88.0.12

ctr db "ip = 10.88.0.20"
B reload --wait >/dev/null 2>&1
check "db moved to the default network answers there" wait_for sh -c \
	"[ \"\$(dig +short +time=1 +tries=1 @127.0.0.53 db.berth.internal A)\" = 10.88.0.20 ]"
check_out "its old address has no PTR" "NXDOMAIN" status -x 10.87.0.5
check_out "its new one has" "db.berth.internal." q -x 10.88.0.20

# a burst from two sockets in web1: the server answers many in one batch,
# those to one socket with one length in one send
cat >"$TMPDIR/burst.py" <<'PY'
import socket, struct, sys
def query(name, qid):
    b = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    for l in name.split('.'):
        b += bytes([len(l)]) + l.encode()
    return b + b'\0' + struct.pack('>HH', 1, 1)
names = ['web1.berth.internal', 'web3.berth.internal', 'db.berth.internal']
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
want = {}
for i in range(96):
    q = query(names[i % 3], i)
    want[i] = len(q) + 16          # the question again and one A record
    socks[i % 2].sendto(q, ('10.88.0.1', 53))
good = bad = 0
for s in socks:
    s.settimeout(1)
    try:
        while True:
            d = s.recv(4096)
            if len(d) < 12:
                bad += 1
                continue
            qid, flags, qd, an = struct.unpack('>HHHH', d[:8])
            if want.pop(qid, None) == len(d) and qd == 1 and an == 1 and flags & 0xf == 0:
                good += 1
            else:
                bad += 1
    except socket.timeout:
        pass
print(good, bad)
PY
check_out "96 queries at once from two sockets in a container: 96 whole, separate answers" "96 0" \
	nsenter --net="$S/netns/web1" python3 "$TMPDIR/burst.py"

# the networks change: the names are built anew, all of them
sed -i '/^\[network back\]/,$d' "$C/berth.ini"
B reload --wait >/dev/null 2>&1
check_out "a network removed: the names are built anew (web1)" "10.88.0.11" q web1.berth.internal A
check_out "(web3, db)" "10.88.0.12 10.88.0.20" q web3.berth.internal A db.berth.internal A
check_out "(the service)" "10.88.0.11" q api.berth.internal A
check_out "(PTR)" "web3.berth.internal." q -x 10.88.0.12
check_out "the removed ones stay away" "NXDOMAIN" status web2.berth.internal A
done_testing
