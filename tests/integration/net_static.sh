# net_static.sh - static addresses (ip =, ip6 =) are reserved for their
# container: a container applied earlier (files in name order) is never handed
# one dynamically, at start-up or at a reload; a reload that asks for an
# address a running container holds dynamically names the holder and leaves it
# running, and restarting the holder hands the address over.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq nsenter ip
. "$BERTH_TOP/tests/daemon.sh"

mkdir -p "$C/containers.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run

[network default]
bridge  = berth0
subnet  = 10.88.0.0/16
range   = 10.88.1.10-10.88.1.19, fd88::10-fd88::19
subnet6 = fd88::/64

[dns]
upstream = 127.0.0.1
host     = no
INI
ctr() { # NAME [KEY = VALUE]...
	n=$1; shift
	{
		printf '[container]\nrootfs  = /\ncommand = sleep 1000\n'
		for kv in "$@"; do printf '%s\n' "$kv"; done
	} >"$C/containers.d/$n.ini"
}
# the dynamic container sorts first and would get the first address of the
# range, which the static one (sorted last) asks for
ctr a
ctr z "ip = 10.88.1.10" "ip6 = fd88::10"
check_out "config check accepts a static address inside the dynamic range" 0 \
	sh -c "'$BERTH' config check -c '$C' >/dev/null; echo \$?"

# NAME: "STATE IPV4 IPV6", and the ERROR when there is one
row() { B -o json ps | jq -r ".[] | select(.name==\"$1\") | \"\(.state) \([.addresses[] | select(.family==\"ipv4\") | .address] | join(\",\") | if . == \"\" then \"-\" else . end) \([.addresses[] | select(.family==\"ipv6\") | .address] | join(\",\") | if . == \"\" then \"-\" else . end)\" + (if .error != null then \" \(.error)\" else \"\" end)"; }
running() { wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '.[] | select(.name==\"$1\" and .state==\"running\")'"; }
inside() { nsenter --net="$S/netns/$1" ip -j addr show eth0 | jq -r '[.[0].addr_info[] | select(.scope=="global") | .local] | join(" ")'; }

start_daemon; check_out "the daemon starts" 0 echo $?
running a; running z
check_out "the dynamic container, applied first, skips the static address" \
	"running 10.88.1.11 fd88::11" row a
check_out "the static container, applied last, has its address" "running 10.88.1.10 fd88::10" row z
check_out "and so does its interface" "10.88.1.10 fd88::10" inside z

# a reload with a dynamic container (sorted first) and a static one asking
# for the address the dynamic one would get next
ctr b
ctr y "ip = 10.88.1.12" "ip6 = fd88::12"
out=$(B reload 2>&1)
check_out "reload: the two new containers, no problem" "+ container b
+ container y" echo "$out"
running b; running y
check_out "the new dynamic container skips the new static address" "running 10.88.1.13 fd88::13" row b
check_out "the new static container has its address" "running 10.88.1.12 fd88::12" row y
check_out "the earlier containers keep theirs (a)" "running 10.88.1.11 fd88::11" row a
check_out "the earlier containers keep theirs (z)" "running 10.88.1.10 fd88::10" row z

# a reload that asks for an address a running container holds dynamically
pid_a=$(B -o json ps | jq -r '.[] | select(.name=="a") | .pid')
ctr w "ip = 10.88.1.11"
check_out "config check names the holder too (a warning: the configuration is valid)" \
	"warning: containers.d/w.ini:4: [container] ip: 10.88.1.11 is held by container 'a' (allocated dynamically); restart or remove it to free it, or choose another address" \
	sh -c "'$BERTH' config check -c '$C' | grep '^warning'"
out=$(B reload 2>&1)
check_out "reload names the holder and says what to do" "+ container w
problems while applying:
container w: network default: ip 10.88.1.11 is held by container 'a' (allocated dynamically); restart or remove 'a' to free it, or choose another ip" \
	echo "$out"
check_out "the static container is in error with that message" \
	"error - - network default: ip 10.88.1.11 is held by container 'a' (allocated dynamically); restart or remove 'a' to free it, or choose another ip" row w
check_out "the holder keeps running with its address" "running 10.88.1.11 fd88::11" row a
check_out "its process was not touched" "$pid_a" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"a\") | .pid'"

B restart a >/dev/null
check "restarting the holder hands the address over: the static container runs" running w
running a
check_out "the static container has its address" "running 10.88.1.11 fd88::14" row w
check_out "and its interface has it" "10.88.1.11" sh -c "nsenter --net='$S/netns/w' ip -j addr show eth0 | jq -r '[.[0].addr_info[] | select(.family==\"inet\") | .local] | join(\" \")'"
check_out "the former holder has a new IPv4 address from the range, and its IPv6 one" \
	"running 10.88.1.14 fd88::11" row a
check_out "its interface too (the old address is gone)" "10.88.1.14 fd88::11" inside a
check_out "the handover is logged" 1 sh -c "grep -c \"container a: network default: 10.88.1.11 is the static ip of container 'w': it now has 10.88.1.14\" '$log'"

# a holder without a process is moved at once, even when the static
# container comes first in file order
B stop b >/dev/null
wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '.[] | select(.name==\"b\" and .state==\"stopped\")'"
ctr aa "ip = 10.88.1.13"
out=$(B reload 2>&1)
check_out "reload says the stopped holder is moved" "+ container aa
problems while applying:
container aa: network default: ip 10.88.1.13 is held by container 'b' (allocated dynamically), which is not running: it gets another address and this container its ip right after" \
	echo "$out"
check "and right after, the static container runs" running aa
check_out "with its address" "running 10.88.1.13 fd88::15" row aa
check_out "the stopped holder has a new IPv4 address and stays stopped" "stopped 10.88.1.15 fd88::13" row b

# across a daemon restart (kill -9), nothing moves
kill -KILL "$pid"; wait "$pid" 2>/dev/null
start_daemon
check_out "after kill -9 and a restart every container keeps its address" \
	"a running 10.88.1.14 fd88::11
aa running 10.88.1.13 fd88::15
b stopped 10.88.1.15 fd88::13
w running 10.88.1.11 fd88::14
y running 10.88.1.12 fd88::12
z running 10.88.1.10 fd88::10" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r 'sort_by(.name) | .[] | \"\(.name) \(.state) \([.addresses[] | select(.family==\"ipv4\") | .address] | join(\",\") | if . == \"\" then \"-\" else . end) \([.addresses[] | select(.family==\"ipv6\") | .address] | join(\",\") | if . == \"\" then \"-\" else . end)\"'"

# a clean stop, then a start-up where a removed container's address is asked
# for statically: the removed one's allocation goes first
kill -TERM "$pid"; wait "$pid" 2>/dev/null
rm "$C/containers.d/b.ini"
ctr bz "ip = 10.88.1.15"
start_daemon
check "at start-up, the static container that wants a removed container's address runs" running bz
check_out "with that address" "running 10.88.1.15 fd88::16" row bz
check_out "and the removed container is gone" "" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"b\") | .name'"
done_testing
