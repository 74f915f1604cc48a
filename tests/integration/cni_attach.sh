# cni_attach.sh - CNI attachments as berth's own (issue 20 part 5): a runtime's
# container added through the plugin shows in `berth ps` (origin cni, its
# runtime id), has a DNS name and labels, publishes a port reachable from the
# world, is selected by a policy, survives a reload and a daemon restart with
# its address, and leaves nothing behind after DEL or GC; an address handed
# out again answers at once (gratuitous ARP); STATUS says when a network is
# full; a DNS name another container has is refused.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq ip dig nsenter nft python3

C=$TMPDIR/etc
S=$TMPDIR/state
mkdir -p "$C/containers.d" "$C/policies.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run

[network default]
bridge  = berth0
subnet  = 10.88.0.0/16

[network tiny]
bridge  = berth1
subnet  = 10.99.0.0/30

[dns]
domain   = berth.internal
upstream = 127.0.0.1
host     = no
INI
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = /
command = sleep 100000
labels  = app=web
INI
. "$BERTH_TOP/tests/daemon.sh"
export BERTH_SOCKET=$TMPDIR/run/berth.sock

conf() { printf '{"cniVersion":"1.1.0","name":"berthnet","type":"berth","network":"%s"%s}\n' "$1" "${2:+,$2}"; }
ipv4() { printf '%s' "$1" | jq -r '.ips[] | select(.address | contains(".")) | .address | sub("/.*"; "")'; }
# add ID [CNI_ARGS] [EXTRA JSON] [NETWORK]: ADD with netns /run/netns/ID
add() {
	ip netns add "$1" 2>/dev/null
	cni ADD CNI_CONTAINERID="$1" CNI_IFNAME=eth0 CNI_NETNS="/run/netns/$1" CNI_ARGS="${2:-}" <<EOF
$(conf "${4:-default}" "${3:-}")
EOF
}
del() {
	cni DEL CNI_CONTAINERID="$1" CNI_IFNAME=eth0 CNI_NETNS="/run/netns/$1" <<EOF
$(conf "${2:-default}")
EOF
}
ps_json() { B -o json ps | jq -c --arg n "$1" '.[] | select(.name == $n)'; }
resolve() { dig +short +time=1 +tries=1 @10.88.0.1 "$1.berth.internal"; }
# serve NETNS PORT: answer one TCP connection on PORT with "hi" (background)
serve() {
	ip netns exec "$1" python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1]))); s.listen(4); s.settimeout(20)
while True:
    c, _ = s.accept(); c.sendall(b"hi\n"); c.close()' "$2" >/dev/null 2>&1 &
	servers="${servers:-} $!"
}
# fetch [NSENTER/IP NETNS EXEC PREFIX...] HOST PORT: the line a server sends
fetch() {
	_h=$1 _p=$2; shift 2
	"$@" python3 -c 'import socket,sys
s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
sys.stdout.write(s.recv(16).decode())' "$_h" "$_p" 2>/dev/null
}
trap 'for p in ${servers:-}; do kill $p 2>/dev/null; done; cleanup; for n in $(ip netns list | cut -d" " -f1); do ip netns del $n; done' EXIT

world_ns
start_daemon || { not_ok "the daemon starts" "$(cat "$log")"; done_testing; }
wait_for test -e "$S/netns/web"

A=aaaaaaaaaaaa0123456789
add $A 'K8S_POD_NAMESPACE=prod;K8S_POD_NAME=alpha' \
	'"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"aliases":{"berthnet":["alpha","db-main"]}},"args":{"cni":{"labels":[{"key":"app","value":"db"}]}}'
check_out "ADD through the plugin succeeds" 0 echo "$rc"
a_ip=$(ipv4 "$out")
add_a=$out
check_out "berth ps lists it: attached, origin cni, the runtime's id, its address" \
	"attached cni $A $a_ip default" \
	sh -c 'ps_json() { "$1" -c "$2" -o json ps | jq -r --arg n "$3" ".[] | select(.name == \$n) | \"\(.state) \(.origin) \(.runtime_id) \([.addresses[] | select(.family==\"ipv4\") | .address] | join(\",\")) \(.networks | join(\",\"))\""; }; ps_json "$@"' \
	_ "$BERTH" "$C" aaaaaaaaaaaa
check_out "berth inspect shows it: origin, runtime id, netns, labels, address" \
	"cni $A /run/netns/$A db alpha $a_ip" \
	sh -c "'$BERTH' -c '$C' inspect aaaaaaaaaaaa | jq -r '\"\\(.origin) \\(.runtime_id) \\(.netns) \\(.labels.app) \\(.labels.pod) \\(.addresses[0].address)\"'"
check_out "its DNS name (K8S_POD_NAME) answers its address" "$a_ip" resolve alpha
check_out "... and so does its alias (runtimeConfig.aliases)" "$a_ip" resolve db-main
check_out "berth dns query knows the alias" "$a_ip" \
	sh -c "'$BERTH' -c '$C' -o json dns query db-main | jq -r '.[] | select(.type == \"A\") | .address'"
check_out "berth stop says it is the runtime's process" \
	"berth: aaaaaaaaaaaa is a CNI attachment (container $A): its process is its runtime's (podman, containerd, ...), berth keeps its network only" \
	B stop aaaaaaaaaaaa
check "metrics count it" sh -c "'$BERTH' -c '$C' metrics | grep -qx 'berth_cni_attachments{state=\"attached\"} 1'"
check "berth ports lists its published port" sh -c "'$BERTH' -c '$C' ports | grep -q '8080.*aaaaaaaaaaaa'"
serve $A 80
wait_for sh -c "ip netns exec $A ss -ltn | grep -q ':80 '"
check_out "the published port answers from the world" "hi" fetch 192.0.2.1 8080 world

# CHECK asks the kernel for what berth keeps there for the attachment (its
# port's elements, its firewall elements), not the daemon's memory
chk() {
	cni CHECK CNI_CONTAINERID=$A CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$A <<EOF
$(conf default "\"prevResult\":$add_a")
EOF
}
chk
check_out "CHECK passes while the kernel has its port's and firewall elements" "0:" echo "$rc:$out"
# berth restores a deleted element of table inet berth 100 ms after it sees
# the change: the daemon is stopped while the element goes and until the
# plugin's request waits in its socket, so that CHECK runs before the
# restore (a heavily loaded machine may still lose that race: a few tries)
pending() { [ "$(ss -xlH src "$BERTH_SOCKET" | awk '{print $3; exit}')" -ge 1 ] 2>/dev/null; }
for try in 1 2 3 4 5; do
	kill -STOP "$pid"
	nft delete element inet berth ports4 '{ tcp . 8080 }'
	( chk; printf '%s' "$out" >"$TMPDIR/chk.out"; echo "$rc" >"$TMPDIR/chk.rc" ) &
	chk_pid=$!
	wait_for pending
	sleep 0.1
	kill -CONT "$pid"
	wait "$chk_pid"
	[ "$(cat "$TMPDIR/chk.rc")" != 0 ] && break
	wait_for sh -c "nft list map inet berth ports4 | grep -q 8080"
done
out=$(cat "$TMPDIR/chk.out") rc=$(cat "$TMPDIR/chk.rc")
echo "# CHECK saw the deleted element at try $try"
check_out "after nft delete element of its port in ports4, CHECK fails: try again later (11)" \
	"1 11" sh -c 'echo "$1 $(printf "%s" "$2" | jq .code)"' _ "$rc" "$out"
check_out "... naming the port and the map" \
	"attachment aaaaaaaaaaaa: published port 8080/tcp: its element in ports4 is missing from table inet berth" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
check "berth restores the element" wait_for sh -c "nft list map inet berth ports4 | grep -q 'tcp . 8080 : $a_ip . 80'"
chk
check_out "... and CHECK passes again" "0:" echo "$rc:$out"
# the firewall's anti-spoofing elements live in table bridge berth, which
# berth does not restore on its own: a deleted one stays deleted
a_port=$(nft list set bridge berth fw_spoof4 | grep -o "\"[^\"]*\" \. $a_ip\b" | cut -d'"' -f2)
check "its bridge port's anti-spoofing element is in fw_spoof4" test -n "$a_port"
nft delete element bridge berth fw_spoof4 "{ \"$a_port\" . $a_ip }"
chk
check_out "after nft delete element of its fw_spoof4 element, CHECK fails (11)" \
	"1 11" sh -c 'echo "$1 $(printf "%s" "$2" | jq .code)"' _ "$rc" "$out"
check_out "... naming the element, the set and what it is for" \
	"attachment aaaaaaaaaaaa: firewall: its element $a_port . $a_ip in fw_spoof4 (the addresses its bridge port may send from) is missing from table bridge berth" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
nft add element bridge berth fw_spoof4 "{ \"$a_port\" . $a_ip }"
chk
check_out "put back, CHECK passes again" "0:" echo "$rc:$out"

B2=bbbbbbbbbbbb0123456789
add $B2 'K8S_POD_NAME=beta'
b_ip=$(ipv4 "$out")
serve $B2 80
wait_for sh -c "ip netns exec $B2 ss -ltn | grep -q ':80 '"
in_web() { nsenter --net="$S/netns/web" "$@"; }
check_out "before any policy, container web reaches alpha" "hi" fetch "$a_ip" 80 in_web
cat >"$C/policies.d/db.ini" <<INI
[policy]
select = app=db
types  = ingress
INI
check "a policy selecting app=db (the attachment's CNI label) reloads" B reload
check_out "now web cannot reach alpha (selected by its label)" "" fetch "$a_ip" 80 in_web
check_out "... but still reaches beta (not selected)" "hi" fetch "$b_ip" 80 in_web
check "policy why names the attachment's policy" sh -c \
	"'$BERTH' -c '$C' policy why web aaaaaaaaaaaa 80/tcp 2>&1 | grep -q 'db'"
rm "$C/policies.d/db.ini"
check "the policy goes again" B reload
check_out "a reload keeps the attachment and its address" "attached $a_ip" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"aaaaaaaaaaaa\") | \"\(.state) \([.addresses[] | select(.family==\"ipv4\") | .address] | join(\",\"))\"'"

# a daemon restart: the attachment comes back from the store, same address
kill -TERM "$pid"; wait "$pid" 2>/dev/null
start_daemon || not_ok "the daemon starts again" "$(tail -5 "$log")"
check_out "after a restart it is listed again with the same address" "attached $a_ip" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"aaaaaaaaaaaa\") | \"\(.state) \([.addresses[] | select(.family==\"ipv4\") | .address] | join(\",\"))\"'"
check_out "... its name answers" "$a_ip" resolve alpha
check_out "... and its port answers from the world" "hi" fetch 192.0.2.1 8080 world
grep -q "1 CNI attachment\|2 CNI attachments" "$log" && ok "the daemon says it restored them" ||
	not_ok "the daemon says it restored them" "$(tail -5 "$log")"

# the DNS name of a configured container is refused
add cccccccccccc0123456789 'K8S_POD_NAME=web'
check_out "a DNS name a configured container has is refused (code 7)" "1 7" \
	sh -c 'echo "$1 $(printf "%s" "$2" | jq .code)"' _ "$rc" "$out"
check "... saying who has it" sh -c 'printf "%s" "$1" | jq -r .msg | grep -q "taken by container web"' _ "$out"
ip netns del cccccccccccc0123456789
add cccccccccccc0123456789 'K8S_POD_NAMESPACE=other;K8S_POD_NAME=alpha'
check_out "a pod whose name a pod of another namespace has is attached all the same" 0 echo "$rc"
check_out "... without the name, which stays the first one's" "$a_ip" resolve alpha
del cccccccccccc0123456789
ip netns del cccccccccccc0123456789

# a port another container publishes: the request's problem (7), nothing left
add eeeeeeeeeeee0123456789 'K8S_POD_NAME=echo' \
	'"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'
check_out "ADD with a port alpha publishes fails with code 7" "1 7" \
	sh -c 'echo "$1 $(printf "%s" "$2" | jq .code)"' _ "$rc" "$out"
check "... naming the port and its owner" sh -c 'printf "%s" "$1" | jq -r .msg | grep -q "8080/tcp is already published by aaaaaaaaaaaa"' _ "$out"
check_out "... and leaves no attachment behind" "" ps_json eeeeeeeeeeee
check_out "... nor its name" "" resolve echo
ip netns del eeeeeeeeeeee0123456789

# DEL: nothing stays behind
del $A
check_out "DEL succeeds" 0 echo "$rc"
check_out "it is gone from berth ps" "" ps_json aaaaaaaaaaaa
check_out "its name no longer answers" "" resolve alpha
check_out "... nor its alias" "" resolve db-main
check "its port is withdrawn" sh -c "! '$BERTH' -c '$C' ports | grep -q 8080"
check "its address is released" sh -c "! '$BERTH' -c '$C' ip ls | grep -qw '$a_ip'"
check "its veth is gone" sh -c "! ip -o link | grep -q 'berth:aaaaaaaaaaaa/'"
check "no firewall element names its address" sh -c "! nft list table inet berth | grep -qw '$a_ip'"

# a reused address answers at once: the host caches beta's MAC for b_ip;
# beta goes, delta takes b_ip, and the host reaches delta without waiting
check_out "the host reaches beta" "hi" fetch "$b_ip" 80
del $B2
add dddddddddddd0123456789 'K8S_POD_NAME=delta' "\"runtimeConfig\":{\"ips\":[\"$b_ip/16\"]}"
check_out "delta gets beta's address (runtimeConfig.ips)" "$b_ip" ipv4 "$out"
d_mac=$(ip -n dddddddddddd0123456789 -j link show eth0 | jq -r '.[0].address')
serve dddddddddddd0123456789 80
wait_for sh -c "ip netns exec dddddddddddd0123456789 ss -ltn | grep -q ':80 '"
check_out "the host reaches delta at once (no stale MAC)" "hi" fetch "$b_ip" 80
check_out "the host's neighbour entry is delta's MAC" "$d_mac" \
	sh -c "ip -j neigh show '$b_ip' dev berth0 | jq -r '.[0].lladdr'"

# GC: the attachments not listed go, with everything they held
for i in 1 2 3 4; do add "gc${i}cccccccccc" "K8S_POD_NAME=gc$i" \
	"\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":900$i,\"containerPort\":80,\"protocol\":\"tcp\"}]}"; done
cni GC <<EOF
$(conf default '"cni.dev/valid-attachments":[{"containerID":"dddddddddddd0123456789","ifname":"eth0"},{"containerID":"gc1cccccccccc","ifname":"eth0"}]')
EOF
check_out "GC succeeds" 0 echo "$rc"
check_out "berth keeps the listed ones only" "dddddddddddd gc1ccccccccc" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '[.[] | select(.origin == \"cni\") | .name] | sort | join(\" \")'"
check_out "the others' names are gone" "" sh -c "for i in 2 3 4; do dig +short +time=1 +tries=1 @10.88.0.1 gc\$i.berth.internal; done"
check "the others' ports are gone" sh -c "! '$BERTH' -c '$C' ports | grep -q '900[234]'"
check_out "the others' veths are gone" "0" sh -c "ip -o link | grep -c 'berth:gc[234]'"

# a reboot: the runtime's netns is gone, the attachment cannot come back
# and says why; the runtime's next ADD (a new netns) gets its address again
kill -TERM "$pid"; wait "$pid" 2>/dev/null
ip netns del dddddddddddd0123456789
start_daemon || not_ok "the daemon starts again" "$(tail -5 "$log")"
check "an attachment whose netns is gone shows the error" sh -c \
	"'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"dddddddddddd\") | \"\(.state) \(.error)\"' | grep -q '^error .*netns'"
add dddddddddddd0123456789 'K8S_POD_NAME=delta'
check_out "ADD again in a new netns replaces it" 0 echo "$rc"
check_out "... with the address it had" "$b_ip" ipv4 "$out"
check_out "... and it is attached" "attached" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"dddddddddddd\") | .state'"

# STATUS: a network with no address left is not available
add tinyaaaaaaaa "" "" tiny
check_out "the last address of a /30 is handed out" 0 echo "$rc"
cni STATUS <<EOF
$(conf tiny)
EOF
check_out "STATUS on a full network: code 50" "1 50" sh -c 'echo "$1 $(printf "%s" "$2" | jq .code)"' _ "$rc" "$out"
check "... saying why" sh -c 'printf "%s" "$1" | jq -r .msg | grep -q "no free address"' _ "$out"
cni STATUS <<EOF
$(conf default)
EOF
check_out "STATUS on a network with room: ok" "0" echo "$rc"
done_testing
