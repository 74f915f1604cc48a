# image_registry.sh - the registry client (runtime/image/registry.c, http.c)
# against a fault-injecting fake registry on loopback with TLS
# (tests/helpers/fake_registry.py), driven by tests/helpers/reg_fetch: the
# token and basic flows, refused and missing credentials, 404, 429 and 500
# retried, a blob stream cut mid-way and resumed with a Range request (its
# first bytes skipped when the server ignores it), a digest mismatch the
# stream's reader sees, a redirect to another port without the credentials, chunked
# bodies, certificates that do not fit, and cancellation.
. "$BERTH_TOP/tests/lib.sh"
. "$BERTH_TOP/tests/helpers/registry.sh"
need_cmd openssl python3 sha256sum

T=$TMPDIR
FETCH=$BERTH_TOP/build/test/helpers/reg_fetch
FAKE=$BERTH_TOP/tests/helpers/fake_registry.py
[ -x "$FETCH" ] || skip_all "build/test/helpers/reg_fetch is not built (make test-build)"
cd "$T" || exit 1

# ---- a CA and a server certificate for 127.0.0.1 and localhost, and another CA's ----
test_certs tls || { echo "openssl could not make certificates"; exit 1; }
test_certs other

# ---- content: a manifest and a 300 kB blob; a blob whose bytes do not fit --------
mkdir -p root/blobs/sha256 root/manifests/app
head -c 300000 /dev/urandom >blob
B=$(sha256sum blob | cut -d' ' -f1)
cp blob "root/blobs/sha256/$B"
head -c 1000 /dev/urandom >wrong
W=$(printf '%064d' 7)          # a name that is not the digest of its bytes
cp wrong "root/blobs/sha256/$W"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{"digest":"sha256:%s","size":300000}]}' \
	"$B" >root/manifests/app/latest
M=$(sha256sum root/manifests/app/latest | cut -d' ' -f1)
cp root/manifests/app/latest "root/blobs/sha256/$M"    # by digest too
MSIZE=$(stat -c %s root/manifests/app/latest)
MTYPE=application/vnd.oci.image.manifest.v1+json

printf '{"auths": {"127.0.0.1:5000": {"auth": "%s"}, "other.example": {"auth": "eDp5"}}}' \
	"$(printf 'alice:s3cret' | base64)" >auth.json
printf '{"auths": {"https://127.0.0.1:5000/v2/": {"auth": "%s"}}}' \
	"$(printf 'alice:wrong' | base64)" >wrong.json

# ---- the fake registry --------------------------------------------------------
fake_pids=
start_fake() {  # PORT LOG ARGS...: start one and wait until it listens
	_port=$1 _log=$2; shift 2
	rm -f "$T/ready.$_port" "$_log"
	python3 "$FAKE" --port "$_port" --cert tls/srv.crt --key tls/srv.key --root root \
		--log "$_log" --ready "$T/ready.$_port" "$@" 2>>"$T/fake.err" &
	fake_pids="$fake_pids $!"
	for _ in $(seq 100); do
		[ -f "$T/ready.$_port" ] && return 0
		sleep 0.05
	done
	echo "fake registry on $_port did not start"; cat "$T/fake.err"
	return 1
}
stop_fakes() {
	for p in $fake_pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	fake_pids=
}
trap stop_fakes EXIT

fetch() { "$FETCH" --ca tls/ca.crt "$@"; }
lines() { grep -c -- "$2" "$1" 2>/dev/null || true; }  # FILE PATTERN: how many lines match
blob_ok() {  # FILE: holds the blob, whole
	[ "$(sha256sum "$1" | cut -d' ' -f1)" = "$B" ]
}

# ---- no auth: manifests by tag and by digest, a blob ---------------------------
start_fake 5000 log.plain
check_out "a manifest by tag: its media type, digest and size" "$MTYPE sha256:$M $MSIZE" \
	fetch 127.0.0.1:5000/app manifest
check_out "the same manifest by digest" "$MTYPE sha256:$M $MSIZE" \
	fetch "127.0.0.1:5000/app@sha256:$M" manifest
check_out "a blob arrives whole" "done=300000" fetch 127.0.0.1:5000/app blob "sha256:$B" b1
check "and its bytes are the blob's" blob_ok b1
check_out "a DNS name is checked against the certificate's DNS names" "$MTYPE sha256:$M $MSIZE" \
	fetch localhost:5000/app manifest
out=$(fetch 127.0.0.1:5000/app manifest nope 2>&1); rc=$?
check_out "a missing manifest is a clear 404 error" \
	"1: reg_fetch: 127.0.0.1:5000/app: manifest nope: HTTP 404 (manifest unknown)" echo "$rc: $out"
check_out "and it was asked once (a 404 is not retried)" 1 lines log.plain "manifests/nope"
out=$(fetch 127.0.0.1:5000/app blob "sha256:$(printf '%064d' 1)" b404 2>&1)
check_out "a missing blob names the registry, repository, digest and status" \
	"reg_fetch: 127.0.0.1:5000/app: blob sha256:$(printf '%064d' 1): HTTP 404 (blob unknown)" echo "$out"

# ---- a digest mismatch leaves nothing ----------------------------------------------
out=$(fetch 127.0.0.1:5000/app blob "sha256:$W" bw 2>&1); rc=$?
check_out "a blob whose bytes do not match its digest: the stream's reader sees it" \
	"1: reg_fetch: the blob's digest is sha256:$(sha256sum wrong | cut -d' ' -f1)" \
	echo "$rc: $out"
check_out "and nothing of it is kept" 0 stat -c %s bw
out=$(fetch "127.0.0.1:5000/app@sha256:$W" manifest 2>&1)
check "a manifest whose bytes do not match the digest asked for is an error" \
	sh -c "echo '$out' | grep -q 'manifest sha256:$W: the registry sent content whose digest is'"

stop_fakes

# ---- bearer tokens ----------------------------------------------------------------
start_fake 5000 log.bearer --auth bearer --user alice --password s3cret
check_out "the token flow: a manifest with credentials from auth.json" "$MTYPE sha256:$M $MSIZE" \
	fetch --auth auth.json 127.0.0.1:5000/app manifest
check_out "the token was fetched with basic credentials, for the repository's pull scope" 1 \
	lines log.bearer "GET /token?service=fake-registry&scope=repository%3Aapp%3Apull range=- auth=basic -> 200"
check_out "and the manifest asked for again with it" 1 lines log.bearer "manifests/latest range=- auth=bearer -> 200"
check_out "the 401, the token and the manifest went over one connection" 1 \
	sh -c "sed -n 's/.* peer=//p' log.bearer | sort -u | wc -l"
rm -f log.bearer
fetch --auth auth.json 127.0.0.1:5000/app blob "sha256:$B" b4 >/dev/null
check "a blob through the token flow" blob_ok b4
out=$(fetch --auth wrong.json 127.0.0.1:5000/app manifest 2>&1); rc=$?
check_out "a wrong password is a clear 401 error naming the auth file" \
	"1: reg_fetch: 127.0.0.1:5000/app: manifest latest: token from https://127.0.0.1:5000/token: HTTP 401 (unauthorized: the credentials for 127.0.0.1:5000 in wrong.json were refused)" \
	echo "$rc: $out"
out=$(fetch 127.0.0.1:5000/app manifest 2>&1)
check_out "no credentials at all: the registry's refusal says so" \
	"reg_fetch: 127.0.0.1:5000/app: manifest latest: token from https://127.0.0.1:5000/token: HTTP 401 (unauthorized: no credentials for 127.0.0.1:5000 (no auth file given))" \
	echo "$out"
stop_fakes
start_fake 5000 log.anon --auth bearer --access-token
check_out "an anonymous token (\"access_token\") without credentials" "$MTYPE sha256:$M $MSIZE" \
	fetch 127.0.0.1:5000/app manifest
check_out "asked for without an Authorization" 1 lines log.anon "GET /token?.* auth=none -> 200"
stop_fakes

# ---- basic ------------------------------------------------------------------------------
start_fake 5000 log.basic --auth basic --user alice --password s3cret
check_out "basic auth from auth.json" "$MTYPE sha256:$M $MSIZE" fetch --auth auth.json 127.0.0.1:5000/app manifest
out=$(fetch --auth wrong.json 127.0.0.1:5000/app manifest 2>&1)
check_out "a wrong basic password is a clear 401 error" \
	"reg_fetch: 127.0.0.1:5000/app: manifest latest: HTTP 401 (unauthorized: the credentials for 127.0.0.1:5000 in wrong.json were refused)" \
	echo "$out"
out=$(fetch 127.0.0.1:5000/app manifest 2>&1)
check_out "no basic credentials" \
	"reg_fetch: 127.0.0.1:5000/app: manifest latest: HTTP 401 (unauthorized: no credentials for 127.0.0.1:5000 (no auth file given))" \
	echo "$out"
printf '{"auths": {"127.0.0.1:5000": {"auth": "bm8tY29sb24="}}}' >bad.json
out=$(fetch --auth bad.json 127.0.0.1:5000/app manifest 2>&1)
check_out "an auth entry that is not user:password is refused up front" \
	"reg_fetch: 127.0.0.1:5000/app: auth file bad.json: the auth of 127.0.0.1:5000 is not base64 of user:password" \
	echo "$out"
stop_fakes

# ---- transient failures are retried -------------------------------------------------
start_fake 5000 log.429 --fail 429:1:manifests --retry-after 1
t0=$(date +%s%N)
check_out "429 with Retry-After, then success" "$MTYPE sha256:$M $MSIZE" fetch 127.0.0.1:5000/app manifest
t1=$(date +%s%N)
check "after waiting as long as Retry-After said (1 s)" test $(((t1 - t0) / 1000000)) -ge 1000
check_out "two requests" 2 lines log.429 "manifests/latest"
stop_fakes
start_fake 5000 log.500 --fail 500:2:blobs
check_out "500 twice, then success" "done=300000" fetch 127.0.0.1:5000/app blob "sha256:$B" b5
check "the blob is whole" blob_ok b5
check_out "three requests" 3 lines log.500 "blobs/sha256:$B"
stop_fakes
start_fake 5000 log.503 --fail 503:99:manifests --retry-after 0
out=$(fetch 127.0.0.1:5000/app manifest 2>&1)
check_out "a registry that keeps failing: an error after REGISTRY_TRIES tries" \
	"reg_fetch: 127.0.0.1:5000/app: manifest latest: HTTP 503 (unavailable) (gave up after 5 tries)" echo "$out"
check_out "five requests" 5 lines log.503 "manifests/latest"
stop_fakes

# ---- a blob transfer cut mid-way ------------------------------------------------------
start_fake 5000 log.die --die-after 100000
check_out "a connection dying mid-blob: resumed, the blob arrives" "done=300000" \
	fetch 127.0.0.1:5000/app blob "sha256:$B" b6
check "whole" blob_ok b6
check_out "the second request asked for the rest with a Range" 1 lines log.die "range=bytes=100000- auth=none -> 206"
stop_fakes
start_fake 5000 log.norange --die-after 100000 --ignore-range
check_out "a server that ignores Range: what came before is skipped" "done=300000" \
	fetch 127.0.0.1:5000/app blob "sha256:$B" b7
check "and the stream is the blob, not the start twice" blob_ok b7
check_out "the Range was asked for and answered with the whole blob" 1 lines log.norange "range=bytes=100000- auth=none -> 200"
stop_fakes
start_fake 5000 log.flaky --die-after 100000 --die-always
check_out "a link that breaks every 100 kB: each try resumes, the blob arrives" \
	"done=300000" fetch 127.0.0.1:5000/app blob "sha256:$B" b11
check "whole" blob_ok b11
check_out "in three requests" 3 lines log.flaky "blobs/sha256:$B"
stop_fakes
start_fake 5000 log.hopeless --die-after 100000 --die-always --ignore-range
out=$(fetch 127.0.0.1:5000/app blob "sha256:$B" b12 2>&1)
check_out "one that breaks at the same place each time, without Range: it gives up" \
	"reg_fetch: 127.0.0.1:5000/app: blob sha256:$B: 127.0.0.1:5000: the connection closed after 100000 of 300000 bytes (gave up after 5 tries)" \
	echo "$out"
check_out "after the first try (progress) and five more that got no further" 6 \
	lines log.hopeless "blobs/sha256:$B"
stop_fakes

# ---- redirects ---------------------------------------------------------------------------
start_fake 5000 log.redir --auth bearer --user alice --password s3cret --redirect-blobs https://127.0.0.1:5001
start_fake 5001 log.cdn
check_out "a blob redirected to another port" "done=300000" \
	fetch --auth auth.json 127.0.0.1:5000/app blob "sha256:$B" b8
check "arrives whole" blob_ok b8
check_out "the registry redirected" 1 lines log.redir "blobs/sha256:$B range=- auth=bearer -> 307"
check_out "and the other server got no Authorization" 1 lines log.cdn "blobs/sha256:$B range=- auth=none -> 200"
stop_fakes

# ---- chunked bodies ---------------------------------------------------------------------------
start_fake 5000 log.chunked --chunked
check_out "a chunked manifest" "$MTYPE sha256:$M $MSIZE" fetch 127.0.0.1:5000/app manifest
check_out "a chunked blob" "done=300000" fetch 127.0.0.1:5000/app blob "sha256:$B" b9
check "whole" blob_ok b9
stop_fakes

# ---- certificates, connections, cancellation ------------------------------------------------
start_fake 5000 log.tls --addr 0.0.0.0
out=$("$FETCH" --ca other/ca.crt 127.0.0.1:5000/app manifest 2>&1)
check_out "a server certificate from a CA we do not trust" \
	"reg_fetch: 127.0.0.1:5000/app: manifest latest: TLS handshake with 127.0.0.1:5000 failed: certificate not signed by a trusted CA" \
	echo "$out"
out=$(fetch 127.0.0.2:5000/app manifest 2>&1)
check_out "a certificate that does not name the address" \
	"reg_fetch: 127.0.0.2:5000/app: manifest latest: TLS handshake with 127.0.0.2:5000 failed: the server's certificate does not name 127.0.0.2" \
	echo "$out"
out=$("$FETCH" --ca /nonexistent 127.0.0.1:5000/app manifest 2>&1)
check_out "a CA bundle that is not there" \
	"reg_fetch: 127.0.0.1:5000/app: CA bundle /nonexistent: No such file or directory (ENOENT)" echo "$out"
stop_fakes
out=$(fetch 127.0.0.1:5999/app manifest 2>&1)
check_out "nobody listening: refused, retried, then a clear error" \
	"reg_fetch: 127.0.0.1:5999/app: manifest latest: connect 127.0.0.1:5999: Connection refused (ECONNREFUSED) (gave up after 5 tries)" \
	echo "$out"
start_fake 5000 log.stall --stall-blobs
t0=$(date +%s%N)
out=$(fetch --cancel-after 500 127.0.0.1:5000/app blob "sha256:$B" b10 2>&1)
t1=$(date +%s%N)
check_out "a stalled transfer is cancelled" \
	"reg_fetch: 127.0.0.1:5000/app: blob sha256:$B: cancelled" echo "$out"
check "within a second of being asked" test $(((t1 - t0) / 1000000)) -lt 1500
stop_fakes
start_fake 5000 log.stall2 --stall-blobs
t0=$(date +%s%N)
check_out "a transfer silent for longer than the timeout is tried again, and arrives" \
	"done=300000" fetch --timeout 1000 127.0.0.1:5000/app blob "sha256:$B" b13
t1=$(date +%s%N)
check "whole" blob_ok b13
check "after about the timeout and one back-off (1.5 s)" \
	test $(((t1 - t0) / 1000000)) -ge 1400 -a $(((t1 - t0) / 1000000)) -lt 5000
check_out "in two requests" 2 lines log.stall2 "blobs/sha256:$B"
stop_fakes
start_fake 5000 log.stall3 --stall-after 100000
check_out "a transfer that goes silent mid-blob is resumed where it stopped" \
	"done=300000" fetch --timeout 1000 127.0.0.1:5000/app blob "sha256:$B" b14
check "whole" blob_ok b14
check_out "with a Range request from the bytes handed over" 1 \
	lines log.stall3 "range=bytes=100000- auth=none -> 206"
stop_fakes

done_testing
