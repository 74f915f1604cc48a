#!/bin/sh
# net_errors.sh - berth net: bad names and conflicts are clear errors that change nothing.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq

S=$TMPDIR/state
attach() {  # NAME [options]; prints stderr and the exit status
	_n=$1; shift
	"$BERTH" net attach "$_n" --state-dir "$S" --bridge berth0 --gateway 10.88.0.1/16 \
		--ip 10.88.0.5/16 "$@" 2>&1
	echo "exit $?"
}
long=abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789abcd

check_out "a slash in the name is refused" \
	"berth: container name 'a/b': only letters, digits, '_', '.', '-' are allowed
exit 1" attach a/b
check_out "a space in the name is refused" \
	"berth: container name 'web 1': only letters, digits, '_', '.', '-' are allowed
exit 1" attach "web 1"
check_out "a name must start with a letter or digit" \
	"berth: container name '.web': must start with a letter or a digit
exit 1" attach .web
check_out "a 64-character name is too long" \
	"berth: container name 'abcdefghij0123456789...': at most 63 characters (it has 64)
exit 1" attach "$long"
check_out "nothing was created by the refused attaches" "lo" sh -c "ip -j link show | jq -r '.[].ifname'"
check_out "and no netns file" "" sh -c "ls '$S/netns' 2>/dev/null"

check_out "--ifname lo is refused" "berth: interface 'lo': that name is the container's loopback
exit 1" attach web --ifname lo
check_out "an interface name with a space is refused" \
	"berth: interface 'e 0': '/', ':', '%' and spaces are not allowed
exit 1" attach web --ifname "e 0"
check_out "a bad prefix length is a usage error" \
	"berth: --ip: '10.88.0.5/33': prefix length must be a number from 0 to 32
exit 2" attach web --ip 10.88.0.5/33
check_out "a missing --state-dir is a usage error" "2" \
	sh -c "'$BERTH' net attach web --bridge berth0 --ip 10.88.0.5/16 2>/dev/null; echo \$?"
check_out "detach of a bad name is refused" \
	"berth: container name 'a/b': only letters, digits, '_', '.', '-' are allowed
1" sh -c "'$BERTH' net detach a/b --state-dir '$S' 2>&1; echo \$?"

# Names that are taken by something that is not berth's.
ip link add bh-web type bridge
check_out "a host-side name taken by a foreign link is refused, not stolen" \
	"berth: host interface bh-web for container web exists and was not created by berth
exit 1" attach web
check_out "the foreign link is untouched" "bridge" sh -c "ip -d -j link show bh-web | jq -r '.[0].linkinfo.info_kind'"
ip link add notbr type veth peer name notbr-p
check_out "a bridge name taken by a non-bridge is refused" \
	"berth: bridge notbr: a link of that name exists and is a veth, not a bridge
exit 1" sh -c "'$BERTH' net attach db --state-dir '$S' --bridge notbr --ip 10.88.0.6/16 2>&1; echo exit \$?"
check_out "bridge-delete refuses a non-bridge" "berth: delete bridge notbr: that link is not a bridge
exit 1" sh -c "'$BERTH' net bridge-delete notbr 2>&1; echo exit \$?"

# A hashed host name that another container holds (a hash collision): refused.
check_out "attach db/eth1 (hashed host name)" "exit 0" attach db --ifname eth1
h=$(ip -j link show master berth0 | jq -r '.[] | select(.ifalias == "berth:db/eth1") | .ifname')
check "detach db" "$BERTH" net detach db --state-dir "$S"
for i in $(seq 1 30); do ip link show "$h" >/dev/null 2>&1 || break; sleep 0.1; done
ip link add "$h" type veth peer name "$h-p"
ip link set "$h" alias "berth:other/eth1"
check_out "a host name held by another container is refused with both names" \
	"berth: host interface $h for db/eth1 is taken by other/eth1 (name hash collision): rename the container
exit 1" sh -c "'$BERTH' net attach db --state-dir '$S' --bridge berth0 --ip 10.88.0.6/16 --ifname eth1 2>&1; echo exit \$?"

# Kernel errors come back with what berth was doing and the kernel's own words.
check_out "a gateway outside the container's subnet: the kernel's reason is shown" \
	"berth: configure eth0 of container x: Network is unreachable (ENETUNREACH): Nexthop has invalid gateway
exit 1" sh -c "'$BERTH' net attach x --state-dir '$S' --bridge berth0 --gateway 10.88.0.1/16 --ip 10.77.0.5/16 2>&1; echo exit \$?"
check_out "the same container attached with a right address then converges" "exit 0" \
	sh -c "'$BERTH' net attach x --state-dir '$S' --bridge berth0 --gateway 10.88.0.1/16 --ip 10.88.0.9/16 2>&1; echo exit \$?"
check_out "and has its default route" "10.88.0.1" \
	sh -c "nsenter --net='$S/netns/x' ip -j route show default | jq -r '.[0].gateway'"
done_testing
