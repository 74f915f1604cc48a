# cli_json.sh - `-o json` as a program uses it: every command the daemon or
# the CLI answers gives one JSON document on stdout, parsed here with jq:
# lists are arrays, absent values null, numbers numbers, times RFC 3339, the
# same field names in ps, inspect, ports and ip ls; a failing command gives
# {"error","details"} on stdout and keeps its exit status.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq ip

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
subnet6 = fd88::/64

[network backend]
bridge  = berth1
subnet  = 10.89.0.0/24

[dns]
domain   = berth.internal
upstream = 127.0.0.1
INI
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs   = /
command  = sleep 1000
stop_timeout = 1
labels   = app=web
networks = default, backend
ports    = 8080:80/tcp
service  = websvc
INI
cat >"$C/containers.d/client.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
stop_timeout = 1
labels  = app=client
INI
cat >"$C/containers.d/once.ini" <<INI
[container]
rootfs  = /
command = true
restart = no
INI
cat >"$C/policies.d/web.ini" <<INI
[policy]
select = app=web
[ingress from-clients]
from  = app=client
ports = 80/tcp
INI

. "$BERTH_TOP/tests/daemon.sh"

# J NAME JQ ARGS...: ok when `berth -o json ARGS` exits 0 and jq -e JQ holds
J() {
	_what=$1 _jq=$2; shift 2
	if _out=$(B -o json "$@" 2>"$TMPDIR/stderr"); then
		if printf '%s' "$_out" | jq -e "$_jq" >/dev/null 2>&1; then
			ok "$_what"
		else
			not_ok "$_what" "command: berth -o json $*" "jq: $_jq" "got: $_out"
		fi
	else
		not_ok "$_what" "command: berth -o json $* exited $?" "got: $_out" "stderr: $(cat "$TMPDIR/stderr")"
	fi
}
# the shape of RFC 3339 UTC with seconds, as jq tests it
RFC3339='test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")'

start_daemon; check_out "the daemon starts and answers" 0 echo $?
wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '[.[] | select(.state == \"running\")] | length == 2'"
wait_for sh -c "'$BERTH' -c '$C' -o json ps | jq -e '.[] | select(.name == \"once\" and .state == \"exited\")'"

# ---- status ------------------------------------------------------------------
J "status: pid, uptime_seconds and counts are numbers" \
	'(.pid | type) == "number" and (.uptime_seconds | type) == "number" and .containers == 3 and .networks == 2 and .policies == 1' status
J "status: started_at is RFC 3339, and uptime_seconds before now" \
	"(.started_at | $RFC3339) and ((.started_at | fromdateiso8601) <= now) and ((now - (.started_at | fromdateiso8601)) - .uptime_seconds | fabs) < 3" status
check "status for people: uptime with units" sh -c \
	"'$BERTH' -c '$C' status | grep -Eq '^uptime +([0-9]+d )?([0-9]+h )?([0-9]+m )?[0-9]+s\$'"

# ---- ps ------------------------------------------------------------------------
J "ps: an array of objects, one per container" 'type == "array" and length == 3 and all(.[]; type == "object")' ps
J "ps: networks is an array of names" \
	'.[] | select(.name == "web") | .networks == ["default","backend"]' ps
J "ps: one address object per address (network, interface, family, address, prefix_length)" \
	'.[] | select(.name == "web") | .addresses | length == 3 and all(.[]; keys == ["address","family","interface","network","prefix_length"])' ps
J "ps: prefix lengths are numbers from the subnets" \
	'[.[] | select(.name == "web") | .addresses[] | "\(.network) \(.family) \(.prefix_length) \(.interface)"] | sort == ["backend ipv4 24 eth1","default ipv4 16 eth0","default ipv6 64 eth0"]' ps
J "ps: pid and restarts are numbers, started_at RFC 3339, absent error and runtime_id null" \
	".[] | select(.name == \"client\") | (.pid | type) == \"number\" and .restarts == 0 and (.started_at | $RFC3339) and .error == null and .runtime_id == null and .origin == \"file\"" ps
J "ps: an exited container has pid null and its exit_code" \
	'.[] | select(.name == "once") | .pid == null and .exit_code == 0 and .state == "exited"' ps
check "ps for people: the table as before" sh -c \
	"'$BERTH' -c '$C' ps | grep -q '^web  .* default,backend  10\\.88\\.[0-9.]*,10\\.89\\.0\\.[0-9]*  fd88::[0-9a-f:]*  -  *file  *-\$'"

# ---- inspect: the same names as ps ----------------------------------------------------
B -o json ps >"$TMPDIR/ps.json"
B -o json inspect web >"$TMPDIR/web.json"
check "inspect: networks and addresses equal ps's" sh -c \
	"jq -e --slurpfile ps '$TMPDIR/ps.json' '(\$ps[0][] | select(.name == \"web\")) as \$p | .networks == \$p.networks and .addresses == \$p.addresses and .pid == \$p.pid and .started_at == \$p.started_at' '$TMPDIR/web.json'"
check "inspect: started_at RFC 3339, durations in _seconds, absent values null" sh -c \
	"jq -e '(.started_at | $RFC3339) and .stop_timeout_seconds == 1 and .memory == null and .cpus == null and .error == null and .warning == null and .exit_code == null and .image == null' '$TMPDIR/web.json'"
check "inspect: its published port, with the field names of ports" sh -c \
	"jq -e '.ports == [{\"host_ip\":null,\"host_port\":8080,\"container\":\"web\",\"container_port\":80,\"proto\":\"tcp\"}]' '$TMPDIR/web.json'"

# ---- ports, ip ls, dns --------------------------------------------------------------
J "ports: host_ip null (any), numbers bare, container and container_port as in inspect" \
	'. == [{"host_ip":null,"host_port":8080,"container":"web","container_port":80,"proto":"tcp","packets":0,"bytes":0}]' ports
check "ports for people: '*' for any address" sh -c "'$BERTH' -c '$C' ports | grep -Eq '^\\* +8080 +web +80 +tcp'"
B -o json ip ls >"$TMPDIR/ip.json"
check "ip ls: the addresses ps shows, named network, address, container" sh -c \
	"jq -e --slurpfile ps '$TMPDIR/ps.json' '([.[] | \"\(.network) \(.address) \(.container)\"] | sort) == ([\$ps[0][] | .name as \$n | .addresses[] | \"\(.network) \(.address) \(\$n)\"] | sort) and all(.[]; keys == [\"address\",\"container\",\"network\"])' '$TMPDIR/ip.json'"
J "dns ls: an array; web's service name has its addresses" \
	'[.[] | select(.name == "websvc.berth.internal") | .container] | length == 3 and all(. == "web")' dns ls
J "dns query: the A records, with container and network" \
	'[.[] | select(.type == "A") | .network] | sort == ["backend","default"]' dns query web

# ---- policy ----------------------------------------------------------------------
J "policy ls: types is an array, counts are numbers" \
	'. == [{"name":"web","types":["ingress"],"rules":1,"selected":1,"file":"policies.d/web.ini"}]' policy ls
J "policy why: allowed is a boolean, the port a number, why an array" \
	'.allowed == true and .verdict == "allow" and .port == 80 and .proto == "tcp" and .source == "client" and .destination == "web" and (.why | type) == "array" and (.why | length) > 0' \
	policy why client web 80/tcp
J "policy why: a denied packet" '.allowed == false and .verdict == "deny"' policy why client web 81/tcp

# ---- metrics ---------------------------------------------------------------------
J "metrics: the Prometheus numbers as one object" \
	'.containers.running == 2 and .containers.exited == 1 and .reloads_total.applied == 0 and (.reconcile_duration_seconds | type) == "number" and (.dns_queries_total.noerror | type) == "number"' metrics
J "metrics: the NAT counters per published port" \
	'.nat_ports | length == 1 and .[0].host_port == 8080 and .[0].container == "web" and (.[0].packets_total | type) == "number"' metrics
check "metrics without -o json is still Prometheus text" sh -c \
	"'$BERTH' -c '$C' metrics | grep -q '^berth_containers{state=\"running\"} 2\$'"

# ---- images, version, config -------------------------------------------------------
J "image ls: an empty array when there are none" '. == []' image ls
J "version: strings" '(.version | type) == "string" and (.commit | type) == "string"' version
J "config check: valid, the counts, errors and warnings as arrays" \
	'.valid == true and .containers == 3 and .networks == 2 and .errors == [] and .warnings == []' config check
J "config keys: sections of keys" \
	'(.sections | type) == "array" and all(.sections[]; (.keys | type) == "array")' config keys

# ---- reload ----------------------------------------------------------------------
cat >"$C/containers.d/extra.ini" <<INI
[container]
rootfs  = /
command = sleep 1000
stop_timeout = 1
INI
J "reload --dry-run: dry_run, nothing applied, the change as an object" \
	'.dry_run == true and .applied == false and .changes == [{"action":"add","kind":"container","name":"extra","keys":[]}] and .errors == []' \
	reload --dry-run
check_out "the dry run applied nothing" "" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"extra\") | .name'"
J "reload: applied" '.applied == true and .dry_run == false and (.changes | map(.name)) == ["extra"] and .errors == [] and .stopping == []' reload
sed -i 's/^labels  = app=client$/labels  = app=client, tier=front/' "$C/containers.d/client.ini"
J "reload: a changed container names its keys" \
	'.changes == [{"action":"change","kind":"container","name":"client","keys":["labels"]}]' reload
J "reload: no changes is an empty array" '.changes == [] and .applied == true' reload
rm "$C/containers.d/extra.ini"
J "reload --wait: the removed container is stopping, then stopped" \
	'.changes == [{"action":"remove","kind":"container","name":"extra","keys":[]}] and .stopping == ["extra"] and .stopped == ["extra"]' \
	reload --wait
cat >"$C/containers.d/bad.ini" <<INI
[container]
rootfs  = /
command = true
restart = sometimes
INI
B -o json reload >"$TMPDIR/out.json" 2>"$TMPDIR/stderr"; rc=$?
check_out "a rejected reload exits 1" 1 echo $rc
check "... with one JSON error object on stdout, its errors as details" jq -e \
	'(.error | startswith("reload rejected: 1 error")) and (.details | length) == 1 and (.details[0] | startswith("containers.d/bad.ini:4: "))' "$TMPDIR/out.json"
check_out "... and nothing on stderr" "" cat "$TMPDIR/stderr"
B -o json config check >"$TMPDIR/out.json"; rc=$?
check_out "config check of the broken file exits 1" 1 echo $rc
check "config check -o json: file, line and the message on its own" jq -e \
	'.valid == false and .errors == [{"file":"containers.d/bad.ini","line":4,"column":null,"message":.errors[0].message}] and (.errors[0].message | startswith("[container] restart"))' "$TMPDIR/out.json"
rm "$C/containers.d/bad.ini"

# ---- errors ------------------------------------------------------------------------
out=$(B -o json inspect nope 2>"$TMPDIR/stderr"); rc=$?
check_out "inspect of an unknown container exits 1" 1 echo $rc
check_out "... and says so as JSON on stdout" '{"error":"no container named '"'nope'"'","details":[]}' echo "$out"
check_out "... nothing on stderr" "" cat "$TMPDIR/stderr"
B -o json dns query nope >"$TMPDIR/out.json"; rc=$?
check_out "dns query of an unknown name exits 1" 1 echo $rc
check "... with a JSON error" jq -e '.error | test("NXDOMAIN")' "$TMPDIR/out.json"
"$BERTH" -s "$TMPDIR/no.sock" -o json status >"$TMPDIR/out.json" 2>"$TMPDIR/stderr"; rc=$?
check_out "an unreachable daemon exits 1" 1 echo $rc
check "... with a JSON error on stdout, nothing on stderr" sh -c \
	"[ ! -s '$TMPDIR/stderr' ] && jq -e '(.error | type) == \"string\" and .details == []' '$TMPDIR/out.json'"
check "without -o json the error goes to stderr, as before" sh -c \
	"! '$BERTH' -c '$C' inspect nope 2>&1 >/dev/null | grep -qv \"^berth: no container named 'nope'\$\""
done_testing
