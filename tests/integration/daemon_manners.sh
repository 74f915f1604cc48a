# daemon_manners.sh - the daemon against the kernel's limits and its
# neighbours: a bridge's 1,023 ports named by config check and EXFULL named
# when the kernel says it; the descriptor limit raised at start and warned
# about by config check; a restart at once after kill -9 (25 of 25); and
# the resolv.conf its upstreams come from, followed when it is rewritten in
# place or replaced by rename.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip dig python3 prlimit stat
. "$BERTH_TOP/tests/daemon.sh"
busybox_world
# the static (musl) product for this machine, when built: what a device runs
case $(uname -m) in
x86_64) static_bin=${BERTH_X86_64:-} ;;
aarch64) static_bin=${BERTH_AARCH64:-} ;;
*) static_bin= ;;
esac
[ -x "$static_bin" ] || static_bin=

# ---- a Linux bridge takes 1,023 ports ---------------------------------------
many=$TMPDIR/many
mkdir -p "$many/containers.d"
printf '[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n[dns]\nupstream = 127.0.0.1\n' \
	>"$many/berth.ini"
for i in $(seq 1024); do
	printf '[container]\nrootfs = %s\ncommand = sleep 1000\n' "$R" >"$many/containers.d/c$i.ini"
done
out=$("$BERTH" config check -c "$many" 2>&1); rc=$?
check_out "config check: 1,024 containers on one network name the network, the count and the limit" \
	"1 berth.ini:1: [network default] 1024 containers are attached to it, more than a Linux bridge takes (1023 ports; the kernel refuses the next one with EXFULL): spread them over more networks
1 error" echo "$rc $out"
rm "$many/containers.d/c1024.ini"
check_out "1,023 containers on one network are fine" \
	"ok: 1 network, 1023 containers, 0 policies ($many)" "$BERTH" config check -c "$many"

# The kernel's own refusal: a bridge with 1,023 ports takes no more. musl
# has no text for EXFULL; the product binary said "No error information
# (errno 54)".
ip link add brfull type bridge
i=1
while [ $i -le 1023 ]; do
	echo "link add f$i type veth peer name g$i"
	echo "link set f$i master brfull"
	i=$((i + 1))
done >"$TMPDIR/batch"
ip -batch "$TMPDIR/batch" >/dev/null 2>&1
ports=$(ip -o link show master brfull | wc -l)
attach() {
	"$1" net attach full --state-dir "$TMPDIR/netstate" --bridge brfull \
		--gateway 10.77.0.1/16 --ip 10.77.0.2/16 2>&1
}
if [ "$ports" = 1023 ]; then
	out=$(attach "$BERTH")
	case $out in
	*"errno 54"* | *"No error information"*) not_ok "the 1,024th port is refused by name (EXFULL)" "got: $out" ;;
	*"(EXFULL)" | *": EXFULL") ok "the 1,024th port is refused by name: ${out#berth: }" ;;
	*) not_ok "the 1,024th port is refused by name (EXFULL)" "got: $out" ;;
	esac
	if [ -n "$static_bin" ]; then
		out=$(attach "$static_bin")
		case $out in
		*": EXFULL") ok "the static (musl) binary says EXFULL, not 'No error information'" ;;
		*) not_ok "the static (musl) binary says EXFULL" "got: $out" ;;
		esac
	else
		skip "the static (musl) binary says EXFULL" "build/$(uname -m)/berth is not built (make)"
	fi
else
	skip "the 1,024th port is refused by name (EXFULL)" "could not give a bridge 1,023 ports ($ports)"
fi
ip link del brfull

# ---- file descriptors --------------------------------------------------------
fds=$TMPDIR/fds
mkdir -p "$fds/containers.d"
cp "$C/berth.ini" "$fds/berth.ini"
for i in $(seq 300); do
	printf '[container]\nrootfs = %s\ncommand = sleep 1000\n' "$R" >"$fds/containers.d/c$i.ini"
done
out=$( (ulimit -n 256 && "$BERTH" config check -c "$fds") 2>&1); rc=$?
check_out "config check under ulimit -n 256 with 300 containers: one warning, still exit 0" \
	"0 1 ok: 1 network, 300 containers, 0 policies ($fds)" \
	sh -c 'printf "%s %s %s\n" "$1" "$(printf "%s\n" "$2" | grep -c "^warning: ")" \
		"$(printf "%s\n" "$2" | tail -1)"' _ "$rc" "$out"
case $(printf '%s\n' "$out" | head -1) in
"warning: the daemon may need "*" file descriptors (600 for 300 containers, "*"more than the limit of 256 (RLIMIT_NOFILE)"*)
	ok "the warning gives what is needed, for what, and the limit" ;;
*) not_ok "the warning gives what is needed, for what, and the limit" "got: $out" ;;
esac
check_out "with a hard limit of 4096 there is nothing to warn about" \
	"ok: 1 network, 300 containers, 0 policies ($fds)" \
	sh -c 'ulimit -n 4096 && "$1" config check -c "$2"' _ "$BERTH" "$fds"
check "config check -o json lists the warning" sh -c \
	'ulimit -n 256 && "$1" -o json config check -c "$2" | python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d[\"valid\"] and len(d[\"warnings\"]) == 1 and \"RLIMIT_NOFILE\" in d[\"warnings\"][0][\"message\"]"' \
	_ "$BERTH" "$fds"

for i in 1 2 3; do
	printf '[container]\nrootfs = %s\ncommand = sleep 1000\nrestart = always\nstop_timeout = 1\n' \
		"$R" >"$C/containers.d/c$i.ini"
done
# daemon_up PID: answers within ~10 s (1: it ended or never answered)
daemon_up() {
	for _ in $(seq 200); do
		B status >/dev/null 2>&1 && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
prlimit --nofile=256:4096 "$BERTH" daemon -c "$C" --foreground >>"$log" 2>&1 &
pid=$!
daemon_up "$pid" || { tail "$log"; not_ok "the daemon starts under a soft limit of 256"; }
check_out "the daemon raises its soft descriptor limit to the hard one" "4096 4096" \
	awk '/^Max open files/ { print $4, $5 }' "/proc/$pid/limits"
check "and says so" grep -q "raised the open files limit (RLIMIT_NOFILE) from 256 to the hard limit, 4096" "$log"
check "with 4096 it has nothing to warn about" sh -c "! grep -q 'may need' '$log'"
kill -TERM "$pid"; wait "$pid"
prlimit --nofile=256:256 "$BERTH" daemon -c "$C" --foreground >>"$log" 2>&1 &
pid=$!
daemon_up "$pid" || { tail "$log"; not_ok "the daemon starts under a hard limit of 256"; }
check "under a hard limit of 256 the daemon logs what config check warns about" \
	grep -q "warn: the daemon may need .* more than the limit of 256 (RLIMIT_NOFILE)" "$log"
kill -TERM "$pid"; wait "$pid"

# ---- a restart at once after kill -9 ---------------------------------------
# What init systems do: the next daemon starts while the killed one is still
# exiting. Each round also restarts a container, so that the daemon forks
# while it is killed. The static binary starts fast enough to lose that race
# most of the time; the sanitized one only now and then.
bin=${static_bin:-$BERTH}
: >"$log"
"$bin" daemon -c "$C" --foreground >>"$log" 2>&1 &
pid=$!
daemon_up "$pid" || { tail "$log"; not_ok "the first daemon starts"; }
up=0
for i in $(seq 25); do
	B restart "c$((i % 3 + 1))" >/dev/null 2>&1 &
	sleep "0.0$((i % 4))"
	kill -KILL "$pid"
	"$bin" daemon -c "$C" --foreground >>"$log" 2>&1 &
	pid=$!
	if daemon_up "$pid"; then
		up=$((up + 1))
	else
		start_daemon     # go on with the next round all the same
	fi
done
check_out "25 daemons each started at once after kill -9 of the previous one: 25 run (${bin#"$BERTH_TOP"/})" \
	25 echo "$up"
refused=$(grep -c "another berth daemon" "$log")
check_out "none is refused because of the dead one's lock" 0 echo "$refused"
settled() {
	[ "$(B -o json ps | python3 -c 'import json,sys; print(sum(c["state"] == "running" for c in json.load(sys.stdin)))')" = 3 ]
}
check "after the 25 kills every container runs" wait_for settled
kill -TERM "$pid"; wait "$pid"
rm -f "$C"/containers.d/*.ini
wait

# ---- resolv.conf followed whichever way it changes --------------------------
# Two upstreams, each answering every A query with its own address (TTL 0);
# berth forwards to whichever resolv.conf names. Every query asks a new name,
# so that no cache can answer.
cat >"$TMPDIR/up.py" <<'EOF'
import socket, struct, sys
addr, ip = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 53))
print("ready", flush=True)
while True:
    m, peer = s.recvfrom(4096)
    p = 12
    while m[p]:
        p += 1 + m[p]
    question = m[12:p + 5]
    answer = struct.pack(">HHHIH", 0xc00c, 1, 1, 0, 4) + socket.inet_aton(ip)
    s.sendto(m[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + answer, peer)
EOF
python3 "$TMPDIR/up.py" 127.0.0.2 192.0.2.2 >"$TMPDIR/up2.out" 2>&1 &
up2=$!
python3 "$TMPDIR/up.py" 127.0.0.3 192.0.2.3 >"$TMPDIR/up3.out" 2>&1 &
up3=$!
trap 'kill $up2 $up3 2>/dev/null; cleanup' EXIT
wait_for grep -q ready "$TMPDIR/up2.out" && wait_for grep -q ready "$TMPDIR/up3.out" ||
	not_ok "the two fake upstreams listen"
rc_file=$TMPDIR/resolv.conf
echo "nameserver 127.0.0.2" >"$rc_file"
sed -i '/^upstream/d' "$C/berth.ini"
printf 'resolv_conf = %s\nhost = no\n' "$rc_file" >>"$C/berth.ini"
start_daemon || { tail "$log"; not_ok "the daemon starts with [dns] resolv_conf"; }
n=0
ask() {     # a new name each time: nothing cached answers it
	n=$((n + 1))
	dig +short +time=1 +tries=1 @10.88.0.1 "q$n.up.test" A 2>/dev/null
}
check_out "through berth, the nameserver of resolv.conf answers" 192.0.2.2 ask
# answers_within WANT: berth forwards to the nameserver that answers WANT
# within a second of the change
answers_within() {
	for _ in $(seq 20); do
		[ "$(ask)" = "$1" ] && return 0
		sleep 0.05
	done
	return 1
}
ino=$(stat -c %i "$rc_file")
echo "nameserver 127.0.0.3" >"$rc_file"        # what many DHCP clients do
check_out "resolv.conf rewritten in place (the same inode)" "$ino" stat -c %i "$rc_file"
check "within a second, the nameserver it now names answers" answers_within 192.0.2.3
echo "nameserver 127.0.0.2" >"$rc_file.new"
mv "$rc_file.new" "$rc_file"                    # what resolvconf does
check "replaced by rename: within a second, the new one's nameserver answers" \
	answers_within 192.0.2.2
echo "nameserver 127.0.0.3" >"$rc_file"
check "and rewritten in place again after the rename" answers_within 192.0.2.3
# behind a symlink, as with systemd-resolved: its target changes in another
# directory
mkdir -p "$TMPDIR/resolved"
echo "nameserver 127.0.0.2" >"$TMPDIR/resolved/stub.conf"
ln -sf "$TMPDIR/resolved/stub.conf" "$rc_file"
check "replaced by a symlink: the nameserver of its target answers" answers_within 192.0.2.2
echo "nameserver 127.0.0.3" >"$TMPDIR/resolved/stub.conf.new"
mv "$TMPDIR/resolved/stub.conf.new" "$TMPDIR/resolved/stub.conf"
check "the symlink's target replaced by rename in its own directory" answers_within 192.0.2.3
# a link to what does not exist yet (systemd-resolved's stub before it runs)
mkdir -p "$TMPDIR/later"
ln -sf "$TMPDIR/later/stub.conf" "$rc_file"
sleep 0.3
echo "nameserver 127.0.0.2" >"$TMPDIR/later/stub.conf"
check "a symlink whose target appears later: the target's nameserver answers" \
	answers_within 192.0.2.2
check "the daemon logs each change" grep -q "resolv.conf changed: DNS upstreams now 127.0.0.3" "$log"
kill -TERM "$pid"; wait "$pid"
done_testing
