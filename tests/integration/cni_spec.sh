# cni_spec.sh - berth as a CNI plugin, driven as a runtime drives it: the
# binary with CNI_* in its environment and the netconf on stdin, for every
# verb, each spec version and each error path; the result and error JSON are
# checked field by field.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq ip
. "$BERTH_TOP/tests/daemon.sh"      # cni, and the daemon for the second half

sock=$TMPDIR/run/berth.sock
export BERTH_SOCKET=$sock

# conf VERSION [EXTRA JSON MEMBERS]: a netconf for network "default"
conf() { printf '{"cniVersion":"%s","name":"berthnet","type":"berth","network":"default"%s}\n' "$1" "${2:+,$2}"; }
# error_is CODE "what": the last run failed with JSON error CODE
error_is() {
	check_out "$2: exit status 1" 1 echo "$rc"
	check_out "$2: error code $1" "$1" sh -c 'printf "%s" "$1" | jq -e .code' _ "$out"
}
ATT="CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1"

# ---- VERSION ----------------------------------------------------------------
all='["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]'
for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
	cni VERSION <<EOF
{"cniVersion":"$v"}
EOF
	check_out "VERSION with cniVersion $v answers in $v" "$v" \
		sh -c 'printf "%s" "$1" | jq -r .cniVersion' _ "$out"
	check_out "VERSION $v lists every supported version" "$all" \
		sh -c 'printf "%s" "$1" | jq -c .supportedVersions' _ "$out"
done
cni VERSION </dev/null
check_out "VERSION without stdin answers 1.1.0, exit 0" "1.1.0 0" \
	sh -c 'printf "%s" "$1" | jq -r .cniVersion | tr "\n" " "; echo "$2"' _ "$out" "$rc"

# ---- versions the other verbs refuse (1) --------------------------------------
cni ADD $ATT <<EOF
$(conf 9.9.9)
EOF
error_is 1 "ADD with cniVersion 9.9.9"
check_out "the message names the version and what berth answers" \
	"cniVersion: '9.9.9' is not one berth answers (0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
cni ADD $ATT <<EOF
{"name":"berthnet","type":"berth"}
EOF
error_is 1 "ADD without cniVersion (0.2.0 by the spec)"
cni CHECK $ATT <<EOF
$(conf 0.3.1 '"prevResult":{}')
EOF
error_is 1 "CHECK with 0.3.1 (CHECK came in 0.4.0)"
cni GC <<EOF
$(conf 1.0.0 '"cni.dev/valid-attachments":[]')
EOF
error_is 1 "GC with 1.0.0 (GC came in 1.1.0)"
cni STATUS <<EOF
$(conf 0.4.0)
EOF
error_is 1 "STATUS with 0.4.0"

# ---- netconf that is not JSON (6) ------------------------------------------------
cni ADD $ATT <<EOF
{"cniVersion":"1.0.0","name":"berthnet",}
EOF
error_is 6 "a trailing comma"
check_out "the parser's message says which byte" \
	"netconf: byte 40: expected a key after ',', found '}'" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
cni DEL CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 <<EOF
[1, 2]
EOF
error_is 6 "an array instead of an object"
cni ADD $ATT </dev/null
error_is 6 "no netconf at all"

# ---- environment (4) ------------------------------------------------------------
for var in CNI_CONTAINERID CNI_IFNAME CNI_NETNS; do
	env=$(echo "$ATT" | tr ' ' '\n' | grep -v "^$var=" | tr '\n' ' ')
	cni ADD $env <<EOF
$(conf 1.0.0)
EOF
	error_is 4 "ADD without $var"
	check_out "the message names $var" "$var is not set (ADD needs it)" \
		sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
done
cni ADD CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 <<EOF
$(conf 0.4.0)
EOF
check_out "an error carries the netconf's cniVersion" 0.4.0 \
	sh -c 'printf "%s" "$1" | jq -r .cniVersion' _ "$out"
cni ADD CNI_CONTAINERID=ctr1 CNI_IFNAME=a/b CNI_NETNS=/run/netns/ctr1 <<EOF
$(conf 1.0.0)
EOF
error_is 4 "CNI_IFNAME with a '/'"
cni ADD CNI_CONTAINERID=-x CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 <<EOF
$(conf 1.0.0)
EOF
error_is 4 "CNI_CONTAINERID starting with '-'"
cni ADD $ATT CNI_ARGS='K8S_POD_NAME=a;junk' <<EOF
$(conf 1.0.0)
EOF
error_is 4 "CNI_ARGS with a pair that is not KEY=VALUE"
cni FROB <<EOF
$(conf 1.0.0)
EOF
error_is 4 "an unknown CNI_COMMAND"

# ---- netconf fields (7) -------------------------------------------------------------
cni ADD $ATT <<EOF
{"cniVersion":"1.0.0","type":"berth"}
EOF
error_is 7 "a netconf without name"
cni ADD $ATT <<EOF
$(conf 1.0.0 '"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80},{"hostPort":70000,"containerPort":80}]}')
EOF
error_is 7 "a host port of 70000"
check_out "the message names the field" \
	"runtimeConfig.portMappings[1].hostPort: 70000 is out of range (1 to 65535)" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
cni ADD $ATT <<EOF
$(conf 1.0.0 '"runtimeConfig":{"aliases":["web"]}')
EOF
error_is 7 "aliases as a list instead of {netconf name: [names]}"
cni ADD $ATT <<EOF
$(conf 1.0.0 '"runtimeConfig":{"ips":["10.88.0.300/16"]}')
EOF
error_is 7 "a static address that is not one"
cni ADD $ATT <<EOF
$(conf 1.0.0 '"args":{"cni":{"labels":[{"value":"x"}]}}')
EOF
error_is 7 "a label without a key"
cni GC <<EOF
$(conf 1.1.0)
EOF
error_is 7 "GC without cni.dev/valid-attachments (it would release everything)"

# ---- no daemon (11; STATUS 50) --------------------------------------------------------
cni ADD $ATT <<EOF
$(conf 1.0.0)
EOF
error_is 11 "ADD with no daemon: try again later"
check_out "the message names the socket" \
	"cannot reach berth at $sock: No such file or directory (is the daemon running?)" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"
cni DEL CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 <<EOF
$(conf 1.0.0)
EOF
error_is 11 "DEL without CNI_NETNS is valid, and with no daemon is 11"
cni CHECK $ATT <<EOF
$(conf 1.0.0 '"prevResult":{"ips":[]}')
EOF
error_is 11 "CHECK with no daemon"
cni GC <<EOF
$(conf 1.1.0 '"cni.dev/valid-attachments":[]')
EOF
error_is 11 "GC with no daemon"
cni STATUS <<EOF
$(conf 1.1.0)
EOF
error_is 50 "STATUS with no daemon: not available"
cni STATUS <<EOF
$(conf 1.1.0 "\"socket\":\"$TMPDIR/other.sock\"")
EOF
check_out "the netconf's socket wins over BERTH_SOCKET" \
	"cannot reach berth at $TMPDIR/other.sock: No such file or directory (is the daemon running?)" \
	sh -c 'printf "%s" "$1" | jq -r .msg' _ "$out"

# ---- with the daemon ------------------------------------------------------------------
# needs daemon cni requests: everything below talks to a real daemon. Until
# the daemon answers `cni ...` requests, these cases are skipped (the probe
# below sees "unknown command 'cni'").
mkdir -p "$C"
cat >"$C/berth.ini" <<EOF
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run
[network default]
bridge  = berth0
subnet  = 10.88.0.0/16
subnet6 = fd88::/64
[dns]
upstream = 127.0.0.1
EOF
start_daemon || { not_ok "the daemon starts" "$(cat "$log")"; done_testing; }
cni STATUS <<EOF
$(conf 1.1.0)
EOF
if printf '%s' "$out" | grep -q "unknown command"; then
	skip "ADD, CHECK, DEL, GC and STATUS against the daemon" "the daemon does not answer cni requests yet"
	done_testing
fi
check_out "STATUS with the daemon up: exit 0, nothing on stdout" "0:" echo "$rc:$out"

for n in ctr1 ctr2 ctr3; do ip netns add "$n"; done
# ADD in each result form: 1.1.0 with a port and aliases, 0.4.0, 1.0.0
cni ADD CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 \
	CNI_ARGS='K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-0' <<EOF
$(conf 1.1.0 '"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"aliases":{"berthnet":["web","www"]}},"args":{"cni":{"labels":[{"key":"app","value":"web"}]}}')
EOF
add1=$out
check_out "ADD 1.1.0 succeeds" 0 echo "$rc"
check_out "its result is 1.1.0" 1.1.0 sh -c 'printf "%s" "$1" | jq -r .cniVersion' _ "$add1"
check_out "the container interface is eth0 in the netns" "eth0 /run/netns/ctr1" \
	sh -c 'printf "%s" "$1" | jq -r ".interfaces[] | select(.sandbox) | \"\(.name) \(.sandbox)\""' _ "$add1"
check "each ip points at that interface" sh -c \
	'printf "%s" "$1" | jq -e "[.ips[].interface] | all(. == (\$i))" --argjson i "$(printf "%s" "$1" | jq "[.interfaces[] | .sandbox != null] | index(true)")"' _ "$add1"
check "1.x ips carry no version" sh -c 'printf "%s" "$1" | jq -e "[.ips[] | has(\"version\")] | any | not"' _ "$add1"
addr1=$(printf '%s' "$add1" | jq -r '.ips[] | select(.address | test("^10\\.88\\.")) | .address')
check "the IPv4 address is in 10.88.0.0/16 with gateway 10.88.0.1" sh -c \
	'printf "%s" "$1" | jq -e ".ips[] | select(.address | test(\"^10\\\\.88\\\\.\")) | .gateway == \"10.88.0.1\""' _ "$add1"
check "the address is on eth0 in the netns" sh -c "ip -n ctr1 -o addr show eth0 | grep -q ' ${addr1} '"
check "a default route via the gateway" sh -c \
	'printf "%s" "$1" | jq -e "any(.routes[]; .dst == \"0.0.0.0/0\" and .gw == \"10.88.0.1\")"' _ "$add1"
check "dns names berth's server and domain" sh -c \
	'printf "%s" "$1" | jq -e "(.dns.nameservers | length) > 0 and (.dns.search | length) > 0"' _ "$add1"

cni ADD CNI_CONTAINERID=ctr2 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr2 <<EOF
$(conf 0.4.0)
EOF
add2=$out
check_out "ADD 0.4.0 succeeds" 0 echo "$rc"
check "0.4.0 ips carry version 4 and 6" sh -c \
	'printf "%s" "$1" | jq -e "[.ips[].version] | sort == [\"4\",\"6\"]"' _ "$add2"
cni ADD CNI_CONTAINERID=ctr3 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr3 <<EOF
$(conf 1.0.0)
EOF
add3=$out
check_out "ADD 1.0.0 succeeds" 0 echo "$rc"
check "two attachments never share an address" sh -c \
	'[ "$(printf "%s\n%s\n%s\n" "$1" "$2" "$3" | jq -r ".ips[].address" | sort | uniq -d)" = "" ]' _ "$add1" "$add2" "$add3"

# CHECK: with the ADD result as prevResult, and with one that differs
cni CHECK CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 <<EOF
$(conf 1.1.0 "\"prevResult\":$add1")
EOF
check_out "CHECK against ADD's result passes" "0:" echo "$rc:$out"
bad=$(printf '%s' "$add1" | jq -c '.ips[0].address = "10.88.254.254/16"')
cni CHECK CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 <<EOF
$(conf 1.1.0 "\"prevResult\":$bad")
EOF
error_is 101 "CHECK with an address the attachment does not have"

# errors the daemon reports with their code
cni ADD CNI_CONTAINERID=ctr9 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 <<EOF
{"cniVersion":"1.0.0","name":"nosuch","type":"berth"}
EOF
error_is 7 "ADD on a network berth does not have"

# DEL: idempotent, and fine once the netns is gone
cni DEL CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 <<EOF
$(conf 1.1.0)
EOF
check_out "DEL succeeds" "0:" echo "$rc:$out"
check "the interface is down at once (cut off its bridge)" sh -c "ip -n ctr1 -o link show eth0 2>/dev/null | grep -q 'state LOWERLAYERDOWN\|NO-CARRIER' || ! ip -n ctr1 -o link show eth0 2>/dev/null | grep -q ."
# the pair itself is deleted in the daemon's worker: the kernel takes ~20 ms
check "the address leaves the netns right after" wait_for sh -c "! ip -n ctr1 -o addr show 2>/dev/null | grep -q ' ${addr1} '"
cni DEL CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr1 <<EOF
$(conf 1.1.0)
EOF
check_out "DEL again succeeds (idempotent)" "0:" echo "$rc:$out"
ip netns del ctr2
cni DEL CNI_CONTAINERID=ctr2 CNI_IFNAME=eth0 <<EOF
$(conf 1.1.0)
EOF
check_out "DEL after the netns is gone, without CNI_NETNS, succeeds" "0:" echo "$rc:$out"

# GC: ctr3 is not in the valid list and goes; a new ctr4 that is listed stays
ip netns add ctr4
cni ADD CNI_CONTAINERID=ctr4 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr4 <<EOF
$(conf 1.1.0)
EOF
add4=$out
cni GC <<EOF
$(conf 1.1.0 '"cni.dev/valid-attachments":[{"containerID":"ctr4","ifname":"eth0"}]')
EOF
check_out "GC succeeds" "0:" echo "$rc:$out"
cni CHECK CNI_CONTAINERID=ctr3 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr3 <<EOF
$(conf 1.1.0 "\"prevResult\":$add3")
EOF
check "GC released the attachment not listed (CHECK fails)" test "$rc" != 0
cni CHECK CNI_CONTAINERID=ctr4 CNI_IFNAME=eth0 CNI_NETNS=/run/netns/ctr4 <<EOF
$(conf 1.1.0 "\"prevResult\":$add4")
EOF
check_out "and kept the one listed (CHECK passes)" "0:" echo "$rc:$out"
for n in ctr1 ctr3 ctr4; do ip netns del "$n" 2>/dev/null; done
done_testing
