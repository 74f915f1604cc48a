# dns_fd_limit.sh - the daemon with no descriptor left: TCP clients queued on
# its DNS port must not make it spin; it says so once in its log and answers
# over TCP again once descriptors free up.
. "$BERTH_TOP/tests/lib.sh"
. "$BERTH_TOP/tests/daemon.sh"
need_cmd dig python3 prlimit
[ -x "$BERTH" ] || skip_all "$BERTH is not built (make test-build)"

mkdir -p "$C"
printf '[daemon]\nstate_dir = %s\nrun_dir = %s\n[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n[dns]\nupstream = 127.0.0.1\n' \
	"$S" "$TMPDIR/run" >"$C/berth.ini"
start_daemon || skip_all "the daemon did not start: $(tail -5 "$log")"
wait_for dig +tcp +time=1 +tries=1 @10.88.0.1 berth.internal SOA ||
	skip_all "the daemon's DNS does not answer on 10.88.0.1"

# Clients that connect and say nothing, held open until the file GO exists.
cat >"$TMPDIR/hold.py" <<'EOF'
import os, socket, sys, time
addr, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns = [socket.create_connection((addr, 53), timeout=5) for _ in range(n)]
print("held", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
EOF

# room for 24 more descriptors, then 40 clients: the rest stay queued
limit=$(($(ls /proc/$pid/fd | wc -l) + 24))
prlimit --pid "$pid" --nofile="$limit:$limit" || skip_all "prlimit cannot lower the descriptor limit"
python3 "$TMPDIR/hold.py" 10.88.0.1 40 "$TMPDIR/go" >"$TMPDIR/hold.out" 2>&1 &
hold=$!
for _ in $(seq 100); do grep -q held "$TMPDIR/hold.out" && break; sleep 0.1; done
check_out "40 clients connected" "held" cat "$TMPDIR/hold.out"
sleep 0.5
cpu() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat"; }
c0=$(cpu)
sleep 1
c1=$(cpu)
used=$(((c1 - c0) * 1000 / $(getconf CLK_TCK)))
check "daemon at EMFILE with clients queued: no spinning ($used ms of CPU in 1 s, want < 200)" \
	test "$used" -lt 200
check_out "its log says so once" "1" \
	grep -c "cannot accept TCP connections on 10.88.0.1:53: .*(EMFILE)" "$log"
touch "$TMPDIR/go"
wait $hold
check_out "descriptors free again: DNS over TCP answers" "ns.berth.internal." \
	sh -c "dig +tcp +time=2 +tries=1 +short @10.88.0.1 berth.internal NS"
check_out "... and the log says it accepts again" "1" \
	grep -c "accepting TCP connections on 10.88.0.1:53 again" "$log"
check "the daemon is still running" kill -0 "$pid"
done_testing
