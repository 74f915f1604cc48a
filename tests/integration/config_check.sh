# config_check.sh - `berth config check`: exit codes, every error printed, -o json,
# the shipped examples and the embedded default.
. "$BERTH_TOP/tests/lib.sh"

ex=$BERTH_TOP/rootfs/etc/berth
# the examples run busybox from /var/lib/berth/rootfs/busybox, as `make run`
# and the boards install it (/var/lib is this sandbox's own tmpfs)
sh "$BERTH_TOP/mk/busybox-rootfs.sh" "$(uname -m)" /var/lib/berth/rootfs/busybox >/dev/null 2>&1 ||
	skip_all "mk/busybox-rootfs.sh could not assemble a rootfs (busybox-static missing?)"
check_out "the shipped examples pass" "ok: 1 network, 2 containers, 2 policies, 1 service ($ex)" \
	"$BERTH" config check -c "$ex"
check_out "-c also works as a global option" "ok: 1 network, 2 containers, 2 policies, 1 service ($ex)" \
	"$BERTH" -c "$ex" config check
check_out "-o json after the command" \
	"{\"valid\":true,\"source\":\"$ex\",\"networks\":1,\"containers\":2,\"policies\":2,\"errors\":[],\"warnings\":[]}" \
	"$BERTH" config check -c "$ex" -o json

if [ -e /etc/berth ]; then
	skip "without -c and without /etc/berth: the embedded default" "/etc/berth exists here"
else
	check_out "without -c and without /etc/berth: the embedded default" \
		"ok: 1 network, 0 containers, 0 policies (embedded default)" "$BERTH" config check
fi

d=$TMPDIR/broken
mkdir -p "$d/containers.d" "$d/policies.d"
cat >"$d/berth.ini" <<'INI'
[daemon]
sate_dir = /var/lib/berth
[network default]
subnet = 10.88.0.0/16
mtu = 100
INI
cat >"$d/containers.d/web.ini" <<'INI'
; web
[container]
rootfs = /r
command = httpd
labels = app=web
networks = default
ports = 8080:80/tpc, 9000:9000
INI
cat >"$d/containers.d/api.ini" <<'INI'
[container]
rootfs = /r
command = api
ports = 9000:80
INI
cat >"$d/policies.d/db.ini" <<'INI'
[policy]
select = app=db
[ingress api]
from = app in (api
INI
want="berth.ini:2: [daemon] unknown key 'sate_dir' (did you mean 'state_dir'?)
berth.ini:5: [network default] mtu: '100': expected a number of bytes from 576 to 9000
containers.d/web.ini:7: [container] ports: '8080:80/tpc': protocol must be tcp, udp or sctp
containers.d/web.ini:7: [container] ports: host port 9000/tcp is already published by container 'api' (containers.d/api.ini:4)
policies.d/db.ini:4:15: [ingress api] from: '(' is not closed
5 errors"
out=$("$BERTH" config check -c "$d" 2>&1); rc=$?
if [ "$out" = "$want" ]; then ok "every error is printed, one per line, with file:line"
else not_ok "every error is printed, one per line, with file:line" "want: $want" "got:  $out"; fi
if [ "$rc" = 1 ]; then ok "a broken config exits 1"; else not_ok "a broken config exits 1" "rc=$rc"; fi

out=$("$BERTH" -o json config check -c "$d" 2>&1)
first='{"valid":false,"source":null,"networks":null,"containers":null,"policies":null,"errors":[{"file":"berth.ini","line":2,"column":null,"message":"[daemon] unknown key '"'sate_dir'"' (did you mean '"'state_dir'"'?)"},'
case $out in
"$first"*'{"file":"policies.d/db.ini","line":4,"column":15,"message":"[ingress api] from: '"'('"' is not closed"}],"warnings":[]}')
	ok "-o json lists the errors with file, line and column (null when unknown), the message after them" ;;
*) not_ok "-o json lists the errors with file, line and column (null when unknown), the message after them" "got: $out" ;;
esac
if command -v jq >/dev/null 2>&1; then
	check_out "the JSON parses and holds 5 errors" "5" sh -c "\"$BERTH\" -o json config check -c \"$d\" | jq '.errors | length'"
fi

check_out "a missing directory is an error" "$TMPDIR/missing/berth: No such file or directory
1 error" "$BERTH" config check -c "$TMPDIR/missing/berth"
"$BERTH" config >/dev/null 2>&1; rc=$?
if [ "$rc" = 2 ]; then ok "berth config without check is a usage error (2)"; else not_ok "berth config without check is a usage error (2)" "rc=$rc"; fi

# berth config keys: the key tables, for people and (as JSON) for the man page
out=$("$BERTH" config keys 2>&1); rc=$?
mtu=$(printf '%s\n' "$out" | awk '/^\[/ { s = $0 } s == "[network NAME] in berth.ini" && $1 == "mtu"')
if [ "$rc" = 0 ] && [ "$mtu" = "  mtu           uint     1500            576..9000 bytes" ]; then
	ok "config keys lists [network NAME] mtu with its type, default and bounds"
else
	not_ok "config keys lists [network NAME] mtu with its type, default and bounds" "rc=$rc" "got: $mtu"
fi
if command -v jq >/dev/null 2>&1; then
	check_out "config keys -o json: mtu's default in [network NAME]" '"1500"' sh -c "\"$BERTH\" config keys -o json | jq '.sections[] | select(.section == \"network NAME\") | .keys[] | select(.key == \"mtu\") | .default'"
fi
"$BERTH" config keys extra >/dev/null 2>&1; rc=$?
if [ "$rc" = 2 ]; then ok "config keys takes no argument (2)"; else not_ok "config keys takes no argument (2)" "rc=$rc"; fi
done_testing
