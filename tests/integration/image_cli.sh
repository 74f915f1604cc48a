# image_cli.sh - images as a user handles them (issue 21): `berth image
# import` of each archive format, `image ls` and `inspect` (their JSON read
# with jq), a container from `image =` running its image's configuration,
# a container waiting for its image (pull = never) started by the import
# that brings it, `image rm` refused for an image in use and freeing an
# unused image's own layers (a shared base layer stays), prune keeping what
# a running process uses after its name moved, and a corrupt archive failing
# cleanly while the running container is untouched. (A container waiting
# for a pull: image_pull_wait.sh.)
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox python3

. "$BERTH_TOP/tests/daemon.sh"
busybox_world
MK="python3 $BERTH_TOP/tests/helpers/mkimage.py --rootfs $R"
I=$TMPDIR/images
mkdir -p "$I"
$MK --format docker-archive --name reg.test/app:1 --out "$I/app.docker.tar" >"$I/app.json" ||
	skip_all "mkimage.py could not write the test image"
$MK --format oci-archive --name reg.test/app:oci --out "$I/app.oci.tar" >"$I/app.oci.json"
$MK --format oci-layout --name reg.test/app:layout --out "$I/app-layout" >/dev/null
$MK --format docker-archive --kind sibling --name reg.test/sib:1 --out "$I/sib.tar" >"$I/sib.json"
# a docker-archive cut short in its last layer
$MK --format docker-archive --pad 400000 --name reg.test/broken:1 --out "$I/full.tar" >/dev/null
head -c $(($(stat -c %s "$I/full.tar") - 300000)) "$I/full.tar" >"$I/broken.tar"

start_daemon || { tail "$log"; skip_all "the daemon did not start"; }

# ---- import, each format -------------------------------------------------
B image import "$I/app.docker.tar" >"$I/import.out" 2>"$I/import.err"
check_out "import docker-archive: exit 0" "0" echo $?
check "it prints the name and digest of what it recorded" grep -Eqx 'reg.test/app:1 sha256:[0-9a-f]{64}' "$I/import.out"
check "and, without a terminal, a line per step" grep -q "^importing $I/app.docker.tar: " "$I/import.err"
digest=$(cut -d' ' -f2 "$I/import.out")
check "import oci-archive" B image import "$I/app.oci.tar"
check "import an OCI layout directory, renamed with --name" \
	B image import "$I/app-layout" --name reg.test/app:renamed
check_out "image ls lists the three names" "reg.test/app:1
reg.test/app:oci
reg.test/app:renamed" sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref' | sort"
check "image ls has IMAGE, DIGEST, SIZE and CREATED columns" \
	sh -c "'$BERTH' -c '$C' image ls | head -1 | grep -q '^IMAGE *DIGEST *SIZE *CREATED'"
check "image ls shows a short digest and the size in MB" \
	sh -c "'$BERTH' -c '$C' image ls | grep '^reg.test/app:1 ' | grep -q '${digest%"${digest#sha256:????????????}"} .* MB'"
check "image ls -o json: numbers are numbers" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -e 'all(.[]; (.size | type) == \"number\" and .layers == 3 and .state == \"stored\")'"

# ---- inspect ------------------------------------------------------------------
B -o json image inspect reg.test/app:1 >"$I/inspect.json" 2>&1
check "inspect: the digest import printed, the configuration's digest" \
	jq -e --slurpfile m "$I/app.json" --arg d "$digest" '.digest == $d and
		.config_digest == $m[0].manifests[0].config' "$I/inspect.json"
check "inspect of the oci-archive's image: its manifest's digest" sh -c "'$BERTH' -c '$C' -o json image inspect reg.test/app:oci |
	jq -e --slurpfile m '$I/app.oci.json' '.digest == \$m[0].manifests[0].digest'"
check "inspect: three layers with their digests, diff_ids and sizes" \
	jq -e --slurpfile m "$I/app.json" '[.layers[].digest] == $m[0].manifests[0].layers and
		[.layers[].diff_id] == $m[0].manifests[0].diff_ids and
		all(.layers[]; (.size | type) == "number")' "$I/inspect.json"
check "inspect: Entrypoint, Cmd, WorkingDir, User, StopSignal, ExposedPorts" \
	jq -e '.entrypoint == ["/bin/sh","/srv/start.sh"] and .cmd == ["arg1"] and
		.workdir == "/srv" and .user == "app" and .stop_signal == "SIGUSR1" and
		.exposed_ports == ["8080/tcp"]' "$I/inspect.json"
check "inspect: Env, architecture and no container yet" \
	jq -e '(.env | index("IMG_VAR=from-image")) != null and .architecture == "amd64" and
		.os == "linux" and .containers == []' "$I/inspect.json"
check_out "inspect of an image that is not here names it" \
	"berth: image docker.io/library/nothere:latest is not here: pull it" B image inspect nothere

# ---- a container from the image ----------------------------------------------
cat >"$C/containers.d/web.ini" <<INI
[container]
image   = reg.test/app:1
pull    = never
env     = OVERRIDE=config
env     = VAR=from-config
stop_timeout = 2
INI
check "reload with a container from the image" B reload
wait_for grep -q '^v3=' "$S/logs/web.log"
check_out "it runs as the image's User (resolved in its /etc/passwd)" "uid=1000 gid=1000 user=app" \
	grep '^uid=' "$S/logs/web.log"
check_out "in the image's WorkingDir" "pwd=/srv" grep '^pwd=' "$S/logs/web.log"
check_out "with the image's Env, the container's winning" "IMG_VAR=from-image OVERRIDE=config VAR=from-config" \
	grep '^IMG_VAR=' "$S/logs/web.log"
check_out "Entrypoint with the image's Cmd as arguments" "args=arg1" grep '^args=' "$S/logs/web.log"
check_out "its layers as the image has them (opaque dir, whiteout, links, top layer)" "opt_old=c
deleteme=absent
link=layer2 hard=layer2
v3=layer3" grep -E '^(opt_old|deleteme|link|v3)=' "$S/logs/web.log"
wpid=$(B -o json ps | jq -r '.[] | select(.name == "web") | .pid')
check_out "ps: web is running" "running" sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"web\") | .state'"
check "inspect web: its image, digest, exposed ports and stop signal" \
	sh -c "'$BERTH' -c '$C' inspect web | jq -e --arg d '$digest' '.rootfs == null and .image.ref == \"reg.test/app:1\" and
		.image.pull == \"never\" and .image.digest == \$d and .image.exposed_ports == [\"8080/tcp\"] and
		.image.stop_signal == \"SIGUSR1\"'"
check_out "image inspect names the container that uses it" '["web"]' \
	sh -c "'$BERTH' -c '$C' -o json image inspect reg.test/app:1 | jq -c .containers"

# ---- a container waiting for its image (pull = never), which an import brings
cat >"$C/containers.d/never.ini" <<INI
[container]
image   = reg.test/sib:1
pull    = never
stop_timeout = 1
INI
check "reload with a container whose image is not here" B reload
check_out "pull = never: ps says error" "error" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"never\") | .state'"
check_out "and why" "image reg.test/sib:1 is not here (pull = never)" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"never\") | .error'"
check "import the image it waits for" B image import "$I/sib.tar"
wait_for grep -q '^sibling' "$S/logs/never.log"
check_out "the import started the container (the sibling's Cmd ran)" "sibling" cat "$S/logs/never.log"
check_out "rm of its image is refused" "berth: image reg.test/sib:1 is used by container never" \
	B image rm reg.test/sib:1
rm "$C/containers.d/never.ini"
check "reload --wait: the container goes" B reload --wait

# ---- rm and prune ----------------------------------------------------------------
check_out "rm of an image a container uses is refused" "berth: image reg.test/app:1 is used by container web" \
	B image rm reg.test/app:1
check "import the sibling image (shares the base layer)" B image import "$I/sib.tar"
base=$(jq -r '.manifests[0].diff_ids[0]' "$I/sib.json"); base=${base#sha256:}
own=$(jq -r '.manifests[0].diff_ids[1]' "$I/sib.json"); own=${own#sha256:}
check "both its layers are on disk" test -d "$S/images/layers/$base" -a -d "$S/images/layers/$own"
before=$(du -sk "$S/images" | cut -f1)
check_out "rm of an unused image" "removed reg.test/sib:1" B image rm reg.test/sib:1
check "its own layer is gone" test ! -e "$S/images/layers/$own"
check "the base layer it shared stays (app uses it)" test -d "$S/images/layers/$base"
after=$(du -sk "$S/images" | cut -f1)
check "du of state_dir/images shrank ($before -> $after kB)" test "$after" -lt "$before"
check "rm of the other names of app" sh -c "'$BERTH' -c '$C' image rm reg.test/app:oci && '$BERTH' -c '$C' image rm reg.test/app:renamed"
# a name moved elsewhere while a container runs from what it named
top=$(jq -r '.manifests[0].diff_ids[2]' "$I/app.json"); top=${top#sha256:}
check "import the sibling under web's image name" B image import "$I/sib.tar" --name reg.test/app:1
check "prune: the image web's process runs from (unnamed now) stays" B image prune
check "its top layer is still there" test -d "$S/images/layers/$top"
check_out "and web runs on, untouched" "running $wpid" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"web\") | \"\(.state) \(.pid)\"'"
check "import web's image under another name" B image import "$I/app.docker.tar" --name reg.test/app:2
check_out "rm of that name is refused: web's process runs from its layers" \
	"berth: image reg.test/app:2 is used by container web (its process runs from it)" B image rm reg.test/app:2
check "import app again: the name is back" B image import "$I/app.docker.tar"
check "now another name has those layers: rm of app:2 goes through" B image rm reg.test/app:2
check "prune --all keeps what a container uses" sh -c "'$BERTH' -c '$C' image prune --all | grep -q '^freed '"
check_out "image ls: only web's image is left" "reg.test/app:1" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref'"
check "the container still runs its layers" test -d "$S/images/layers/$base"

# ---- a corrupt archive ------------------------------------------------------------
ls -A "$S/images/tmp" >"$I/tmp.before" 2>/dev/null
B image import "$I/broken.tar" >"$I/broken.out" 2>&1
check_out "a truncated archive fails the import (exit 1)" "1" sh -c "'$BERTH' -c '$C' image import '$I/broken.tar' >/dev/null 2>&1; echo \$?"
check "the error names the archive and the step" \
	sh -c "grep -q 'broken.tar' '$I/broken.out' && grep -Eiq 'truncat|unexpected end|short|layer' '$I/broken.out'"
check_out "nothing of it is listed" "reg.test/app:1" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[].ref'"
check "nothing half-written is left under images/tmp" sh -c "ls -A '$S/images/tmp' | cmp -s - '$I/tmp.before'"
check_out "the running container is untouched" "running $wpid" \
	sh -c "'$BERTH' -c '$C' -o json ps | jq -r '.[] | select(.name == \"web\") | \"\(.state) \(.pid)\"'"

done_testing
