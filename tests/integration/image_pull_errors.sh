# image_pull_errors.sh - what a registry's refusals look like through the
# daemon and the CLI (issue 21, point 4), against Debian's docker-registry
# (TLS, basic auth; tests/helpers/registry.sh): `berth image pull` exits 1
# with one line naming the image once, the step and the registry's answer,
# and a container waiting for such an image shows the same in ps and
# inspect, for a wrong password (401), a tag the registry does not have
# (404) and an index with only another architecture's image (the error
# lists what it has); through fault_proxy.py, a 429 (Retry-After) on the
# manifest and a 500 on a blob are retried and the container runs. Each
# failed container starts once its cause is gone (the tag pushed, the
# password put right) and a reload asks again. The state's events name the
# image once. (503 then success: image_pull.sh; a blob cut mid-way and
# resumed: image_pull_real.sh; the Bearer flow: image_pull_token.sh.)
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox python3 skopeo docker-registry htpasswd openssl sqlite3
. "$BERTH_TOP/tests/helpers/registry.sh"
. "$BERTH_TOP/tests/daemon.sh"
busybox_world
T=$TMPDIR
trap 'cleanup; registry_stop' EXIT

mkimage --rootfs "$R" --format oci-archive --name app:1 --out "$T/app.tar" >"$T/app.json" ||
	skip_all "mkimage.py could not write the test image"
# an index that has only an arm64 image (the content does not matter: it never runs)
mkimage --rootfs "arm64=$R" --multiarch --kind base --format oci-archive --out "$T/arm.tar" >/dev/null
registry_start "$T/registry" || skip_all "docker-registry did not start"
registry_push "oci-archive:$T/app.tar" berth/app:1 >/dev/null 2>&1 &&
	registry_push "oci-archive:$T/arm.tar" berth/arm:1 >/dev/null 2>&1 ||
	skip_all "skopeo could not push the test images"
# 429 on the first manifest request, 500 on the first blob request
fault_proxy_start 429:/manifests/1:1 500:/blobs/:1 || skip_all "the fault proxy did not start"
# credentials: right for the registry and the proxy; wrong for localhost:5000
# (the same registry under the other name its certificate has)
jq --arg p "$FAULT_PROXY" --arg r "$REGISTRY" --arg w "$(printf '%s:wrong' "$REGISTRY_USER" | base64 -w0)" \
	'.auths[$p] = .auths[$r] | .auths["localhost:5000"] = {auth: $w}' "$REGISTRY_AUTH" >"$T/auth.json"
AUTH=$T/auth.json
printf '[images]\nca = %s\ncredentials = %s\n' "$REGISTRY_CA" "$AUTH" >>"$C/berth.ini"
ctr() {  # NAME IMAGE
	printf '[container]\nimage   = %s\nstop_timeout = 1\n' "$2" >"$C/containers.d/$1.ini"
}
ctr flaky "$FAULT_PROXY/berth/app:1"
ctr denied localhost:5000/berth/app:1
ctr missing "$REGISTRY/berth/app:late"
ctr arm "$REGISTRY/berth/arm:1"
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }
# settled NAME...: wait until none of them is pulling
settled() {
	for _ in $(seq 300); do
		busy=
		for n in "$@"; do [ "$(field "$n" .state)" = pulling ] && busy=1; done
		[ -z "$busy" ] && return 0
		sleep 0.1
	done
	return 1
}

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
settled flaky denied missing arm
ME=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
[ "$ME" = arm64 ] && skip_all "the 'other architecture' image is this machine's"

# ---- 429 and 500, retried: the container runs ------------------------------------
check_out "429 on the manifest and 500 on a blob, retried: flaky runs" "running" field flaky .state
check "the proxy answered 429, then the manifest passed" \
	sh -c "grep -q '/manifests/1 .* -> 429 .* fault' '$FAULT_PROXY_LOG' && grep -q '/manifests/1 .* -> 200 .* pass' '$FAULT_PROXY_LOG'"
check "and 500 on a blob, which passed on the next try" \
	sh -c "b=\$(grep -- '-> 500 .* fault' '$FAULT_PROXY_LOG' | sed 's/^GET \([^ ]*\) .*/\1/'); [ -n \"\$b\" ] && grep -q \"^GET \$b .* -> 200 .* pass\" '$FAULT_PROXY_LOG'"

# ---- 401, 404, another architecture: ps, inspect ------------------------------------------
err_401="localhost:5000/berth/app:1: manifest 1: HTTP 401 (unauthorized: the credentials for localhost:5000 in $AUTH were refused)"
err_404="$REGISTRY/berth/app:late: manifest late: HTTP 404 (manifest unknown)"
err_arch="no linux/$ME image in $REGISTRY/berth/arm:1: it has linux/arm64/v8"
# perr NAME: the container's error without the retry's countdown
perr() { field "$1" .error | sed 's/ (next pull in [0-9]*s)$//'; }
check_out "wrong password: ps says the pull failed" "error image pull failed" field denied '"\(.state) \(.status)"'
check_out "with the registry's refusal, naming the image once" "$err_401" perr denied
check_out "unknown tag: the 404" "$err_404" perr missing
check_out "an index without this machine's platform: what it has" "$err_arch" perr arm
check "inspect: the same error and when the next pull comes" \
	sh -c "'$BERTH' -c '$C' inspect arm | jq -e --arg e '$err_arch' '.state == \"error\" and (.error | startswith(\$e + \" (next pull in \"))'"

# ---- the CLI ------------------------------------------------------------------------------------
# pull REF: "EXIT LAST-LINE-OF-STDERR"
pull() { B image pull "$1" >/dev/null 2>"$T/pull.err"; echo "$? $(tail -1 "$T/pull.err")"; }
check_out "berth image pull, 401: exit 1, the error once" "1 berth: image pull failed: $err_401" pull localhost:5000/berth/app:1
check_out "berth image pull, 404" "1 berth: image pull failed: $err_404" pull "$REGISTRY/berth/app:late"
check_out "berth image pull, another architecture" "1 berth: image pull failed: $err_arch" pull "$REGISTRY/berth/arm:1"
check_out "image status has the error" "failed $err_arch" \
	sh -c "'$BERTH' -c '$C' -o json image status '$REGISTRY/berth/arm:1' | jq -r '\"\(.state) \(.error)\"'"
check "the daemon's log names the image once in each failure" \
	sh -c "grep -q 'image pull failed: $err_401' '$log' && grep -q 'image pull failed: $err_404' '$log' &&
		! grep 'image pull failed: ' '$log' | grep -q 'berth/app:late.*berth/app:late'"
check "the state's events too" sh -c "sqlite3 -readonly '$S/state.db' \"SELECT message FROM events WHERE kind = 'image'\" |
	grep -qx 'image pull failed: $err_404'"
check "and when each pull started" sh -c "sqlite3 -readonly '$S/state.db' \"SELECT message FROM events WHERE kind = 'image'\" |
	grep -qx 'image pull started: $REGISTRY/berth/app:late'"
check_out "nothing of them is in the store" "$REGISTRY/berth/app:1" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref' | sed 's|^$FAULT_PROXY|$REGISTRY|'"

# ---- the causes gone: a reload asks again, the containers run --------------------------------------
registry_push "oci-archive:$T/app.tar" berth/app:late >/dev/null 2>&1
jq '.auths["localhost:5000"] = .auths[$r]' --arg r "$REGISTRY" "$AUTH" >"$AUTH.new" && mv "$AUTH.new" "$AUTH"
check "the tag pushed, the password put right: reload" B reload
settled denied missing
check_out "the 404's container runs" "running" field missing .state
check_out "so does the 401's" "running" field denied .state
check_out "arm still waits, with its error" "error" field arm .state
done_testing
