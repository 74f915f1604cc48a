# image_fixtures.sh - issue 21's fixtures and registry harness, checked with
# the real tools before any berth test leans on them: tests/helpers/mkimage.py
# writes each archive format (skopeo reads them: three layers, the config's
# fields; umoci unpacks the layout, and what it unpacks has the whiteout,
# the opaque directory, the links, owners and the xattr applied, and runs the
# entrypoint), byte for byte the same twice; tests/helpers/registry.sh runs
# Debian's docker-registry with TLS and basic auth (a wrong password or an
# unknown CA fails), skopeo pushes to it and pulls back the same digests, a
# multi-arch index keeps both platforms, cut_proxy.py breaks the first
# pull of a 4 MiB blob while the next one passes, fault_proxy.py answers
# 500 and 429 once and cuts a blob at an exact byte that a Range request
# resumes (the registry answers 206); then the same registry
# with token auth: the Bearer flow through token_server.py (credentials get
# push, anonymous gets pull only, a wrong password gets nothing).
. "$BERTH_TOP/tests/lib.sh"
need_cmd python3 skopeo umoci docker-registry htpasswd openssl curl jq
. "$BERTH_TOP/tests/helpers/registry.sh"

T=$TMPDIR
trap registry_stop EXIT
# bail WHAT: a set-up step failed; nothing after it could mean anything
bail() { not_ok "$1"; done_testing; }

image_rootfs amd64 "$T/rootfs-amd64" || bail "mk/busybox-rootfs.sh assembles an amd64 busybox rootfs"
arm64=yes
image_rootfs arm64 "$T/rootfs-arm64" || arm64=

# ---- the formats, read by skopeo ----------------------------------------------
check "mkimage writes an oci-archive" sh -c "python3 '$BERTH_TOP/tests/helpers/mkimage.py' \
	--rootfs '$T/rootfs-amd64' --format oci-archive --name fixture:1 --out '$T/full.oci.tar' >'$T/full.json'"
check "mkimage writes an oci-layout" sh -c "python3 '$BERTH_TOP/tests/helpers/mkimage.py' \
	--rootfs '$T/rootfs-amd64' --format oci-layout --name fixture:1 --out '$T/full.layout' >/dev/null"
check "mkimage writes a docker-archive" sh -c "python3 '$BERTH_TOP/tests/helpers/mkimage.py' \
	--rootfs '$T/rootfs-amd64' --format docker-archive --name fixture:1 --out '$T/full.docker.tar' >/dev/null"
mkimage --rootfs "$T/rootfs-amd64" --format oci-archive --name fixture:1 --out "$T/again.oci.tar" >/dev/null
check "the same arguments give the same bytes (fixed mtimes, owners, gzip headers)" \
	cmp "$T/full.oci.tar" "$T/again.oci.tar"

# insp OPTION SRC JQ: skopeo inspect [OPTION] SRC, through jq -r
insp() { skopeo inspect $1 "$2" | jq -r "$3"; }
cfg='.config | [.Entrypoint, .Cmd, .Env, .WorkingDir, .User, .StopSignal, (.ExposedPorts | keys)] | tostring'
want_cfg='[["/bin/sh","/srv/start.sh"],["arg1"],["PATH=/usr/sbin:/usr/bin:/sbin:/bin","IMG_VAR=from-image","OVERRIDE=image"],"/srv","app","SIGUSR1",["8080/tcp"]]'
for src in "oci-archive:$T/full.oci.tar" "oci:$T/full.layout:fixture:1" "docker-archive:$T/full.docker.tar"; do
	f=${src%%:*}
	check_out "$f: skopeo sees 3 layers on linux/amd64" "3 linux amd64" \
		insp "" "$src" '"\(.Layers | length) \(.Os) \(.Architecture)"'
	check_out "$f: Entrypoint, Cmd, Env, WorkingDir, User, StopSignal, ExposedPorts" "$want_cfg" \
		insp --config "$src" "$cfg"
done
check_out "oci-archive: skopeo's manifest digest is the one mkimage reports" \
	"$(jq -r '.manifests[0].digest' "$T/full.json")" insp "" "oci-archive:$T/full.oci.tar" .Digest
check_out "oci-archive: the diff_ids are the sha256 of the layers skopeo decompresses" \
	"$(jq -c '.manifests[0].diff_ids' "$T/full.json")" insp --config "oci-archive:$T/full.oci.tar" '.rootfs.diff_ids | tostring'
check "docker-archive: its RepoTags name it (docker-archive:FILE:fixture:1)" \
	skopeo inspect "docker-archive:$T/full.docker.tar:docker.io/library/fixture:1"
check "skopeo copies the oci layout into a docker-archive" \
	skopeo copy -q "oci:$T/full.layout:fixture:1" "docker-archive:$T/copied.docker.tar:fixture:1"
check_out "and that docker-archive has the same config" "$want_cfg" \
	insp --config "docker-archive:$T/copied.docker.tar" "$cfg"

# ---- what the layers hold, as umoci (a real unpacker) applies them -------------
U=$T/unpacked
check "umoci unpacks the oci layout" umoci unpack --image "$T/full.layout:fixture:1" "$U"
Ur=$U/rootfs
check "layer 2's whiteout deleted layer 1's /etc/deleteme" test ! -e "$Ur/etc/deleteme" -a -e "$Ur/etc/passwd"
check_out "layer 2's opaque directory hides layer 1's /opt/old/a and b" "c" ls "$Ur/opt/old"
check_out "/srv/link is a symlink to www/index.html" "www/index.html" readlink "$Ur/srv/link"
check_out "/srv/hard is a hard link of /srv/www/index.html" "$(stat -c %i "$Ur/srv/www/index.html") 2" \
	stat -c '%i %h' "$Ur/srv/hard"
check_out "/home/app is 1000:1000, mode 750; /tmp is 1777" "1000:1000 750 1777" \
	sh -c "echo \$(stat -c '%u:%g %a' '$Ur/home/app') \$(stat -c %a '$Ur/tmp')"
check_out "/etc/motd carries the xattr user.berth=fixture" "b'fixture'" \
	python3 -c "import os, sys; print(os.getxattr(sys.argv[1], 'user.berth'))" "$Ur/etc/motd"
# the entrypoint as the image's config runs it: user app, in /srv, the env
start=$(printf '%s\n' "uid=1000 gid=1000 user=app" "pwd=/srv" "IMG_VAR=from-image OVERRIDE=image VAR=unset" \
	"args=exit" "opt_old=c" "deleteme=absent" "link=layer2 hard=layer2" "v3=layer3")
check_out "start.sh (as app, in /srv, in a chroot) reports every layer applied" "$start" \
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin IMG_VAR=from-image OVERRIDE=image \
	chroot --userspec=1000:1000 "$Ur" /bin/sh -c 'cd /srv && exec /bin/sh /srv/start.sh exit'

# ---- images sharing the base layer ---------------------------------------------
mkimage --rootfs "$T/rootfs-amd64" --kind sibling --format oci-archive --name sibling:1 --out "$T/sibling.oci.tar" >"$T/sibling.json"
mkimage --rootfs "$T/rootfs-amd64" --kind base --format oci-archive --name base:1 --out "$T/base.oci.tar" >"$T/base.json"
l1=$(jq -r '.manifests[0].layers[0]' "$T/full.json")
check_out "sibling and base images share layer 1's blob with the full one" "$l1 $l1 2 1" sh -c \
	"echo \$(jq -r '.manifests[0].layers[0]' '$T/sibling.json' '$T/base.json') \$(jq -r '.manifests[0].layers | length' '$T/sibling.json' '$T/base.json')"
check_out "skopeo reads the sibling: its own Cmd" '["/bin/sh","-c","cat /srv/sibling.txt && exec sleep 3600"]' \
	insp --config "oci-archive:$T/sibling.oci.tar" '.config.Cmd | tostring'

# ---- multi-arch -----------------------------------------------------------------
if [ -n "$arm64" ]; then
	mkimage --rootfs "amd64=$T/rootfs-amd64" --rootfs "arm64=$T/rootfs-arm64" --multiarch \
		--format oci-archive --name multi:1 --out "$T/multi.oci.tar" >"$T/multi.json"
	check_out "multi-arch: skopeo sees an OCI index of linux/amd64 and linux/arm64/v8" \
		"application/vnd.oci.image.index.v1+json amd64/linux/ arm64/linux/v8" sh -c \
		"skopeo inspect --raw 'oci-archive:$T/multi.oci.tar' | jq -r '[.mediaType, (.manifests[].platform | \"\(.architecture)/\(.os)/\(.variant // \"\")\")] | join(\" \")'"
	check_out "and picks arm64 when asked" "arm64" \
		insp --override-arch=arm64 "oci-archive:$T/multi.oci.tar" .Architecture
	mkimage --rootfs "arm64=$T/rootfs-arm64" --multiarch --format oci-archive --name foreign:1 \
		--out "$T/foreign.oci.tar" >/dev/null
	check_out "an index with arm64 only: skopeo finds no amd64 image in it" "no image found" \
		sh -c "skopeo inspect --override-arch amd64 'oci-archive:$T/foreign.oci.tar' 2>&1 | grep -o 'no image found'"
else
	skip "multi-arch fixtures" "no arm64 busybox (apt-get download busybox-static:arm64 failed)"
fi

# ---- the registry -----------------------------------------------------------------
t0=$(date +%s%N)
registry_start "$T/registry" || bail "docker-registry starts with TLS and basic auth"
t1=$(date +%s%N)
ok "docker-registry answers on $REGISTRY in $(((t1 - t0) / 1000000)) ms"
code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" "$@"; }
check_out "/v2/ without credentials: 401 with a Basic challenge" "401" code "https://$REGISTRY/v2/"
check_out "/v2/ with the credentials: 200" "200" code -u "$REGISTRY_USER:$REGISTRY_PASS" "https://$REGISTRY/v2/"
check_out "/v2/ with a wrong password: 401" "401" code -u "$REGISTRY_USER:wrong" "https://$REGISTRY/v2/"
check_out "the server certificate names localhost too" "200" code -u "$REGISTRY_USER:$REGISTRY_PASS" "https://localhost:${REGISTRY#*:}/v2/"
check_out "curl without the test CA refuses the certificate (exit 60)" "60" \
	sh -c "curl -s -o /dev/null 'https://$REGISTRY/v2/'; echo \$?"
check_out "REGISTRY_AUTH holds base64(user:pass) for $REGISTRY" "$REGISTRY_USER:$REGISTRY_PASS" \
	sh -c "jq -r '.auths[\"$REGISTRY\"].auth' '$REGISTRY_AUTH' | base64 -d"

t0=$(date +%s%N)
check "skopeo pushes the oci-archive with the credentials" registry_push "oci-archive:$T/full.oci.tar" berth/fixture:1
t1=$(date +%s%N)
echo "# push of the 3-layer image: $(((t1 - t0) / 1000000)) ms"
if registry_push "oci-archive:$T/full.oci.tar" berth/wrong:1 --dest-creds "$REGISTRY_USER:wrong" >/dev/null 2>&1; then
	not_ok "a push with a wrong password fails"
else
	ok "a push with a wrong password fails"
fi
check "skopeo pushes the docker-archive (as a Docker schema 2 manifest)" registry_push "docker-archive:$T/full.docker.tar" berth/docker:1
check "skopeo pushes the sibling" registry_push "oci-archive:$T/sibling.oci.tar" berth/sibling:1

rs() { registry_skopeo "$@"; }
# remote WHAT REF [JQ]: skopeo inspect (WHAT: "" | --raw | --config) of
# REF in the registry, through jq
remote() {
	rs inspect $1 --cert-dir "$REGISTRY_CERT_DIR" --authfile "$REGISTRY_AUTH" "docker://$REGISTRY/$2" | jq -r "${3:-.}"
}
check_out "the registry serves the pushed manifest under the digest mkimage reports" \
	"$(jq -r '.manifests[0].digest' "$T/full.json")" remote "" berth/fixture:1 .Digest
check "skopeo pulls it back over TLS (--src-cert-dir, --authfile)" \
	rs copy -q --src-cert-dir "$REGISTRY_CERT_DIR" --authfile "$REGISTRY_AUTH" \
	"docker://$REGISTRY/berth/fixture:1" "oci:$T/pulled:fixture"
local_raw() { skopeo inspect --raw "$1" | jq -c "$2"; }
check_out "the pulled image has the same layers and config" \
	"$(jq -c '[.manifests[0].layers, .manifests[0].config]' "$T/full.json")" \
	local_raw "oci:$T/pulled:fixture" '[[.layers[].digest], .config.digest]'
check_out "the docker-archive became a Docker schema 2 manifest" \
	"application/vnd.docker.distribution.manifest.v2+json 3" \
	remote --raw berth/docker:1 '"\(.mediaType) \(.layers | length)"'
out=$(rs copy -q "docker://$REGISTRY/berth/fixture:1" "oci:$T/nocert:x" --authfile "$REGISTRY_AUTH" 2>&1)
case $out in
*"certificate signed by unknown authority"*) ok "a pull without the test CA fails on the certificate" ;;
*) not_ok "a pull without the test CA fails on the certificate" "output: $out" ;;
esac
out=$(rs inspect --cert-dir "$REGISTRY_CERT_DIR" "docker://$REGISTRY/berth/fixture:1" 2>&1)
case $out in
*"authentication required"*) ok "an inspect without credentials is refused (authentication required)" ;;
*) not_ok "an inspect without credentials is refused" "output: $out" ;;
esac

if [ -n "$arm64" ]; then
	check "skopeo pushes the multi-arch index (--all)" registry_push "oci-archive:$T/multi.oci.tar" berth/multi:1
	index() {
		rs inspect --raw --cert-dir "$REGISTRY_CERT_DIR" --authfile "$REGISTRY_AUTH" \
			"docker://$REGISTRY/berth/multi:1" >"$T/index.raw" &&
		echo "sha256:$(sha256sum <"$T/index.raw" | cut -d' ' -f1)" \
			"$(jq -r '[.manifests[].platform.architecture] | join(" ")' "$T/index.raw")"
	}
	check_out "the registry serves the index with both platforms" \
		"$(jq -r '.index' "$T/multi.json") amd64 arm64" index
	arm=$(jq -r '.manifests[] | select(.arch == "arm64") | .digest' "$T/multi.json")
	check_out "and the arm64 manifest by digest" "arm64" remote --config "berth/multi@$arm" .architecture
	mkimage --rootfs "arm64=$T/rootfs-arm64" --multiarch --format oci-archive --out "$T/foreign.oci.tar" >/dev/null
	check "skopeo pushes an arm64-only index" registry_push "oci-archive:$T/foreign.oci.tar" berth/foreign:1
fi

# ---- a transfer that dies mid-blob ---------------------------------------------
mkimage --rootfs "$T/rootfs-amd64" --pad 4194304 --format oci-archive --name big:1 --out "$T/big.oci.tar" >"$T/big.json"
check "skopeo pushes an image with a 4 MiB layer" registry_push "oci-archive:$T/big.oci.tar" berth/big:1
# the first two connections that carry more than 2 MiB from the server (of
# the 4 MiB blob: layer 1, about 1 MiB, stays below) are reset there
if cut_proxy_start 127.0.0.1:0 "$REGISTRY" 2097152 2; then
	ok "the cut proxy listens on $CUT_PROXY"
	pull_big() {
		rs copy -q --src-cert-dir "$REGISTRY_CERT_DIR" --src-creds "$REGISTRY_USER:$REGISTRY_PASS" \
			"docker://$CUT_PROXY/berth/big:1" "oci:$T/big-$1:big"
	}
	out=$(pull_big first 2>&1)
	case $? in
	0) not_ok "the first skopeo pull through the proxy breaks" ;;
	*) ok "the first skopeo pull through the proxy breaks (${out##*msg=})" ;;
	esac
	check_out "the proxy cut one connection, after exactly 2 MiB from the server" "down=2097152 cut" \
		sed -n 's/^conn [0-9]* \(down=[0-9]*\) .* cut$/\1 cut/p' "$CUT_PROXY_LOG"
	big=$(jq -r '.manifests[0].layers[2]' "$T/big.json")
	blob() {
		curl -sS --cacert "$REGISTRY_CA" -u "$REGISTRY_USER:$REGISTRY_PASS" \
			-o "$T/blob.$1" "https://$CUT_PROXY/v2/berth/big/blobs/$big"
	}
	if blob first >"$T/cut1.out" 2>&1; then
		not_ok "the first curl of the 4 MiB blob through the proxy breaks too"
	else
		ok "the first curl of the 4 MiB blob through the proxy breaks too ($(tr '\n' ' ' <"$T/cut1.out"))"
	fi
	part=$(stat -c %s "$T/blob.first" 2>/dev/null || echo 0)
	# (what was in flight when the reset came is lost: less than 2 MiB)
	if [ "$part" -gt 0 ] && [ "$part" -lt 2097152 ]; then
		ok "curl got part of the blob ($part bytes), not all of it"
	else
		not_ok "curl got part of the blob, not all of it" "bytes: $part"
	fi
	check "the next curl through the proxy passes" blob second
	check_out "and is the whole blob (its sha256)" "${big#sha256:}" \
		sh -c "sha256sum <'$T/blob.second' | cut -d' ' -f1"
	check "the next skopeo pull through the proxy passes" pull_big second
	check_out "with its 4 MiB layer whole" "\"$big\"" local_raw "oci:$T/big-second:big" '.layers[2].digest'
	check_out "the proxy cut two connections in all" 2 grep -c cut "$CUT_PROXY_LOG"
	cut_proxy_stop
else
	not_ok "the cut proxy starts"
fi

# ---- injected errors and a cut at an exact byte, with Range to resume -----------
big=$(jq -r '.manifests[0].layers[2]' "$T/big.json")
if fault_proxy_start 500:/manifests/:1 429:/blobs/:1 "cut:/blobs/$big:1000000:1"; then
	ok "the fault proxy listens on $FAULT_PROXY"
	# get PATH [CURL-OPTION...]: the status of GET https://FAULT_PROXY/v2/PATH
	get() {
		_p=$1; shift
		curl -s -o "$T/got" -w '%{http_code}' --cacert "$REGISTRY_CA" \
			-u "$REGISTRY_USER:$REGISTRY_PASS" "$@" "https://$FAULT_PROXY/v2/$_p"
	}
	accept='Accept: application/vnd.oci.image.manifest.v1+json'
	check_out "a manifest: 500 the first time" 500 get berth/big/manifests/1 -H "$accept"
	check_out "then 200, the registry's own answer" 200 get berth/big/manifests/1 -H "$accept"
	check_out "a blob: 429 with Retry-After: 1" "429 1" sh -c \
		"curl -s -D - -o /dev/null --cacert '$REGISTRY_CA' -u '$REGISTRY_USER:$REGISTRY_PASS' \
		'https://$FAULT_PROXY/v2/berth/big/blobs/$big' | tr -d '\r' |
		awk '/^HTTP/ { s = \$2 } tolower(\$1) == \"retry-after:\" { r = \$2 } END { print s, r }'"
	cut_get() { get "berth/big/blobs/$big"; cp "$T/got" "$T/part1"; }
	check_out "the 4 MiB blob breaks after its first 1000000 bytes (curl sees 200, then a reset)" 200 cut_get
	check_out "curl kept exactly 1000000 bytes" 1000000 stat -c %s "$T/part1"
	check_out "the registry resumes it: Range: bytes=1000000- gets 206" 206 \
		get "berth/big/blobs/$big" -H 'Range: bytes=1000000-'
	check_out "and the two parts are the blob (its sha256)" "${big#sha256:}" \
		sh -c "cat '$T/part1' '$T/got' | sha256sum | cut -d' ' -f1"
	check_out "the proxy logged the resumed request with its Range" "range=bytes=1000000- -> 206" \
		sh -c "grep -o 'range=bytes=1000000- -> 206' '$FAULT_PROXY_LOG'"
	fault_proxy_stop
	fault_proxy_start 500:/blobs/:1 || not_ok "the fault proxy starts again"
	via_fault() {
		rs copy -q --src-cert-dir "$REGISTRY_CERT_DIR" --src-creds "$REGISTRY_USER:$REGISTRY_PASS" \
			"docker://$FAULT_PROXY/berth/fixture:1" "oci:$T/fault-$1:f"
	}
	out=$(via_fault first 2>&1)
	case $out in
	*"invalid status code from registry 500 (Internal Server Error)"*)
		ok "skopeo's pull meets the injected 500 on a blob and fails" ;;
	*) not_ok "skopeo's pull meets the injected 500 on a blob and fails" "output: $out" ;;
	esac
	check "the next skopeo pull through the proxy passes" via_fault second
	fault_proxy_stop
else
	not_ok "the fault proxy starts"
fi

registry_stop
check "registry_stop: nothing listens on $REGISTRY any more" \
	sh -c "! curl -s -o /dev/null --cacert '$REGISTRY_CA' 'https://$REGISTRY/v2/'"

# ---- the Bearer flow: docker-registry with token auth ----------------------------
registry_start "$T/registry-token" token || bail "docker-registry starts with token auth"
ok "docker-registry (token auth) answers on $REGISTRY, tokens from $REGISTRY_TOKEN_URL"
challenge() {
	curl -s -D - -o /dev/null --cacert "$REGISTRY_CA" "https://$REGISTRY/v2/" |
		tr -d '\r' | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: //p'
}
check_out "/v2/ answers 401 with a Bearer challenge naming the token service" \
	"Bearer realm=\"$REGISTRY_TOKEN_URL\",service=\"berth-test\"" challenge
check "skopeo pushes with the credentials (token flow)" registry_push "oci-archive:$T/full.oci.tar" berth/fixture:1
check_out "the token service granted berth push and pull" "berth/fixture:pull,push" \
	sh -c "sed -n 's/^token user=berth .* granted=\(berth\/fixture:[a-z,]*\).*/\1/p' '$REGISTRY_TOKEN_LOG' | sed 's/push,pull/pull,push/' | sort -u | head -1"
anon() { rs inspect --cert-dir "$REGISTRY_CERT_DIR" "docker://$REGISTRY/berth/fixture:1" | jq -r .Digest; }
check_out "an anonymous pull gets a pull token and the manifest" "$(jq -r '.manifests[0].digest' "$T/full.json")" anon
out=$(rs copy -q --dest-cert-dir "$REGISTRY_CERT_DIR" "oci-archive:$T/base.oci.tar" "docker://$REGISTRY/berth/anon:1" 2>&1)
case $out in
*"requested access to the resource is denied"*) ok "an anonymous push is refused (its token grants pull only)" ;;
*) not_ok "an anonymous push is refused (its token grants pull only)" "output: $out" ;;
esac
out=$(rs inspect --cert-dir "$REGISTRY_CERT_DIR" --creds "$REGISTRY_USER:wrong" "docker://$REGISTRY/berth/fixture:1" 2>&1)
case $out in
*401*|*nauthorized*) ok "a wrong password gets no token" ;;
*) not_ok "a wrong password gets no token" "output: $out" ;;
esac
# the flow by hand, as berth's client does it: token, then the manifest
by_hand() {
	tok=$(curl -sf --cacert "$REGISTRY_CA" -u "$REGISTRY_USER:$REGISTRY_PASS" \
		"$REGISTRY_TOKEN_URL?service=berth-test&scope=repository:berth/fixture:pull" | jq -r .token) &&
	curl -sf --cacert "$REGISTRY_CA" -H "Authorization: Bearer $tok" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"https://$REGISTRY/v2/berth/fixture/manifests/1" | sha256sum | cut -d' ' -f1
}
check_out "curl: a token from the realm, then the manifest with it" \
	"$(jq -r '.manifests[0].digest' "$T/full.json" | cut -d: -f2)" by_hand
registry_stop
done_testing
