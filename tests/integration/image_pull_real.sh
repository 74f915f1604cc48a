# image_pull_real.sh - a container from an image in a real registry
# (Debian's docker-registry with TLS and basic auth, tests/helpers/registry.sh)
# reached through a proxy that cuts the first transfer of its 4 MiB layer
# half-way (cut_proxy.py): the daemon answers at once, `ps` says "pulling
# N%", the pull resumes (or restarts) the broken blob and the container runs
# the image; the daemon's log and `image ls` say what came. Credentials come
# from [images] credentials (an auth.json), the CA from [images] ca.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox python3 skopeo docker-registry htpasswd openssl
. "$BERTH_TOP/tests/helpers/registry.sh"
. "$BERTH_TOP/tests/daemon.sh"
busybox_world
T=$TMPDIR
trap 'cleanup; registry_stop' EXIT

mkimage --rootfs "$R" --pad 4194304 --format oci-archive --name big:1 --out "$T/big.oci.tar" \
	>"$T/big.json" || skip_all "mkimage.py could not write the test image"
registry_start "$T/registry" || skip_all "docker-registry did not start"
registry_push "oci-archive:$T/big.oci.tar" berth/big:1 >/dev/null 2>&1 ||
	skip_all "skopeo could not push the test image"
# the first connection carrying more than 2 MiB from the server is reset there
cut_proxy_start 127.0.0.1:0 "$REGISTRY" 2097152 1 || skip_all "the cut proxy did not start"
# the credentials, for the proxy's address (the name berth is given)
jq --arg p "$CUT_PROXY" --arg r "$REGISTRY" '.auths[$p] = .auths[$r]' "$REGISTRY_AUTH" >"$T/auth.json"

printf '[images]\nca = %s\ncredentials = %s\n' "$REGISTRY_CA" "$T/auth.json" >>"$C/berth.ini"
cat >"$C/containers.d/web.ini" <<INI
[container]
image   = $CUT_PROXY/berth/big:1
stop_timeout = 2
INI
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }

t0=$(date +%s)
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
t1=$(date +%s)
check "the daemon answers without waiting for the pull ($((t1 - t0)) s)" test $((t1 - t0)) -le 2
seen=
for _ in $(seq 600); do
	st=$(B ps 2>/dev/null | awk '$1 == "web"')
	case $st in *"pulling "*%*) seen=${st#*pulling }; seen="pulling ${seen%%%*}%" ;; esac
	[ "$(field web .state)" = running ] && break
	sleep 0.05
done
check "ps said 'pulling N%' while it pulled ($seen)" test -n "$seen"
check_out "then web runs" "running" field web .state
wait_for grep -q '^v3=' "$S/logs/web.log"
check_out "the image's configuration" "uid=1000 gid=1000 user=app
pwd=/srv
args=arg1" grep -E '^(uid|pwd|args)=' "$S/logs/web.log"
check "the proxy cut a transfer" grep -q ' cut$' "$CUT_PROXY_LOG"
digest=$(jq -r '.manifests[0].digest' "$T/big.json")
check "the daemon's log: pulled, with its digest" \
	sh -c "grep -q 'image pulled $CUT_PROXY/berth/big:1: $digest (3 layers, 3 new)' '$log'"
check_out "image ls: the image as stored" "$CUT_PROXY/berth/big:1 $digest stored" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[] | \"\(.ref) \(.digest) \(.state)\"'"
check "nothing partial is left under images/tmp" sh -c "[ -z \"\$(ls -A '$S/images/tmp')\" ]"
done_testing
