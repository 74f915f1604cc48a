# dns_attach_failed.sh - a container whose network could not be set up has no
# DNS names (issue 18 item 3): its address was allocated but its veth never
# came to be, so A, AAAA and PTR must not point at it (asked on 127.0.0.53,
# which sees every network); once the network works
# (a reload after the cause is gone), its names appear.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq dig

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal" "host     = yes"
cat >>"$C/berth.ini" <<INI
[network lab]
bridge  = berth9
subnet  = 10.99.0.0/24
subnet6 = fd99::/64
INI
printf '[container]\nrootfs  = %s\ncommand = sleep 3600\n' "$R" >"$C/containers.d/ok.ini"
printf '[container]\nrootfs  = %s\ncommand = sleep 3600\nnetworks = lab\nip = 10.99.0.77\n' "$R" \
	>"$C/containers.d/broken.ini"
# a link that is not a bridge holds lab's bridge name: lab cannot be set up
ip link add berth9 type veth peer name berth9p || skip_all "cannot create a veth pair"

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
check_out "the container whose network failed is in state error" "error" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"broken\") | .state'"
check_out "it has no A record" "" dig +short +time=1 +tries=1 @127.0.0.53 broken.berth.internal A
check_out "no AAAA record" "" dig +short +time=1 +tries=1 @127.0.0.53 broken.berth.internal AAAA
check_out "and its address has no PTR" "" dig +short +time=1 +tries=1 @127.0.0.53 -x 10.99.0.77
check "the other container still resolves" sh -c \
	"[ -n \"\$(dig +short +time=1 +tries=1 @127.0.0.53 ok.berth.internal A)\" ]"

ip link del berth9
B reload >/dev/null 2>&1
check "once the cause is gone, a reload attaches it" wait_for sh -c \
	"[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name==\"broken\") | .state')\" = running ]"
check_out "and its name resolves" "10.99.0.77" dig +short +time=1 +tries=1 @127.0.0.53 broken.berth.internal A
done_testing
