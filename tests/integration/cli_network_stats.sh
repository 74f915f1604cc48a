# cli_network_stats.sh - `network ls | inspect`, `stats` and `port` as a
# user reads them: subnets, gateway, bridge, containers with their
# addresses and the free addresses of IPAM (one fewer for each container
# added); per container the packets between two containers on the same
# bridge (the veth counters: no br_netfilter needed), the CPU time of a busy
# container growing, its memory; `port NAME` as docker says it.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
for n in a b; do
	printf '[container]\nrootfs = %s\ncommand = sleep 100000\nstop_timeout = 1\n' "$R" \
		>"$C/containers.d/$n.ini"
done
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = $R
command = httpd -f -p 80 -h /www
ports   = 8080:80/tcp, 127.0.0.1:5353:53/udp
stop_timeout = 1
init    = no
INI
printf '[container]\nrootfs = %s\ncommand = sh -c "while :; do :; done"\nstop_timeout = 1\n' "$R" \
	>"$C/containers.d/burner.ini"

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
ip4() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | .addresses[] | select(.family == \"ipv4\") | .address"; }

# ---- network ls | inspect ------------------------------------------------------
check "network ls: a header for people" sh -c \
	"'$BERTH' -c '$C' network ls | head -1 | grep -Eq '^NAME +BRIDGE +SUBNET +GATEWAY +CONTAINERS +FREE +FREE6\$'"
# a /16 without ranges: 65,536 less the network, gateway and broadcast
# addresses is 65,533, less one per container
check_out "network ls: default on berth0, its subnet, gateway, 4 containers, 65529 free" \
	"default berth0 10.88.0.0/16 10.88.0.1 4 65529 -" sh -c \
	"'$BERTH' -c '$C' network ls | awk 'NR == 2 { print \$1, \$2, \$3, \$4, \$5, \$6, \$7 }'"
check_out "network ls -o json: the same, as numbers" \
	'"default" "berth0" "10.88.0.0/16" "10.88.0.1" 4 65529 true false 1500' sh -c \
	"'$BERTH' -c '$C' -o json network ls | jq -r '.[0] | [(.name|tojson), (.bridge|tojson), (.subnets[0].subnet|tojson), (.subnets[0].gateway|tojson), (.containers|length), .subnets[0].free_addresses, .masquerade, .isolate, .mtu] | join(\" \")'"
printf '[container]\nrootfs = %s\ncommand = sleep 100000\nstop_timeout = 1\n' "$R" >"$C/containers.d/c.ini"
check "reload with one container more" B reload
check_out "a container more: one free address fewer" "5 65528" sh -c \
	"'$BERTH' -c '$C' -o json network ls | jq -r '.[0] | \"\\(.containers | length) \\(.subnets[0].free_addresses)\"'"
check_out "network inspect -o json: each container with its interface and address object" \
	"a eth0 default ipv4 $(ip4 a) 16" sh -c \
	"'$BERTH' -c '$C' -o json network inspect default | jq -r '.containers[] | select(.container == \"a\") | \"\\(.container) \\(.interface) \\(.addresses[0].network) \\(.addresses[0].family) \\(.addresses[0].address) \\(.addresses[0].prefix_length)\"'"
check_out "network inspect -o json: allocated and free add up to the subnet's usable addresses" \
	65533 sh -c "'$BERTH' -c '$C' -o json network inspect default | jq '.subnets[0] | .allocated_addresses + .free_addresses'"
out=$(B network inspect default)
check "network inspect: bridge, gateway and free addresses for people" sh -c \
	'printf "%s\n" "$1" | grep -q "^bridge *berth0$" &&
	 printf "%s\n" "$1" | grep -q "^  gateway   10.88.0.1$" &&
	 printf "%s\n" "$1" | grep -q "^  addresses 5 allocated, 65528 free$"' _ "$out"
check "network inspect: a row per container with its address" sh -c \
	'printf "%s\n" "$1" | grep -Eq "^  b +eth0 +$2 +-$"' _ "$out" "$(ip4 b)"
out=$(B network inspect nope 2>&1); rc=$?
check_out "network inspect of an unknown network: named, exit 1" "1 berth: no such network: nope" \
	echo "$rc $out"
out=$(B network 2>&1); rc=$?
check_out "network without ls/inspect: its usage, exit 2" "2 berth: network: missing a subcommand
usage: berth network ls
       berth network inspect NETWORK
see: berth help network" \
	echo "$rc $out"

# ---- port NAME ---------------------------------------------------------------------
check_out "port web: each published port, docker style" "53/udp -> 127.0.0.1:5353
80/tcp -> 0.0.0.0:8080" sh -c "'$BERTH' -c '$C' port web | sort"
check_out "port web 80: the host side only" "0.0.0.0:8080" B port web 80
check_out "port web 53/udp" "127.0.0.1:5353" B port web 53/udp
check_out "port -o json: the published-port objects" \
	'[{"host_ip":null,"host_port":8080,"container":"web","container_port":80,"proto":"tcp"}]' sh -c \
	"'$BERTH' -c '$C' -o json port web | jq -c '[.[] | select(.proto == \"tcp\")]'"
check_out "port of a container without ports: nothing" "" B port a
out=$(B port nope 2>&1); rc=$?
check_out "port of an unknown container: named, exit 1" "1 berth: no such container: nope" echo "$rc $out"

# ---- stats ---------------------------------------------------------------------------
check "stats --no-stream: a header for people" sh -c \
	"'$BERTH' -c '$C' stats --no-stream | head -1 | grep -Eq '^NAME +STATE +CPU % +MEM USAGE / LIMIT +PIDS +NET I/O \\(IN / OUT\\) +PACKETS \\(IN / OUT\\)\$'"
before=$(B -o json stats --no-stream a b)
check "a pings b across the bridge" B exec a -- ping -c 5 -i 0.2 -W 2 "$(ip4 b)"
after=$(B -o json stats --no-stream a b)
pk() { printf '%s' "$1" | jq -r ".[] | select(.name == \"$2\") | .$3"; }
check "stats: a sent at least 5 packets more (veth counters see container-to-container traffic)" \
	test $(($(pk "$after" a net_out_packets) - $(pk "$before" a net_out_packets))) -ge 5
check "and b received them" \
	test $(($(pk "$after" b net_in_packets) - $(pk "$before" b net_in_packets))) -ge 5
check "and answered them" \
	test $(($(pk "$after" b net_out_packets) - $(pk "$before" b net_out_packets))) -ge 5
check "bytes count too" test "$(pk "$after" a net_out_bytes)" -gt "$(pk "$before" a net_out_bytes)"
s1=$(B -o json stats --no-stream burner)
sleep 1
s2=$(B -o json stats --no-stream burner)
check "stats: a busy container's CPU time grows" sh -c \
	"[ \$(printf '%s %s' \"\$(printf '%s' '$s1' | jq '.[0].cpu_seconds')\" \"\$(printf '%s' '$s2' | jq '.[0].cpu_seconds')\" | awk '{ print (\$2 - \$1 > 0.3) }') = 1 ]"
check "and its CPU % says it is busy (over 30%)" sh -c \
	"printf '%s' '$s2' | jq -e '.[0].cpu_percent > 30' >/dev/null"
check "an idle one's is near 0" sh -c \
	"'$BERTH' -c '$C' -o json stats --no-stream a | jq -e '.[0].cpu_percent < 5' >/dev/null"
check "memory: the processes' resident memory, a number of bytes" sh -c \
	"printf '%s' '$s2' | jq -e '.[0].memory_bytes > 100000 and .[0].pids >= 1' >/dev/null"
out=$(timeout 3.5 "$BERTH" -c "$C" stats burner)
check "stats streams a table every second (not a tty: no screen clearing)" sh -c \
	'[ "$(printf "%s\n" "$1" | grep -c "^NAME ")" -ge 2 ] && ! printf "%s" "$1" | grep -q "$(printf "\033")"' _ "$out"
if command -v script >/dev/null; then
	out=$(script -qc "timeout 2.5 '$BERTH' -c '$C' stats burner" /dev/null)
	check "on a terminal, stats clears the screen before each table" sh -c \
		'printf "%s" "$1" | grep -q "$(printf "\033\\[H\033\\[2J")NAME "' _ "$out"
else
	skip "on a terminal, stats clears the screen before each table" "script(1) is not installed"
fi
out=$(timeout 3.5 "$BERTH" -c "$C" -o json stats burner a)
check "stats -o json streams JSON Lines: one object per container per second" sh -c \
	'printf "%s\n" "$1" | jq -e -s "length >= 4 and (map(.name) | unique) == [\"a\", \"burner\"]" >/dev/null' _ "$out"
out=$(B stats --no-stream nope 2>&1); rc=$?
check_out "stats of an unknown container: named, exit 1" "1 berth: no such container: nope" echo "$rc $out"
out=$(B stats --bogus 2>&1); rc=$?
check_out "stats --bogus: usage, exit 2" "2 berth: stats: unknown option '--bogus'
usage: berth stats [--no-stream] [NAME...]
see: berth help stats" echo "$rc $out"
done_testing
