# image_pull_token.sh - the Bearer token flow end to end through the daemon
# (issue 21, point 1): Debian's docker-registry in token mode
# (tests/helpers/registry.sh `registry_start DIR token`, tokens from
# tests/helpers/token_server.py). A container's image is pulled with the
# credentials of [images] credentials: the registry's 401 names the token
# service, the daemon fetches a token for the repository's pull scope with
# those credentials and the container runs its image. A wrong password is
# a clear error through the CLI (the token service's 401), and without any
# credentials the pull goes through with an anonymous token (pull only, as
# for a public repository).
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox python3 skopeo docker-registry htpasswd openssl
. "$BERTH_TOP/tests/helpers/registry.sh"
. "$BERTH_TOP/tests/daemon.sh"
busybox_world
T=$TMPDIR
trap 'cleanup; registry_stop' EXIT

mkimage --rootfs "$R" --format oci-archive --name app:1 --out "$T/app.tar" >"$T/app.json" ||
	skip_all "mkimage.py could not write the test image"
registry_start "$T/registry" token || skip_all "docker-registry did not start in token mode"
registry_push "oci-archive:$T/app.tar" berth/app:1 >/dev/null 2>&1 ||
	skip_all "skopeo could not push the test image"
digest=$(jq -r '.manifests[0].digest' "$T/app.json")
: >"$REGISTRY_TOKEN_LOG"

printf '[images]\nca = %s\ncredentials = %s\n' "$REGISTRY_CA" "$REGISTRY_AUTH" >>"$C/berth.ini"
cat >"$C/containers.d/web.ini" <<INI
[container]
image   = $REGISTRY/berth/app:1
stop_timeout = 1
INI
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
for _ in $(seq 300); do
	[ "$(field web .state)" = pulling ] || break
	sleep 0.1
done
check_out "a container from a registry with token auth runs" "running" field web .state
wait_for grep -q '^v3=' "$S/logs/web.log"
check_out "its image's top layer" "v3=layer3" grep '^v3=' "$S/logs/web.log"
check "the daemon got a token as $REGISTRY_USER for berth/app's pull scope" \
	grep -q "^token user=$REGISTRY_USER scope=repository:berth/app:pull granted=berth/app:pull$" "$REGISTRY_TOKEN_LOG"
check "the registry asked berth for a token, then authorized its request with it" \
	sh -c "grep 'method=GET .*uri=/v2/berth/app/manifests/1 .*useragent=berth/' '$REGISTRY_LOG' >'$T/reg.berth' &&
		grep -q 'msg=\"error authorizing context: authorization token required\"' '$T/reg.berth' &&
		grep -q 'msg=\"authorized request\"' '$T/reg.berth'"
check_out "image ls: the image as pushed" "$REGISTRY/berth/app:1 $digest" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[] | \"\(.ref) \(.digest)\"'"

# a wrong password: the token service refuses it
jq --arg r "$REGISTRY" --arg w "$(printf '%s:wrong' "$REGISTRY_USER" | base64 -w0)" \
	'.auths[$r].auth = $w' "$REGISTRY_AUTH" >"$T/wrong.json"
sed -i "s|^credentials = .*|credentials = $T/wrong.json|" "$C/berth.ini"
check "reload with a wrong password" B reload
B image pull "$REGISTRY/berth/app:1" >/dev/null 2>"$T/pull.err"
check_out "berth image pull: exit 1" "1" echo $?
check_out "the token service's refusal, naming the image once and the credentials' file" \
	"berth: image pull failed: $REGISTRY/berth/app:1: manifest 1: token from $REGISTRY_TOKEN_URL: HTTP 401 (unauthorized: the credentials for $REGISTRY in $T/wrong.json were refused)" \
	tail -1 "$T/pull.err"
check "the token service said no" grep -q '^token 401$' "$REGISTRY_TOKEN_LOG"
check_out "web runs on, untouched" "running" field web .state

# no credentials at all: an anonymous pull token
sed -i "/^credentials = /d" "$C/berth.ini"
check "reload without credentials" B reload
check_out "berth image pull: an anonymous token does for a pull" "$REGISTRY/berth/app:1 $digest" \
	sh -c "'$BERTH' -c '$C' image pull '$REGISTRY/berth/app:1' 2>/dev/null"
check "the token was anonymous, pull only" \
	grep -q "^token user=- scope=repository:berth/app:pull granted=berth/app:pull$" "$REGISTRY_TOKEN_LOG"
done_testing
