# image_disk_full.sh - images on a full disk (issue 21, point 4): state_dir/
# images on a small tmpfs (mounted in this test's own mount namespace), the
# rest of it filled by a file, and then an import (its unpack runs out of
# space) and a pull of an image bigger than the space left (the fake
# registry of tests/helpers/fake_registry.py over TLS on loopback; the
# layer streams into its unpack, which runs out). Each fails with an error
# naming the image, the step and the full disk, leaves nothing
# half-written under images/layers or images/blobs and nothing under tmp/;
# the containers already running (one from a directory, one from an image
# on that very tmpfs) keep their pids and answer; the daemon still answers
# ps and DNS; once the filler is gone the same import succeeds, and the
# pull does with room for the unpacked layer alone (its blob is never
# stored beside it).
. "$BERTH_TOP/tests/lib.sh"
. "$BERTH_TOP/tests/helpers/registry.sh"
need_cmd jq busybox python3 openssl dig fallocate

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal"
T=$TMPDIR
I=$T/images
mkdir -p "$I"
MK="python3 $BERTH_TOP/tests/helpers/mkimage.py --rootfs $R"
$MK --format docker-archive --kind base --name reg.test/base:1 --out "$I/base.tar" >/dev/null ||
	skip_all "mkimage.py could not write the test image"
$MK --format docker-archive --pad 4194304 --name reg.test/big:1 --out "$I/big.tar" >"$I/big.json"
$MK --format oci-layout --pad 6000000 --name 127.0.0.1:5000/big:2 --out "$T/layout" >"$I/pull.json"

# ---- the registry --------------------------------------------------------------------
test_certs "$T/tls" || skip_all "openssl could not make certificates"
mkdir -p "$T/root/blobs/sha256" "$T/root/manifests/big"
cp "$T/layout/blobs/sha256/"* "$T/root/blobs/sha256/"
cp "$T/layout/blobs/sha256/$(jq -r '.manifests[0].digest[7:]' "$I/pull.json")" "$T/root/manifests/big/2"
fake=
trap 'cleanup; [ -n "$fake" ] && kill "$fake" 2>/dev/null' EXIT
python3 "$BERTH_TOP/tests/helpers/fake_registry.py" --port 5000 --cert "$T/tls/srv.crt" \
	--key "$T/tls/srv.key" --root "$T/root" --log "$T/reg.log" --ready "$T/ready" 2>"$T/fake.err" &
fake=$!
for _ in $(seq 100); do [ -f "$T/ready" ] && break; sleep 0.05; done
[ -f "$T/ready" ] || { cat "$T/fake.err"; skip_all "the fake registry did not start"; }

# ---- state_dir/images on a 32 MiB tmpfs; two containers running -------------------------
mkdir -p "$S/images"
mount -t tmpfs -o size=32m,mode=0700 berth-test-images "$S/images" || skip_all "cannot mount a tmpfs here"
trap 'cleanup; [ -n "$fake" ] && kill "$fake" 2>/dev/null; umount -l "$S/images" 2>/dev/null' EXIT
printf '[images]\nca = %s\n' "$T/tls/ca.crt" >>"$C/berth.ini"
cat >"$C/containers.d/web.ini" <<INI
[container]
rootfs  = $R
command = sleep 1000
ip      = 10.88.0.11
stop_timeout = 1
INI
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
check "import a small image onto the tmpfs" B image import "$I/base.tar"
cat >"$C/containers.d/sm.ini" <<INI
[container]
image   = reg.test/base:1
pull    = never
command = sleep 1000
ip      = 10.88.0.12
stop_timeout = 1
INI
check "reload: a container from it" B reload --wait
field() { B -o json ps | jq -r ".[] | select(.name == \"$1\") | $2"; }
wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"sm\") | .state')\" = running ]"
wpid=$(field web .pid) spid=$(field sm .pid)
check "both run" test -n "$wpid" -a -n "$spid" -a "$wpid" != null -a "$spid" != null

store() { (cd "$S/images" && find layers blobs/sha256 -mindepth 1 -maxdepth 1 | sort); }
# fill FREE: leave about FREE bytes free on the tmpfs
fill() {
	rm -f "$S/images/filler"
	avail=$(df --output=avail -B1 "$S/images" | tail -1)
	fallocate -l $((avail - $1)) "$S/images/filler"
}
# untouched WHAT: the containers keep their pids and answer, the daemon serves ps and DNS
untouched() {
	check_out "$1: the containers keep running, same pids" "running $wpid
running $spid" sh -c "'$BERTH' -c '$C' -o json ps >'$T/ps.json' && for n in web sm; do
		jq -r --arg n \$n '.[] | select(.name == \$n) | \"\\(.state) \\(.pid)\"' '$T/ps.json'; done"
	check_out "$1: the container from the image on the full disk answers" "alive" B exec sm -- echo alive
	check_out "$1: DNS answers" "10.88.0.12" dig +short +time=1 +tries=1 @127.0.0.53 sm.berth.internal A
}

# ---- an import whose unpack runs out of space ---------------------------------------------
before=$(store)
fill 2097152
l3=$(jq -r '.manifests[0].diff_ids[2]' "$I/big.json")
l2=$(jq -r '.manifests[0].diff_ids[1]' "$I/big.json")
B image import "$I/big.tar" >"$T/imp.out" 2>"$T/imp.err"
check_out "import of a 4 MiB layer with 2 MiB free: exit 1" "1" echo $?
check_out "the error names the archive, the image, the layer, the step, the entry and the full disk" \
	"berth: image import failed: $I/big.tar (reg.test/big:1): layer $l3: unpack: layer entry 'srv/pad': write: No space left on device (ENOSPC) ($S/images is full)" \
	tail -1 "$T/imp.err"
check_out "nothing half-written under layers/ or blobs/ (layer 2, whole, may stay)" "$(printf '%s\nlayers/%s\n' "$before" "${l2#sha256:}" | sort)" store
check_out "nothing under tmp/" "" ls -A "$S/images/tmp"
check_out "image ls: only the small image" "reg.test/base:1" sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref'"
untouched "after the failed import"
rm -f "$S/images/filler"
check "space freed: the same import succeeds" B image import "$I/big.tar"
check "its top layer is there" test -f "$S/images/layers/${l3#sha256:}/srv/pad"

# ---- a pull that runs out of space (unpacking: the blob itself is not stored) -----------------
p3=$(jq -r '.manifests[0].layers[2]' "$I/pull.json")
before=$(store)
fill 2097152
B image pull 127.0.0.1:5000/big:2 >"$T/pull.out" 2>"$T/pull.err"
check_out "pull of a 6 MB layer with 2 MiB free: exit 1" "1" echo $?
check_out "the error names the image, the layer, the step (unpack), the entry and the full disk" \
	"berth: image pull failed: 127.0.0.1:5000/big:2: layer $p3: unpack: layer entry 'srv/pad': write: No space left on device (ENOSPC) ($S/images is full)" \
	tail -1 "$T/pull.err"
check_out "nothing half-written under layers/ or blobs/" "$before" store
check_out "nothing under tmp/" "" ls -A "$S/images/tmp"
untouched "after the failed pull"

# ---- room for the unpacked layer is room enough: its blob is streamed, never stored ------------
fill 8388608
: >"$T/reg.log"
check "with 8 MiB free (the 6 MB layer unpacked, not its blob beside it) the same pull succeeds" \
	B image pull 127.0.0.1:5000/big:2
check "the layer was fetched whole, from the start" grep -q "GET /v2/big/blobs/$p3 range=- .* -> 200" "$T/reg.log"
rm -f "$S/images/filler"
check_out "image ls: the three images" "127.0.0.1:5000/big:2
reg.test/base:1
reg.test/big:1" sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref' | sort"
check_out "nothing under tmp/" "" ls -A "$S/images/tmp"
check "the daemon's log has the failure, naming the image once" \
	sh -c "grep -c 'image pull failed: 127.0.0.1:5000/big:2: layer ' '$log' | grep -qx 1"
untouched "at the end"
done_testing
