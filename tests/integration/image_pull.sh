# image_pull.sh - containers whose image comes from a registry (issue 21):
# mkimage.py's image served by the fake registry over TLS on loopback
# (tests/helpers/fake_registry.py, [images] ca = its CA), its blobs answered
# 503 a few times first so that the pull takes seconds: the daemon starts
# without waiting for it, `ps` says "pulling N%" meanwhile, the container
# runs the image once it is here; `berth image pull` of it again is quick;
# pull = always pulls again for a new definition (the registry sees it),
# and pull = missing does not.
. "$BERTH_TOP/tests/lib.sh"
. "$BERTH_TOP/tests/helpers/registry.sh"
need_cmd jq busybox python3 openssl

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
T=$TMPDIR
FAKE=$BERTH_TOP/tests/helpers/fake_registry.py

# ---- a CA and a certificate for 127.0.0.1 ------------------------------------------
test_certs "$T/tls" || skip_all "openssl could not make certificates"

# ---- the image, as the registry serves it ----------------------------------------
python3 "$BERTH_TOP/tests/helpers/mkimage.py" --rootfs "$R" --format oci-layout \
	--name 127.0.0.1:5000/app:1 --out "$T/layout" >"$T/app.json" ||
	skip_all "mkimage.py could not write the test image"
mkdir -p "$T/root/blobs/sha256" "$T/root/manifests/app"
cp "$T/layout/blobs/sha256/"* "$T/root/blobs/sha256/"
digest=$(jq -r '.manifests[0].digest' "$T/app.json")
cp "$T/layout/blobs/sha256/${digest#sha256:}" "$T/root/manifests/app/1"

fake=
trap 'cleanup; [ -n "$fake" ] && kill "$fake" 2>/dev/null' EXIT
python3 "$FAKE" --port 5000 --cert "$T/tls/srv.crt" --key "$T/tls/srv.key" --root "$T/root" \
	--fail 503:3:/blobs/ --retry-after 1 --log "$T/reg.log" --ready "$T/ready" 2>"$T/fake.err" &
fake=$!
for _ in $(seq 100); do [ -f "$T/ready" ] && break; sleep 0.05; done
[ -f "$T/ready" ] || { cat "$T/fake.err"; skip_all "the fake registry did not start"; }

printf '[images]\nca = %s\n' "$T/tls/ca.crt" >>"$C/berth.ini"
cat >"$C/containers.d/web.ini" <<INI
[container]
image   = 127.0.0.1:5000/app:1
env     = VAR=pulled
stop_timeout = 2
INI
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }

t0=$(date +%s)
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
t1=$(date +%s)
check "the daemon answers before the pull is done ($((t1 - t0)) s)" test $((t1 - t0)) -le 2
check_out "ps: web is pulling" "pulling" field web .state
check "with 'pulling N%' as its status" sh -c "'$BERTH' -c '$C' ps | grep '^web ' | grep -Eq 'pulling [0-9]+%'"
for _ in $(seq 300); do
	[ "$(field web .state)" = running ] && break
	sleep 0.1
done
check_out "once pulled, it runs" "running" field web .state
wait_for grep -q '^v3=' "$S/logs/web.log"
check_out "the image's configuration: its user, directory, Env and Cmd" "uid=1000 gid=1000 user=app
pwd=/srv
IMG_VAR=from-image OVERRIDE=image VAR=pulled
args=arg1" grep -E '^(uid|pwd|IMG_VAR|args)=' "$S/logs/web.log"
check "the registry answered 503 first: the pull retried" grep -q ' -> 503 ' "$T/reg.log"
check_out "image ls: the image, stored" "127.0.0.1:5000/app:1 $digest stored" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[] | \"\(.ref) \(.digest) \(.state)\"'"
check "the daemon's log says what came" sh -c "grep -q 'image pulled 127.0.0.1:5000/app:1: $digest (3 layers, 3 new)' '$log'"

# a pull of what is here already: the manifest again, no layer
layers=$(jq -r '.manifests[0].layers | join("|")' "$T/app.json")
n_layers=$(grep -Ec "$layers" "$T/reg.log")
check_out "berth image pull of it again: its name and digest" "127.0.0.1:5000/app:1 $digest" \
	sh -c "'$BERTH' -c '$C' image pull 127.0.0.1:5000/app:1 2>/dev/null"
check_out "no layer was fetched again" "$n_layers" grep -Ec "$layers" "$T/reg.log"

# pull = missing: a new definition does not pull; pull = always does
n_man=$(grep -c '/manifests/1 ' "$T/reg.log")
printf 'env = MORE=1\n' >>"$C/containers.d/web.ini"
check "reload: web's definition changed (pull = missing)" B reload
wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"web\") | .state')\" = running ]"
check_out "the registry was not asked" "$n_man" grep -c '/manifests/1 ' "$T/reg.log"
printf 'pull = always\n' >>"$C/containers.d/web.ini"
check "reload: pull = always" B reload
for _ in $(seq 100); do
	[ "$(grep -c '/manifests/1 ' "$T/reg.log")" -gt "$n_man" ] && break
	sleep 0.1
done
check "the manifest was asked again" test "$(grep -c '/manifests/1 ' "$T/reg.log")" -gt "$n_man"
for _ in $(seq 100); do
	[ "$(field web .state)" = running ] && break
	sleep 0.1
done
check_out "and web runs" "running" field web .state

kill "$fake" 2>/dev/null; wait "$fake" 2>/dev/null; fake=
done_testing
