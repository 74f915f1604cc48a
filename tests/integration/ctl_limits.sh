# ctl_limits.sh - the control socket and the TLS listener at their limits: when
# the daemon runs out of file descriptors a waiting client costs no CPU (the
# listeners rest instead of spinning), the log says so once, and both answer
# again once descriptors are free; at the connection limit the client idle
# longest makes room, not one that is still sending its request.
. "$BERTH_TOP/tests/lib.sh"
need_cmd python3 prlimit
. "$BERTH_TOP/tests/daemon.sh"

T=$TMPDIR
port=7443
sock=$T/run/berth.sock
"$BERTH" tls init "$T/tls" --name localhost --ip 127.0.0.1 >/dev/null
mkdir -p "$C"
cat >"$C/berth.ini" <<EOF
[daemon]
state_dir = $S
run_dir = $T/run
[remote]
listen = 127.0.0.1:$port
cert = $T/tls/server.crt
key = $T/tls/server.key
client_ca = $T/tls/ca.crt
EOF
start_daemon || { echo "the daemon did not start:"; cat "$log"; exit 1; }
rcli() {
	"$BERTH" -r 127.0.0.1:$port --cert "$T/tls/client.crt" --key "$T/tls/client.key" \
		--ca "$T/tls/ca.crt" "$@"
}
check "the remote listener answers" rcli status

# cpu_ticks PID: user + system time so far, in clock ticks
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hz=$(getconf CLK_TCK)

# ---- out of file descriptors ------------------------------------------------
# Leave the daemon room for four more descriptors (new ones take the lowest
# free numbers), then knock on both listeners more often than that. Only the
# soft limit moves, so it can be raised again.
free=0
while [ -e "/proc/$pid/fd/$free" ]; do free=$((free + 1)); done
hard=$(prlimit --pid "$pid" --nofile --noheadings --output HARD | tr -d ' ')
check "the daemon's descriptor limit is lowered" prlimit --pid "$pid" --nofile=$((free + 4)):
python3 -c '
import socket,sys,time
conns=[]
for i in range(12):
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); conns.append(s)
for i in range(4):
    conns.append(socket.create_connection(("127.0.0.1", int(sys.argv[2]))))
open(sys.argv[3],"w").close()
time.sleep(60)
' "$sock" "$port" "$T/hogging" &
hog=$!
wait_for test -e "$T/hogging"
check "the control socket says it cannot accept" \
	wait_for grep -q "control socket $sock: cannot accept connections: Too many open files; retrying every" "$log"
check "and so does the remote listener" \
	wait_for grep -q "remote listener 127.0.0.1:$port: cannot accept connections: Too many open files" "$log"
before=$(cpu_ticks "$pid")
sleep 1
used=$(($(cpu_ticks "$pid") - before))
check "clients waiting at the descriptor limit cost the daemon no CPU ($used of $hz ticks in 1 s)" \
	test "$used" -lt $((hz / 4))
check_out "the control socket says so once, not once per try" 1 \
	grep -c "control socket .*: cannot accept connections" "$log"
check_out "the remote listener too" 1 grep -c "remote listener .*: cannot accept connections" "$log"
kill "$hog"; wait "$hog" 2>/dev/null
check "once descriptors are free the control socket answers again" timeout 5 "$BERTH" -c "$C" status
check "and the remote listener" timeout 10 "$BERTH" -r 127.0.0.1:$port --cert "$T/tls/client.crt" \
	--key "$T/tls/client.key" --ca "$T/tls/ca.crt" status
check "the log says the control socket accepts again" \
	grep -q "control socket $sock: accepting connections again" "$log"
prlimit --pid "$pid" --nofile="$hard":

# ---- the connection limit: the client idle longest makes room ----------------
# A client sends part of its request, 63 more connect and say nothing (64 is
# the limit), the first sends a little more: a new client must be served, and
# the connection to close is one of the silent ones, not the first.
out=$(python3 -c '
import socket,subprocess,sys,time
def conn():
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); return s
a=conn(); a.sendall(b"sta"); time.sleep(0.3)
silent=[conn() for i in range(63)]
time.sleep(0.3)
a.sendall(b"tu"); time.sleep(0.2)
t=time.time()
r=subprocess.run([sys.argv[2], "-s", sys.argv[1], "status"], capture_output=True, timeout=10)
print("new client:", "answered" if r.returncode == 0 else "failed", "promptly" if time.time() - t < 2 else "slowly")
silent[0].settimeout(2)
try:
    print("first silent client:", "closed" if silent[0].recv(100) == b"" else "answered")
except OSError as e:
    print("first silent client:", e)
try:
    a.sendall(b"s\n"); a.settimeout(5)
    print("busy client:", a.recv(100).split(b"\n")[0].decode() or "closed")
except OSError as e:
    print("busy client:", e)
' "$sock" "$BERTH" 2>&1)
check_out "at the limit a new control client is answered promptly" "new client: answered promptly" \
	sh -c "printf '%s\n' \"\$1\" | sed -n 1p" _ "$out"
check_out "the longest-idle control client made room" "first silent client: closed" \
	sh -c "printf '%s\n' \"\$1\" | sed -n 2p" _ "$out"
check_out "the client still sending its request kept its place" "busy client: ok" \
	sh -c "printf '%s\n' \"\$1\" | sed -n 3p" _ "$out"

# the same on the TLS listener (16 clients): a client half way through its
# request after the handshake, 15 that never start one
out=$(python3 -c '
import socket,ssl,subprocess,sys,time
port=int(sys.argv[1]); d=sys.argv[2]
ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(d+"/ca.crt"); ctx.load_cert_chain(d+"/client.crt", d+"/client.key")
a=ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
a.sendall(b"sta"); time.sleep(0.3)
silent=[socket.create_connection(("127.0.0.1", port)) for i in range(15)]
time.sleep(0.3)
a.sendall(b"tu"); time.sleep(0.2)
t=time.time()
r=subprocess.run([sys.argv[3], "-r", "127.0.0.1:%d" % port, "--cert", d+"/client.crt",
                  "--key", d+"/client.key", "--ca", d+"/ca.crt", "status"], capture_output=True, timeout=20)
print("new client:", "answered" if r.returncode == 0 else "failed", "promptly" if time.time() - t < 3 else "slowly")
silent[0].settimeout(2)
try:
    print("first silent client:", "closed" if silent[0].recv(100) == b"" else "answered")
except OSError as e:
    print("first silent client:", e)
try:
    a.sendall(b"s\n"); a.settimeout(5)
    print("busy client:", a.recv(100).split(b"\n")[0].decode() or "closed")
except (OSError, ssl.SSLError) as e:
    print("busy client:", e)
' "$port" "$T/tls" "$BERTH" 2>&1)
check_out "at the limit a new TLS client is answered promptly" "new client: answered promptly" \
	sh -c "printf '%s\n' \"\$1\" | sed -n 1p" _ "$out"
check_out "the longest-idle TLS client made room" "first silent client: closed" \
	sh -c "printf '%s\n' \"\$1\" | sed -n 2p" _ "$out"
check_out "the TLS client still sending its request kept its place" "busy client: ok" \
	sh -c "printf '%s\n' \"\$1\" | sed -n 3p" _ "$out"
check "the daemon logs the eviction" grep -q "too many remote clients (limit 16): closing the one idle longest" "$log"

check "the daemon is still alive" kill -0 "$pid"
kill -TERM "$pid"; wait "$pid"; rc=$?
check_out "and stops cleanly" 0 echo "$rc"
pid=
done_testing
