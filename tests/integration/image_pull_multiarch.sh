# image_pull_multiarch.sh - a multi-architecture image in a real registry
# (Debian's docker-registry, TLS and basic auth; pushed with `skopeo copy
# --all`, an OCI index with a linux/amd64 and a linux/arm64/v8 manifest):
# `berth image pull` takes the manifest of this machine's platform, stores
# the image under its name with that manifest's digest and configuration,
# and a container runs from it. Nothing of the other platform is fetched.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq busybox python3 skopeo docker-registry htpasswd openssl
. "$BERTH_TOP/tests/helpers/registry.sh"
. "$BERTH_TOP/tests/daemon.sh"
busybox_world
T=$TMPDIR
trap 'cleanup; registry_stop' EXIT

ME=$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')
OTHER=$([ "$ME" = amd64 ] && echo arm64 || echo amd64)
# Both manifests carry this machine's busybox: only the one for this platform
# runs, and the other's content differs by its configuration (architecture),
# which is all that tells them apart.
mkimage --rootfs "$ME=$R" --rootfs "$OTHER=$R" --multiarch --format oci-archive --out "$T/multi.tar" \
	>"$T/multi.json" || skip_all "mkimage.py could not write the multi-arch image"
registry_start "$T/registry" || skip_all "docker-registry did not start"
registry_push "oci-archive:$T/multi.tar" berth/multi:1 >/dev/null 2>&1 ||
	skip_all "skopeo could not push the multi-arch image"
printf '[images]\nca = %s\ncredentials = %s\n' "$REGISTRY_CA" "$REGISTRY_AUTH" >>"$C/berth.ini"
want=$(jq -r --arg a "$ME" '.manifests[] | select(.arch == $a) | .digest' "$T/multi.json")
other=$(jq -r --arg a "$OTHER" '.manifests[] | select(.arch == $a) | .digest' "$T/multi.json")
other_cfg=$(jq -r --arg a "$OTHER" '.manifests[] | select(.arch == $a) | .config' "$T/multi.json")

index_size() {
	registry_skopeo inspect --raw --cert-dir "$REGISTRY_CERT_DIR" --authfile "$REGISTRY_AUTH" \
		"docker://$REGISTRY/berth/multi:1" | jq '.manifests | length'
}
check_out "the registry serves an index of two platforms" "2" index_size

pushed=$(wc -l <"$REGISTRY_LOG")   # what came after: berth's requests
start_daemon || { tail "$log"; skip_all "the daemon did not start"; }
check "berth image pull of the index" B image pull "$REGISTRY/berth/multi:1"
check_out "it stored the manifest of linux/$ME" "$want" \
	sh -c "'$BERTH' -c '$C' -o json image inspect '$REGISTRY/berth/multi:1' | jq -r .digest"
check_out "not the other platform's" "" \
	sh -c "'$BERTH' -c '$C' -o json image ls | jq -r '.[] | select(.digest == \"$other\") | .digest'"
check_out "its configuration says $ME" "$ME" \
	sh -c "'$BERTH' -c '$C' -o json image inspect '$REGISTRY/berth/multi:1' | jq -r .architecture"
check "the registry was asked for neither the other platform's manifest nor its configuration" \
	sh -c "tail -n +$((pushed + 1)) '$REGISTRY_LOG' | grep -q '/manifests/' &&
		! tail -n +$((pushed + 1)) '$REGISTRY_LOG' | grep -q -e '${other#sha256:}' -e '${other_cfg#sha256:}'"

printf '[container]\nimage = %s/berth/multi:1\ncommand = exit 0\nrestart = no\n' "$REGISTRY" \
	>"$C/containers.d/multi.ini"
check "reload with a container from it" B reload
wait_for grep -q '^v3=layer3' "$S/logs/multi.log"
check_out "the container ran the image of this platform" "uid=1000 gid=1000 user=app" \
	sh -c "grep '^uid=' '$S/logs/multi.log'"

done_testing
