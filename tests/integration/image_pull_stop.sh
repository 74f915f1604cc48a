# image_pull_stop.sh - the daemon stopped in the middle of a pull (issue 21):
# a container's image comes from the fake registry
# (tests/helpers/fake_registry.py), which sends 1 MB of the 4 MiB layer and
# then nothing (twice). SIGTERM then cancels the pull at once, while another
# container still takes a second to stop (its registry read does not wait
# for the link, nor the pull for the containers), and the daemon is gone
# as soon as that container is, leaving nothing partial: the layer streams
# from the registry into its unpack, and the unpack under tmp/ goes. The
# next daemon fetches that layer again from its start (the trade-off of
# streaming: flash gets each layer once; a restart costs the layer it was
# on), SIGINT stops that one as promptly, and the third daemon's pull
# completes, and the container runs its image.
. "$BERTH_TOP/tests/lib.sh"
. "$BERTH_TOP/tests/helpers/registry.sh"
need_cmd jq busybox python3 openssl

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
T=$TMPDIR

test_certs "$T/tls" || skip_all "openssl could not make certificates"
python3 "$BERTH_TOP/tests/helpers/mkimage.py" --rootfs "$R" --format oci-layout --pad 4194304 \
	--name 127.0.0.1:5000/app:1 --out "$T/layout" >"$T/app.json" ||
	skip_all "mkimage.py could not write the test image"
mkdir -p "$T/root/blobs/sha256" "$T/root/manifests/app"
cp "$T/layout/blobs/sha256/"* "$T/root/blobs/sha256/"
cp "$T/layout/blobs/sha256/$(jq -r '.manifests[0].digest[7:]' "$T/app.json")" "$T/root/manifests/app/1"
l3=$(jq -r '.manifests[0].layers[2]' "$T/app.json")
size3=$(jq -r '.manifests[0].layer_sizes[2]' "$T/app.json")
d1=$(jq -r '.manifests[0].diff_ids[0][7:]' "$T/app.json")
d2=$(jq -r '.manifests[0].diff_ids[1][7:]' "$T/app.json")

fake=
trap 'cleanup; [ -n "$fake" ] && kill "$fake" 2>/dev/null' EXIT
python3 "$BERTH_TOP/tests/helpers/fake_registry.py" --port 5000 --cert "$T/tls/srv.crt" \
	--key "$T/tls/srv.key" --root "$T/root" --stall-after 1000000 --stall-times 2 \
	--stall-match "$l3" --log "$T/reg.log" --ready "$T/ready" 2>"$T/fake.err" &
fake=$!
for _ in $(seq 100); do [ -f "$T/ready" ] && break; sleep 0.05; done
[ -f "$T/ready" ] || { cat "$T/fake.err"; skip_all "the fake registry did not start"; }

printf '[images]\nca = %s\n' "$T/tls/ca.crt" >>"$C/berth.ini"
cat >"$C/containers.d/web.ini" <<INI
[container]
image   = 127.0.0.1:5000/app:1
stop_timeout = 2
INI
# a container that takes a second to stop
cat >"$C/containers.d/slow.ini" <<INI
[container]
rootfs  = $R
command = sh -c 'trap "sleep 1; exit 0" TERM; while :; do sleep 1 & wait \$!; done'
stop_timeout = 5
INI
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }
size1=$(jq -r '.manifests[0].layer_sizes[0]' "$T/app.json")
size2=$(jq -r '.manifests[0].layer_sizes[1]' "$T/app.json")
# the bytes the pull has moved (image status): the layers done and the one in transfer's
moved() { B -o json image status 127.0.0.1:5000/app:1 2>/dev/null | jq -r '.done // 0'; }
# stop SIGNAL WANT: the daemon stopped by SIGNAL while the pull stalls,
# having moved WANT bytes (1 MB of the layer handed to its unpack)
stop() {
	for _ in $(seq 300); do [ "$(moved)" -ge "$2" ] && break; sleep 0.05; done
	check_out "the pull has moved $2 bytes (1 MB of the layer) when the registry goes silent" \
		"$2" moved
	check "ps says the container is pulling, part way" \
		sh -c "'$BERTH' -c '$C' ps | grep '^web ' | grep -Eq 'pulling [1-9][0-9]?%'"
	from=$(($(wc -l <"$log") + 1))
	t0=$(date +%s%N)
	kill "-$1" "$pid"
	for _ in $(seq 250); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
	t1=$(date +%s%N)
	check "$1 stops the daemon as soon as slow has stopped ($(((t1 - t0) / 1000000)) ms)" \
		sh -c "! kill -0 $pid 2>/dev/null && [ $(((t1 - t0) / 1000000)) -lt 4000 ]"
	wait "$pid" 2>/dev/null
	pid=
	tail -n "+$from" "$log" >"$T/stop.log"
	check_out "the pull was cancelled at once, not after slow stopped" \
		"image pull failed: 127.0.0.1:5000/app:1: layer $l3: download: cancelled (the daemon is stopping)
container slow: exited with code 0" \
		sh -c "grep -o -e 'image pull failed: .*' -e 'container slow: exited.*' '$T/stop.log'"
	check_out "nothing partial is left in tmp/" "" ls -A "$S/images/tmp"
	check_out "layers/: the two whole layers before it, nothing else" "$(printf '%s\n%s\n' "$d1" "$d2" | sort)" \
		sh -c "ls -A '$S/images/layers' | sort"
	check_out "blobs/: nothing (the manifest goes there last)" "" ls -A "$S/images/blobs/sha256"
}

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
stop TERM $((size1 + size2 + 1000000))    # the two small layers fetched too
check "the daemon's log says why it stopped" grep -q 'Terminated, stopping' "$log"

start_daemon || { tail "$log"; skip_all "the daemon did not start again"; }
check "the next daemon fetches the layer again, from its start" \
	sh -c "for i in \$(seq 100); do [ \$(grep -c 'blobs/$l3 range=- .* -> 200' '$T/reg.log') = 2 ] && exit 0; sleep 0.05; done; exit 1"
stop INT 1000000                        # those two are there

start_daemon || { tail "$log"; skip_all "the daemon did not start a third time"; }
for _ in $(seq 300); do
	[ "$(field web .state)" = running ] && break
	sleep 0.1
done
check_out "the third daemon's pull completes: web runs" "running" field web .state
check_out "the layer came in three requests, each from the start (no Range)" \
	"range=- range=- range=-" \
	sh -c "grep 'blobs/$l3 ' '$T/reg.log' | sed 's/.* \(range=[^ ]*\) .*/\1/' | tr '\n' ' ' | sed 's/ \$//'"
wait_for grep -q '^v3=' "$S/logs/web.log"
check_out "the container runs its image's top layer" "v3=layer3" grep '^v3=' "$S/logs/web.log"
check_out "nothing is left in tmp/" "" ls -A "$S/images/tmp"
check "the daemon's log: pulled ($size3-byte layer)" \
	grep -q "image pulled 127.0.0.1:5000/app:1: $(jq -r '.manifests[0].digest' "$T/app.json") (3 layers, 1 new)" "$log"
done_testing
