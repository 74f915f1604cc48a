# control.sh - the control socket: status in text and JSON, socket mode, peer
# credentials, clear errors when the daemon is absent, abuse is refused cleanly.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq python3

sock=/run/berth/berth.sock

out=$("$BERTH" status 2>&1); rc=$?
check_out "without a daemon the CLI exits 1" 1 echo "$rc"
check_out "and says why, naming the socket" \
	"berth: cannot reach berth at $sock: No such file or directory (is the daemon running?)" echo "$out"
out=$(BERTH_SOCKET=/tmp/nowhere.sock "$BERTH" status 2>&1)
check_out "BERTH_SOCKET chooses the socket" \
	"berth: cannot reach berth at /tmp/nowhere.sock: No such file or directory (is the daemon running?)" echo "$out"

"$BERTH" daemon --foreground >"$TMPDIR/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
check "the daemon creates its socket in run_dir" test -S "$sock"
check_out "the socket is mode 0660" 660 stat -c %a "$sock"

out=$("$BERTH" status)
check "status prints the daemon's pid" sh -c "printf '%s\n' \"\$1\" | grep -Eq '^pid +$pid\$'" _ "$out"
check "status prints a header row" sh -c "printf '%s\n' \"\$1\" | head -1 | grep -Eq '^KEY +VALUE\$'" _ "$out"
check_out "-o json status is valid JSON with the pid" "$pid" sh -c "'$BERTH' -o json status | jq -e .pid"
check_out "-o json is accepted after the command too" "$pid" sh -c "'$BERTH' status -o json | jq -e .pid"
check_out "-s SOCKET reaches the daemon" "$pid" sh -c "'$BERTH' -s $sock -o json status | jq -e .pid"

out=$("$BERTH" frobnicate-remote 2>&1); rc=$?
check_out "an unknown local command is a usage error" 2 echo "$rc"
out=$(printf 'nosuchcmd\n' | python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
print(s.recv(4096).decode().strip())' "$sock")
check_out "the daemon answers an unknown request with an error line" "error unknown command 'nosuchcmd'" echo "$out"

out=$(python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"x"*(1<<20))
except BrokenPipeError:
    pass    # the daemon replied and closed after 4 KiB: read what it said
data=b""
while True:
    try:
        d=s.recv(4096)
    except ConnectionResetError:
        break
    if not d: break
    data+=d
print(data.decode().strip())' "$sock" 2>&1)
check_out "a 1 MB request line is refused with a clear error" "error request too long (max 4096 bytes)" echo "$out"

# An unprivileged user (not root, not the daemon's group) is refused by SO_PEERCRED,
# even if the file mode would let it connect.
chmod 0666 "$sock"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BERTH" -s "$sock" status 2>&1)
check_out "a client of another user is refused" \
	"berth: permission denied: only root and the daemon's user or group may use this socket" echo "$out"

# many idle clients do not stop others from being served
python3 -c '
import socket,sys,time
conns=[]
for i in range(1000):
    s=socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1]); conns.append(s)
open(sys.argv[2],"w").close()
time.sleep(3)
' "$sock" "$TMPDIR/hogging" &
hog=$!
for _ in $(seq 100); do [ -e "$TMPDIR/hogging" ] && break; sleep 0.05; done
check "a client holds 1000 idle connections" test -e "$TMPDIR/hogging"
check "status still answers meanwhile" "$BERTH" status
kill "$hog"; wait "$hog" 2>/dev/null

check "the daemon is still alive after the abuse" kill -0 "$pid"
kill -TERM "$pid"; wait "$pid"
check "the daemon removes its socket when it stops" test ! -e "$sock"
done_testing
