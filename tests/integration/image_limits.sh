# image_limits.sh - what an image may hold (issue 21, point 2 and 4): a
# layer with device nodes is refused by default, the error naming the entry
# and the setting that would accept it, and nothing of it is left in the
# store; with [images] allow_devices = yes (a reload) the same import goes
# through and the layer has the device. An image configuration over 1 MiB
# (a long history, as real images built in many steps have) imports, and a
# container runs from it.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox python3

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
I=$TMPDIR/images
mkdir -p "$I"
MK="python3 $BERTH_TOP/tests/helpers/mkimage.py --rootfs $R"
$MK --format docker-archive --kind sibling --device dev/zero:c:1:5 --device dev/loop7:b:7:7 \
	--name reg.test/dev:1 --out "$I/dev.tar" >"$I/dev.json" ||
	skip_all "mkimage.py could not write the test image"
$MK --format oci-archive --kind base --history-bytes 1500000 --name reg.test/history:1 \
	--out "$I/history.tar" >"$I/history.json"
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
ls_store() { (cd "$S/images" && find layers blobs tmp -mindepth 1 -maxdepth 1 | sort); }

# ---- device nodes: refused by default --------------------------------------
before=$(ls_store)
top=$(jq -r '.manifests[0].diff_ids[1]' "$I/dev.json")
B image import "$I/dev.tar" >"$I/dev.out" 2>"$I/dev.err"
check_out "an import of a layer with a device node fails (exit 1)" "1" echo $?
check_out "the error names the archive, the image, the layer, the entry and the setting" \
	"berth: image import failed: $I/dev.tar (reg.test/dev:1): layer $top: unpack: layer entry 'dev/zero': a character device node (1:5) is refused ([images] allow_devices = yes accepts them)" \
	tail -1 "$I/dev.err"
base=$(jq -r '.manifests[0].diff_ids[0]' "$I/dev.json")
check_out "nothing half-written is in the store: the refused layer is not there, no blob, tmp/ empty" \
	"$before
layers/${base#sha256:}" ls_store
check "(the base layer before it is, whole: a retry uses it, prune collects it)" \
	test -x "$S/images/layers/${base#sha256:}/bin/busybox"
check_out "image ls does not list it" "" sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref'"
check "image status says so" sh -c "'$BERTH' -c '$C' -o json image status '$I/dev.tar' |
	jq -e '.state == \"failed\" and (.error | contains(\"allow_devices = yes\"))'"
check "the daemon's log too, naming the archive once" \
	sh -c "grep 'image import failed: $I/dev.tar (reg.test/dev:1): layer ' '$log' | grep -q 'dev/zero'"

# ---- accepted with allow_devices = yes -----------------------------------------
printf '[images]\nallow_devices = yes\n' >>"$C/berth.ini"
check "reload with [images] allow_devices = yes" B reload
check "the same import goes through" B image import "$I/dev.tar"
L=$S/images/layers/${top#sha256:}
check_out "its layer holds the character device" "character special file 1:5" \
	stat -c '%F %t:%T' "$L/dev/zero"
check_out "and the block device" "block special file 7:7" stat -c '%F %t:%T' "$L/dev/loop7"
check_out "image ls lists it" "reg.test/dev:1" sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref'"
check_out "nothing is left in tmp/" "" ls -A "$S/images/tmp"

# ---- a configuration over 1 MiB ------------------------------------------------
cfg=$(jq -r '.manifests[0].config' "$I/history.json")
check "import of an image whose configuration is over 1 MiB" B image import "$I/history.tar"
check "its configuration is in the store, all of it ($(stat -c %s "$S/images/blobs/sha256/${cfg#sha256:}" 2>/dev/null) bytes)" \
	test "$(stat -c %s "$S/images/blobs/sha256/${cfg#sha256:}")" -gt 1048576
check_out "image inspect reads it" "$cfg [\"/bin/sh\"]" \
	sh -c "'$BERTH' -c '$C' -o json image inspect reg.test/history:1 | jq -r '\"\(.config_digest) \(.cmd | tojson)\"'"
cat >"$C/containers.d/hist.ini" <<INI
[container]
image   = reg.test/history:1
pull    = never
command = sleep 1000
stop_timeout = 1
INI
check "reload with a container from it" B reload
wait_for sh -c "[ \"\$('$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"hist\") | .state')\" = running ]"
check_out "the container runs" "running" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"hist\") | .state'"
done_testing
