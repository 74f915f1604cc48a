# dns_firewall.sh - DNS to a container's own gateway through the firewall:
# a container isolated both ways by a policy still resolves over UDP and TCP
# (DESIGN §3: DNS to the gateway of its own networks is always allowed),
# the UDP queries and answers bypass conntrack (fw_dns_pre / fw_dns_out: no
# entry per query) while other ports stay tracked, and the chains come back
# with the table after `nft flush ruleset`.
. "$BERTH_TOP/tests/lib.sh"
need_cmd dig nsenter nft

C=$TMPDIR/etc
S=$TMPDIR/state
R=$TMPDIR/run
mkdir -p "$C/containers.d" "$C/policies.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $R

[network default]
bridge = berth0
subnet = 10.88.0.0/24

[dns]
upstream = 127.0.0.1
host     = no
INI
for n in iso peer; do
	cat >"$C/containers.d/$n.ini" <<INI
[container]
rootfs  = /
command = sleep 100000
labels  = app=$n
INI
done
cat >"$C/policies.d/lockdown.ini" <<INI
[policy]
select = app=iso
types  = ingress, egress
INI

log=$TMPDIR/daemon.log
"$BERTH" daemon -c "$C" --foreground >"$log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null' EXIT
for _ in $(seq 100); do "$BERTH" -c "$C" status >/dev/null 2>&1 && break; sleep 0.05; done
check "the daemon starts with an isolated container" "$BERTH" -c "$C" status
for _ in $(seq 100); do [ -e "$S/netns/iso" ] && [ -e "$S/netns/peer" ] && break; sleep 0.05; done
addr_of() { "$BERTH" -c "$C" ps | awk -v n="$1" '$1 == n { for (i = 2; i <= NF; i++) if ($i ~ /^10\.88\./) print $i }'; }
peer_ip=$(addr_of peer)
iso_ip=$(addr_of iso)
in_iso() { nsenter --net="$S/netns/iso" "$@"; }
in_peer() { nsenter --net="$S/netns/peer" "$@"; }
# conntrack entries of UDP from SRC:SPORT to the gateway's DPORT
udp_entries() { grep -c "^ipv4 .* udp .*src=$1 dst=10.88.0.1 sport=$2 dport=$3 " /proc/net/nf_conntrack; }

check_out "an isolated container resolves a name over UDP from its gateway" "$peer_ip" \
	in_iso dig +short +time=2 +tries=1 -b "$iso_ip#5301" @10.88.0.1 peer.berth.internal
check_out "... and over TCP" "$peer_ip" \
	in_iso dig +short +time=2 +tries=1 +tcp @10.88.0.1 peer.berth.internal
check_out "... and its own name" "$iso_ip" \
	in_iso dig +short +time=2 +tries=1 @10.88.0.1 iso.berth.internal
check_out "the UDP query left no conntrack entry (fw_dns_pre/fw_dns_out: notrack)" "0" \
	udp_entries "$iso_ip" 5301 53
check_out "a container without a policy resolves too" "$iso_ip" \
	in_peer dig +short +time=2 +tries=1 -b "$peer_ip#5303" @10.88.0.1 iso.berth.internal
check_out "... without a conntrack entry either" "0" udp_entries "$peer_ip" 5303 53
in_peer dig +short +time=1 +tries=1 -b "$peer_ip#5304" -p 5353 @10.88.0.1 peer.berth.internal \
	>/dev/null 2>&1
check_out "UDP to another port of the gateway is tracked as before" "1" \
	udp_entries "$peer_ip" 5304 5353

nft flush ruleset
for _ in $(seq 100); do nft list chain inet berth fw_dns_out >/dev/null 2>&1 && break; sleep 0.05; done
check_out "after nft flush ruleset the notrack chains are restored with the table" \
	"ip saddr . ip daddr @fw_dns4 notrack" \
	sh -c "nft list chain inet berth fw_dns_pre | grep -o 'ip saddr . ip daddr @fw_dns4 notrack'"
for _ in $(seq 100); do nft list set inet berth fw_dns4 2>/dev/null | grep -q "$iso_ip" && break; sleep 0.05; done
check_out "... and the isolated container resolves again" "$peer_ip" \
	in_iso dig +short +time=2 +tries=1 @10.88.0.1 peer.berth.internal

kill "$dpid" 2>/dev/null
wait "$dpid" 2>/dev/null
done_testing
