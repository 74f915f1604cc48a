# remote_tls.sh - remote management over mutual TLS: `berth tls init`, the CLI
# with -r against a daemon on loopback, openssl s_client with and without a
# client certificate, read-only clients, pinning, reload, and abuse (wrong,
# missing and expired certificates, garbage, 1000 connections, a 1 MB line).
. "$BERTH_TOP/tests/lib.sh"
need_cmd openssl python3 jq nc

T=$TMPDIR
tls=$T/tls
log=$T/daemon.log
port=7443

wait_for_line() {  # FILE PATTERN: up to ~5 s
	for _ in $(seq 50); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- berth tls init ---------------------------------------------------------
out=$("$BERTH" tls init "$tls" --name localhost --ip 127.0.0.1 2>&1)
check "tls init writes a CA, a server and a client certificate" \
	test -s "$tls/ca.crt" -a -s "$tls/server.crt" -a -s "$tls/client.crt"
check_out "the keys are mode 0600" "600 600 600" \
	sh -c "stat -c %a '$tls/ca.key' '$tls/server.key' '$tls/client.key' | xargs"
check "openssl accepts both certificates as signed by the CA" \
	openssl verify -CAfile "$tls/ca.crt" "$tls/server.crt" "$tls/client.crt"
check "the server certificate names 127.0.0.1 and localhost" sh -c \
	"openssl x509 -in '$tls/server.crt' -noout -ext subjectAltName | grep -q 'DNS:localhost, IP Address:127.0.0.1'"
spki=$(openssl x509 -in "$tls/client.crt" -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
check_out "tls init prints the client's key hash as openssl computes it" "client key: sha256:$spki" \
	sh -c "printf '%s\n' \"\$1\" | grep '^client key:'" _ "$out"
check_out "tls spki agrees" "sha256:$spki" "$BERTH" tls spki "$tls/client.crt"
out=$("$BERTH" tls init "$tls" --name localhost 2>&1); rc=$?
check_out "tls init does not overwrite existing keys" "1: berth tls init: $tls/ca.key exists: not overwriting it" \
	echo "$rc: $out"

"$BERTH" tls client "$tls" viewer >"$T/viewer.out"
viewer=$(sed -n 's/^viewer key: //p' "$T/viewer.out")
"$BERTH" tls client "$tls" other >/dev/null
"$BERTH" tls client "$tls" old --days 10 --start-days-ago 30 >/dev/null
check "an expired client certificate can be made for the test" sh -c \
	"! openssl x509 -in '$tls/old.crt' -noout -checkend 0 >/dev/null"
"$BERTH" tls init "$T/stranger" --name localhost --ip 127.0.0.1 >/dev/null

# ---- the daemon with [remote] ---------------------------------------------
mkdir -p "$T/cfg"
write_cfg() {  # extra [remote] lines
	cat >"$T/cfg/berth.ini" <<EOF
[daemon]
state_dir = $T/state
run_dir = $T/run
[remote]
listen = 0.0.0.0:$port
cert = $tls/server.crt
key = $tls/server.key
client_ca = $tls/ca.crt
EOF
	printf '%s\n' "$@" >>"$T/cfg/berth.ini"
}
write_cfg "read_only = $viewer"
"$BERTH" -c "$T/cfg" daemon --foreground >"$log" 2>&1 &
pid=$!
check "the daemon says where remote management listens" \
	wait_for_line "$log" "remote management (TLS) on 0.0.0.0:$port"

# rberth NAME [ARGS...]: the CLI as client NAME of $tls, to the port in $T/port
cat >"$T/rberth" <<EOF
#!/bin/sh
n=\$1; shift
exec "$BERTH" -r "127.0.0.1:\$(cat "$T/port")" --cert "$tls/\$n.crt" --key "$tls/\$n.key" --ca "$tls/ca.crt" "\$@"
EOF
chmod +x "$T/rberth"
echo $port >"$T/port"
cli() { "$T/rberth" "$@"; }
local_status=$("$BERTH" -c "$T/cfg" status | grep -v '^uptime')
remote_status=$(cli client status | grep -v '^uptime')
check_out "status over TLS prints what the local CLI prints" "$local_status" echo "$remote_status"
check_out "-o json works over TLS" "$pid" sh -c "'$T/rberth' client -o json status | jq -e .pid"
check_out "the server name may be a DNS name of the certificate" "$pid" sh -c \
	"'$BERTH' -r localhost:$port --cert '$tls/client.crt' --key '$tls/client.key' --ca '$tls/ca.crt' -o json status | jq -e .pid"
out=$("$BERTH" -r 127.0.0.2:$port --cert "$tls/client.crt" --key "$tls/client.key" --ca "$tls/ca.crt" status 2>&1); rc=$?
check_out "an address the server certificate does not name is refused" \
	"1: berth: TLS handshake with 127.0.0.2:$port failed: the server's certificate does not name 127.0.0.2" \
	echo "$rc: $out"
out=$("$BERTH" -r 127.0.0.1:$port --cert "$tls/client.crt" --key "$tls/client.key" --ca "$T/stranger/ca.crt" status 2>&1)
check_out "a server certificate from another CA is refused" \
	"berth: TLS handshake with 127.0.0.1:$port failed: certificate not signed by a trusted CA" echo "$out"
out=$(cli client inspect nosuch 2>&1); rc=$?
check_out "errors come back like locally" "1: $("$BERTH" -c "$T/cfg" inspect nosuch 2>&1)" echo "$rc: $out"
out=$("$BERTH" -r 127.0.0.1:1 --cert "$tls/client.crt" --key "$tls/client.key" --ca "$tls/ca.crt" status 2>&1)
check_out "no listener: a clear error" \
	"berth: cannot reach berth at 127.0.0.1:1: Connection refused (is [remote] configured?)" echo "$out"
out=$("$BERTH" -r 127.0.0.1:$port --cert "$tls/client.crt" status 2>&1); rc=$?
check_out "-r without --key and --ca is a usage error" \
	"2: berth: remote management needs all of -r HOST:PORT, --cert, --key and --ca" echo "$rc: $out"

out=$("$BERTH" -r 127.0.0.1:$port --cert "$tls/client.crt" --key "$tls/viewer.key" --ca "$tls/ca.crt" status 2>&1)
check_out "a key that does not belong to --cert is named before connecting" \
	"berth: --key $tls/viewer.key and --cert $tls/client.crt: the key does not belong to the certificate" echo "$out"

# ---- openssl s_client ---------------------------------------------------------
out=$(printf 'status\n' | timeout 10 openssl s_client -connect 127.0.0.1:$port -quiet \
	-CAfile "$tls/ca.crt" -cert "$tls/client.crt" -key "$tls/client.key" 2>/dev/null)
check_out "openssl s_client with a client certificate gets an answer" "ok" \
	sh -c "printf '%s\n' \"\$1\" | head -1" _ "$out"
check "and the answer is the status table" sh -c "printf '%s\n' \"\$1\" | grep -Eq '^pid +$pid\$'" _ "$out"
printf 'status\n' | timeout 10 openssl s_client -connect 127.0.0.1:$port -quiet \
	-CAfile "$tls/ca.crt" >"$T/s_client.out" 2>&1; rc=$?
check "openssl s_client without a client certificate fails" test "$rc" != 0
check "and gets no answer" sh -c "! grep -q '^ok' '$T/s_client.out'"
check "the daemon logs the missing certificate" \
	wait_for_line "$log" "refused: TLS handshake failed: no client certificate"
out=$(printf 'status\n' | timeout 10 openssl s_client -connect 127.0.0.1:$port -quiet -tls1_3 \
	-CAfile "$tls/ca.crt" -cert "$tls/client.crt" -key "$tls/client.key" 2>&1)
check "TLS 1.3 alone is refused (TLS 1.2 only)" sh -c "! printf '%s\n' \"\$1\" | grep -q '^ok'" _ "$out"
out=$(printf 'status\n' | timeout 10 openssl s_client -connect 127.0.0.1:$port -quiet -tls1_2 \
	-cipher AES128-SHA -CAfile "$tls/ca.crt" -cert "$tls/client.crt" -key "$tls/client.key" 2>&1)
check "a CBC suite without ECDHE is refused" sh -c "! printf '%s\n' \"\$1\" | grep -q '^ok'" _ "$out"
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
	out=$(printf 'ps\n' | timeout 10 openssl s_client -connect 127.0.0.1:$port -quiet -tls1_2 \
		-cipher "$c" -CAfile "$tls/ca.crt" -cert "$tls/client.crt" -key "$tls/client.key" 2>/dev/null)
	check_out "suite $c answers" "ok" sh -c "printf '%s\n' \"\$1\" | head -1" _ "$out"
done

refused="TLS handshake with 127.0.0.1:$port failed: the server closed the connection (its log says why: a client certificate it does not trust, an expired one, or a key it does not allow)"

# ---- who may do what --------------------------------------------------------
check "a read-only client may run status" cli viewer status
check "and ps" cli viewer ps
check "and metrics" cli viewer metrics
out=$(cli viewer reload 2>&1); rc=$?
check_out "but not reload" "1: berth: permission denied: read-only client" echo "$rc: $out"
out=$(cli client reload 2>&1); rc=$?
check_out "a full client may reload" 0 echo "$rc"
check "a reload that changes nothing in [remote] does not mention it" \
	sh -c "! printf '%s\n' \"\$1\" | grep -q 'remote listener'" _ "$out"

out=$(cli old status 2>&1); rc=$?
check_out "an expired client certificate is refused" \
	"1: berth: $refused" \
	echo "$rc: $out"
check "the daemon logs why: expired" wait_for_line "$log" "refused: TLS handshake failed: certificate expired or not yet valid"
out=$("$BERTH" -r 127.0.0.1:$port --cert "$T/stranger/client.crt" --key "$T/stranger/client.key" \
	--ca "$tls/ca.crt" status 2>&1); rc=$?
check_out "a client certificate from another CA is refused" \
	"1: berth: $refused" \
	echo "$rc: $out"
check "the daemon logs why: not trusted" \
	wait_for_line "$log" "refused: TLS handshake failed: certificate not signed by a trusted CA"

# pinning: clients = only these keys (and the read-only ones)
write_cfg "read_only = $viewer" "clients = sha256:$spki"
out=$("$BERTH" -c "$T/cfg" reload 2>&1)
check_out "reload re-reads [remote] and says it changed" "~ remote listener on 0.0.0.0:$port" \
	sh -c "printf '%s\n' \"\$1\" | grep 'remote listener'" _ "$out"
check "a pinned client still gets in" cli client status
check "a read-only client still gets in" cli viewer status
out=$(cli other status 2>&1); rc=$?
check_out "a client of the same CA whose key is not pinned is refused" \
	"1: berth: $refused" \
	echo "$rc: $out"
check "the daemon logs the unpinned key" wait_for_line "$log" "its key sha256:[0-9a-f]* is not in \[remote\] clients or read_only"

# a new listen address on reload moves the listener
sed -i "s/^listen = .*/listen = 127.0.0.1:7444/" "$T/cfg/berth.ini"
out=$(cli client reload 2>&1)
check "reload over TLS moves the listener and says so" sh -c \
	"printf '%s\n' \"\$1\" | grep -q 'remote listener on 127.0.0.1:7444'" _ "$out"
port=7444
echo $port >"$T/port"
check "the new port answers" cli client status
check "the old one is closed" sh -c "! nc -z 127.0.0.1 7443"

# RSA certificates (made by openssl, signed by the same CA) work on both ends
openssl req -new -newkey rsa:2048 -nodes -keyout "$tls/rsa-srv.key" -subj /CN=localhost \
	-addext subjectAltName=IP:127.0.0.1 -out "$T/rsa-srv.csr" 2>/dev/null
openssl x509 -req -in "$T/rsa-srv.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -days 2 \
	-copy_extensions copy -out "$tls/rsa-srv.crt" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$tls/rsa.key" -subj /CN=rsa-client \
	-out "$T/rsa.csr" 2>/dev/null
openssl x509 -req -in "$T/rsa.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -days 2 \
	-out "$tls/rsa.crt" 2>/dev/null
sed -i '/^clients = /d' "$T/cfg/berth.ini"
check "reload drops the pins" cli client reload
check "an RSA client certificate is accepted" cli rsa status
sed -i "s|^cert = .*|cert = $tls/rsa-srv.crt|; s|^key = .*|key = $tls/rsa-srv.key|" "$T/cfg/berth.ini"
check "reload switches the server to an RSA certificate" cli client reload
out=$(printf 'ps\n' | timeout 10 openssl s_client -connect 127.0.0.1:$port -quiet -tls1_2 \
	-cipher ECDHE-RSA-CHACHA20-POLY1305 -CAfile "$tls/ca.crt" -cert "$tls/client.crt" \
	-key "$tls/client.key" 2>/dev/null)
check_out "which serves ECDHE-RSA suites" "ok" sh -c "printf '%s\n' \"\$1\" | head -1" _ "$out"
check "and the CLI over it" cli rsa status

# ---- abuse ----------------------------------------------------------------------
python3 -c '
import socket,sys
for i in range(50):
    s=socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    try:
        while s.recv(4096): pass
    except OSError:
        pass
    s.close()' $port
check "garbage instead of a handshake is logged" wait_for_line "$log" "refused: TLS handshake failed: not a TLS"
check_out "once, not once per connection" 1 sh -c "grep -c 'refused: TLS handshake failed: not a TLS' '$log'"
check "status still answers after the garbage" cli client status

python3 -c '
import socket,sys,time
conns=[]
for i in range(1000):
    s=socket.socket()
    s.connect(("127.0.0.1", int(sys.argv[1]))); conns.append(s)
open(sys.argv[2],"w").close()
time.sleep(60)
' "$port" "$T/hogging" &
hog=$!
# TCP, unlike the Unix socket, drops SYNs while the accept queue is full and
# the client retries a second later: opening 1000 takes a few seconds.
for _ in $(seq 600); do [ -e "$T/hogging" ] && break; sleep 0.1; done
check "a client holds 1000 connections" test -e "$T/hogging"
check "status still answers meanwhile" cli client status
check "the daemon says it had too many clients" wait_for_line "$log" "too many remote clients (limit 16)"
check_out "once" 1 sh -c "grep -c 'too many remote clients' '$log'"
kill "$hog"; wait "$hog" 2>/dev/null

out=$(python3 -c '
import socket,ssl,sys
d=sys.argv[2]
ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(d+"/ca.crt"); ctx.load_cert_chain(d+"/client.crt", d+"/client.key")
s=ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="127.0.0.1")
try:
    s.sendall(b"x"*(1<<20))
except (OSError, ssl.SSLError):
    pass
data=b""
try:
    while True:
        d=s.recv(4096)
        if not d: break
        data+=d
except (OSError, ssl.SSLError):
    pass
print(data.decode().strip())' "$port" "$tls" 2>&1)
check_out "a 1 MB request line is refused with a clear error" "error request too long (max 4096 bytes)" echo "$out"
check "and logged" wait_for_line "$log" "refused: request longer than 4096 bytes"
check "status still answers after all that" cli client status
check "the daemon is still alive" kill -0 "$pid"

rhost=127.0.0.1
# IPv6: [::1]:PORT, and an iPAddress name of 16 bytes
if ip -6 addr show dev lo | grep -q '::1/128'; then
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/v6.key" \
		-subj /CN=v6 -addext subjectAltName=IP:::1 -out "$T/v6.csr" 2>/dev/null
	openssl x509 -req -in "$T/v6.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -days 2 \
		-copy_extensions copy -out "$tls/v6.crt" 2>/dev/null
	sed -i "s|^cert = .*|cert = $tls/v6.crt|; s|^key = .*|key = $tls/v6.key|; s|^listen = .*|listen = [::1]:7445|" \
		"$T/cfg/berth.ini"
	out=$("$BERTH" -c "$T/cfg" reload 2>&1)
	check_out "the listener moves to [::1]:7445" "~ remote listener on [::1]:7445" \
		sh -c "printf '%s\n' \"\$1\" | grep 'remote listener'" _ "$out"
	check_out "the CLI reaches it as -r [::1]:7445" "$pid" sh -c "'$BERTH' -r '[::1]:7445' \
		--cert '$tls/client.crt' --key '$tls/client.key' --ca '$tls/ca.crt' -o json status | jq -e .pid"
	out=$("$BERTH" -r "127.0.0.1:7445" --cert "$tls/client.crt" --key "$tls/client.key" --ca "$tls/ca.crt" status 2>&1)
	check_out "(and only there)" "berth: cannot reach berth at 127.0.0.1:7445: Connection refused (is [remote] configured?)" \
		echo "$out"
	port=7445 rhost='[::1]'
else
	skip "IPv6 listener" "no ::1 on lo"
fi

# dropping [remote] on reload closes the listener
write_cfg
sed -i '/^\[remote\]/,$d' "$T/cfg/berth.ini"
out=$("$BERTH" -r "$rhost:$port" --cert "$tls/client.crt" --key "$tls/client.key" --ca "$tls/ca.crt" \
	reload 2>&1)
check "a reload over TLS that drops [remote] still gets its answer" \
	sh -c "printf '%s\n' \"\$1\" | grep -q '^- remote listener'" _ "$out"
check "nothing listens any more" sh -c "! nc -z 127.0.0.1 $port && ! nc -z ::1 $port"

kill -TERM "$pid"; wait "$pid"; rc=$?
check_out "the daemon stops cleanly" 0 echo "$rc"
done_testing
