# registry.sh - a real registry for image tests (sourced after tests/lib.sh):
# Debian's docker-registry on loopback with TLS and basic auth, filled with
# skopeo, and a proxy that breaks a transfer mid-blob.
#
#   image_rootfs ARCH DIR   a busybox rootfs (mk/busybox-rootfs.sh; ARCH
#                           x86_64 | aarch64, or amd64 | arm64); 1 if it fails
#   mkimage ARGS...         tests/helpers/mkimage.py (the test image; its
#                           header says what is in it)
#   test_certs DIR          a CA and a server certificate for 127.0.0.1 and
#                           localhost: DIR/ca.crt, srv.crt, srv.key
#   registry_start DIR [basic|token]
#                           start docker-registry on 127.0.0.1:$REGISTRY_PORT
#                           (default 5000) with everything under DIR: a CA
#                           and a server certificate (SAN IP:127.0.0.1,
#                           DNS:localhost), the storage, and
#                           basic: an htpasswd (bcrypt) of
#                             $REGISTRY_USER:$REGISTRY_PASS (the default)
#                           token: the Bearer flow, `WWW-Authenticate: Bearer
#                             realm=$REGISTRY_TOKEN_URL,service=berth-test`;
#                             tests/helpers/token_server.py (HTTPS, the same
#                             CA) grants what is asked with those
#                             credentials, pull only without any, 401 with
#                             wrong ones; a line per token in
#                             $REGISTRY_TOKEN_LOG
#                           returns once /v2/ answers (1 if it never does)
#   registry_push SRC REF [SKOPEO-COPY-OPTION...]
#                           skopeo copy --all SRC (a skopeo transport:
#                           oci-archive:F, docker-archive:F, oci:DIR[:REF])
#                           to docker://$REGISTRY/REF, with the credentials
#   registry_skopeo ARGS... skopeo with this harness's policy and an empty
#                           registries.conf (nothing of the machine's)
#   registry_stop           stop the registry (and the cut proxy)
#   cut_proxy_start LISTEN TARGET AFTER_BYTES [TIMES]
#                           tests/helpers/cut_proxy.py: forwards LISTEN
#                           (HOST:PORT, port 0: any) to TARGET, and resets
#                           the first TIMES (1) connections that carry more
#                           than AFTER_BYTES from the server after exactly
#                           AFTER_BYTES; later ones pass. Sets CUT_PROXY
#                           (HOST:PORT) and CUT_PROXY_LOG (a line per
#                           connection: "conn N down=B up=B cut|whole")
#   cut_proxy_stop
#   fault_proxy_start RULE...
#                           tests/helpers/fault_proxy.py: HTTPS (the
#                           registry's certificate) on 127.0.0.1:PORT in
#                           front of the registry, forwarding GET and HEAD
#                           as they come (Authorization, Range, Accept);
#                           RULE STATUS:PATTERN[:COUNT] answers STATUS (429
#                           and 503 with Retry-After: 1) to the first COUNT
#                           (1) requests whose path contains PATTERN;
#                           cut:PATTERN:BYTES[:COUNT] resets the connection
#                           after exactly BYTES of the body. Sets FAULT_PROXY
#                           (HOST:PORT) and FAULT_PROXY_LOG ("METHOD PATH
#                           range=R -> STATUS body=B fault|cut|pass")
#   fault_proxy_stop
#
# Call registry_start and cut_proxy_start directly, not inside check: the
# variables they set would stay in check's subshell.
#
# Exported once the registry runs:
#   REGISTRY           127.0.0.1:PORT
#   REGISTRY_CA        the CA certificate (PEM) that signed the server's
#   REGISTRY_CERT_DIR  a directory holding it as ca.crt (skopeo --*-cert-dir)
#   REGISTRY_AUTH      an auth.json: {"auths":{"127.0.0.1:PORT":{"auth":B64}}}
#   REGISTRY_USER, REGISTRY_PASS (berth, fixture-secret unless set before)
#   REGISTRY_LOG       the registry's log (its access log: one line a request)
#   REGISTRY_PID
#
# Tests run inside their own network namespace (tests/run.sh), so port 5000
# of 127.0.0.1 is the test's alone. Whatever the test does, the registry and
# the proxy die with it: a watchdog started with each kills its PID once the
# test's shell is gone (and registry_stop kills them at once).
REGISTRY_PORT=${REGISTRY_PORT:-5000}
REGISTRY_USER=${REGISTRY_USER:-berth}
REGISTRY_PASS=${REGISTRY_PASS:-fixture-secret}

image_rootfs() {
	case $1 in amd64) set -- x86_64 "$2" ;; arm64) set -- aarch64 "$2" ;; esac
	sh "$BERTH_TOP/mk/busybox-rootfs.sh" "$1" "$2" >/dev/null 2>&1
}
mkimage() { python3 "$BERTH_TOP/tests/helpers/mkimage.py" "$@"; }

# _reg_watch PID: kill PID once this test's shell ($$) has exited
_reg_watch() {
	(
		trap '' HUP
		while kill -0 $$ 2>/dev/null && kill -0 "$1" 2>/dev/null; do sleep 1; done
		kill "$1" 2>/dev/null
	) </dev/null >/dev/null 2>&1 &
}

registry_skopeo() {
	CONTAINERS_REGISTRIES_CONF=$_reg_dir/registries.conf skopeo --policy "$_reg_dir/policy.json" "$@"
}

# _reg_token_start: the token service of the Bearer flow (token mode)
_reg_token_start() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$_c/token.key" -out "$_c/token.crt" \
		-days 7 -subj /CN=berth-test-token >/dev/null 2>&1 ||
		{ echo "registry_start: the token signing key" >&2; return 1; }
	rm -f "$_reg_dir/token.port"
	REGISTRY_TOKEN_LOG=$_reg_dir/token.log
	: >"$REGISTRY_TOKEN_LOG"
	python3 "$BERTH_TOP/tests/helpers/token_server.py" 127.0.0.1:0 "$_c/srv.crt" "$_c/srv.key" \
		"$_c/token.key" "$_c/token.crt" "$REGISTRY_USER:$REGISTRY_PASS" \
		--port-file "$_reg_dir/token.port" --log "$REGISTRY_TOKEN_LOG" </dev/null >>"$_reg_dir/token.err" 2>&1 &
	REGISTRY_TOKEN_PID=$!
	_reg_watch "$REGISTRY_TOKEN_PID"
	for _ in $(seq 100); do
		[ -s "$_reg_dir/token.port" ] && break
		kill -0 "$REGISTRY_TOKEN_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$_reg_dir/token.port" ] || { echo "registry_start: the token server" >&2; cat "$_reg_dir/token.err" >&2; return 1; }
	REGISTRY_TOKEN_URL=https://127.0.0.1:$(cat "$_reg_dir/token.port")/token
	export REGISTRY_TOKEN_URL REGISTRY_TOKEN_LOG
}

# test_certs DIR: a CA (DIR/ca.crt, ca.key) and a server certificate it signed
# (DIR/srv.crt, srv.key) for IP:127.0.0.1 and DNS:localhost, ECDSA P-256
# (quick to make, and what BearSSL and Go both speak); 1 if openssl fails.
test_certs() {
	mkdir -p "$1" &&
	printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$1/srv.ext" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" \
		-out "$1/ca.crt" -subj /CN=berth-test-ca -days 7 -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign >/dev/null 2>&1 &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/srv.key" \
		-out "$1/srv.csr" -subj /CN=localhost >/dev/null 2>&1 &&
	openssl x509 -req -in "$1/srv.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial \
		-out "$1/srv.crt" -days 7 -extfile "$1/srv.ext" >/dev/null 2>&1
}

registry_start() {
	_reg_dir=$1
	need_cmd docker-registry skopeo openssl htpasswd curl base64
	mkdir -p "$_reg_dir/certs" "$_reg_dir/certs.d" "$_reg_dir/data" || return 1
	_c=$_reg_dir/certs
	test_certs "$_c" || { echo "registry_start: openssl could not make the certificates" >&2; return 1; }
	cp "$_c/ca.crt" "$_reg_dir/certs.d/ca.crt"
	htpasswd -Bbn "$REGISTRY_USER" "$REGISTRY_PASS" >"$_reg_dir/htpasswd" 2>/dev/null ||
		{ echo "registry_start: htpasswd" >&2; return 1; }
	cat >"$_reg_dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $_reg_dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$REGISTRY_PORT
  secret: berth-test-registry
  tls:
    certificate: $_c/srv.crt
    key: $_c/srv.key
EOF
	case ${2:-basic} in
	basic)
		printf 'auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n' "$_reg_dir/htpasswd" >>"$_reg_dir/config.yml" ;;
	token)
		_reg_token_start || return 1
		printf 'auth:\n  token:\n    realm: %s\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: %s\n' \
			"$REGISTRY_TOKEN_URL" "$_c/token.crt" >>"$_reg_dir/config.yml" ;;
	*) echo "registry_start: auth '$2'? (basic, token)" >&2; return 1 ;;
	esac
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$_reg_dir/policy.json"
	: >"$_reg_dir/registries.conf"
	REGISTRY=127.0.0.1:$REGISTRY_PORT
	REGISTRY_CA=$_c/ca.crt
	REGISTRY_CERT_DIR=$_reg_dir/certs.d
	REGISTRY_LOG=$_reg_dir/registry.log
	REGISTRY_AUTH=$_reg_dir/auth.json
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" \
		"$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASS" | base64 -w0)" >"$REGISTRY_AUTH"
	export REGISTRY REGISTRY_CA REGISTRY_CERT_DIR REGISTRY_LOG REGISTRY_AUTH REGISTRY_USER REGISTRY_PASS
	# env -i: docker-registry takes every REGISTRY_* variable for a
	# setting of its configuration (REGISTRY_LOG would be log:)
	env -i PATH="$PATH" docker-registry serve "$_reg_dir/config.yml" </dev/null >>"$REGISTRY_LOG" 2>&1 &
	REGISTRY_PID=$!
	export REGISTRY_PID
	_reg_watch "$REGISTRY_PID"
	# ready: /v2/ takes the credentials (basic), or asks for a token
	_want=200
	[ "${2:-basic}" = token ] && _want=401
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REGISTRY_CA" \
			-u "$REGISTRY_USER:$REGISTRY_PASS" "https://$REGISTRY/v2/" 2>/dev/null)" = $_want ] && return 0
		kill -0 "$REGISTRY_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "registry_start: docker-registry does not answer on $REGISTRY:" >&2
	tail -5 "$REGISTRY_LOG" >&2
	return 1
}

registry_push() {
	_src=$1 _ref=$2; shift 2
	registry_skopeo copy -q --all --dest-cert-dir "$REGISTRY_CERT_DIR" \
		--dest-creds "$REGISTRY_USER:$REGISTRY_PASS" "$@" "$_src" "docker://$REGISTRY/$_ref"
}

registry_stop() {
	cut_proxy_stop
	fault_proxy_stop
	if [ -n "${REGISTRY_TOKEN_PID:-}" ]; then
		kill "$REGISTRY_TOKEN_PID" 2>/dev/null
		wait "$REGISTRY_TOKEN_PID" 2>/dev/null
		REGISTRY_TOKEN_PID=
	fi
	if [ -n "${REGISTRY_PID:-}" ]; then
		kill "$REGISTRY_PID" 2>/dev/null
		wait "$REGISTRY_PID" 2>/dev/null
		REGISTRY_PID=
	fi
	return 0
}

cut_proxy_start() {
	_cp_dir=${_reg_dir:-$TMPDIR}
	rm -f "$_cp_dir/cut_proxy.port"
	CUT_PROXY_LOG=$_cp_dir/cut_proxy.log
	: >"$CUT_PROXY_LOG"
	python3 "$BERTH_TOP/tests/helpers/cut_proxy.py" "$1" "$2" "$3" --times "${4:-1}" \
		--port-file "$_cp_dir/cut_proxy.port" --log "$CUT_PROXY_LOG" </dev/null >/dev/null 2>&1 &
	CUT_PROXY_PID=$!
	_reg_watch "$CUT_PROXY_PID"
	for _ in $(seq 100); do
		[ -s "$_cp_dir/cut_proxy.port" ] && break
		kill -0 "$CUT_PROXY_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	[ -s "$_cp_dir/cut_proxy.port" ] || return 1
	CUT_PROXY=${1%:*}:$(cat "$_cp_dir/cut_proxy.port")
	export CUT_PROXY CUT_PROXY_LOG
}

cut_proxy_stop() {
	if [ -n "${CUT_PROXY_PID:-}" ]; then
		kill "$CUT_PROXY_PID" 2>/dev/null
		wait "$CUT_PROXY_PID" 2>/dev/null
		CUT_PROXY_PID=
	fi
	return 0
}

fault_proxy_start() {
	rm -f "$_reg_dir/fault_proxy.port"
	FAULT_PROXY_LOG=$_reg_dir/fault_proxy.log
	: >"$FAULT_PROXY_LOG"
	python3 "$BERTH_TOP/tests/helpers/fault_proxy.py" 127.0.0.1:0 "$REGISTRY" "$@" \
		--cert "$_reg_dir/certs/srv.crt" --key "$_reg_dir/certs/srv.key" --ca "$REGISTRY_CA" \
		--port-file "$_reg_dir/fault_proxy.port" --log "$FAULT_PROXY_LOG" </dev/null >>"$_reg_dir/fault_proxy.err" 2>&1 &
	FAULT_PROXY_PID=$!
	_reg_watch "$FAULT_PROXY_PID"
	for _ in $(seq 100); do
		[ -s "$_reg_dir/fault_proxy.port" ] && break
		kill -0 "$FAULT_PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$_reg_dir/fault_proxy.port" ] || { cat "$_reg_dir/fault_proxy.err" >&2; return 1; }
	FAULT_PROXY=127.0.0.1:$(cat "$_reg_dir/fault_proxy.port")
	export FAULT_PROXY FAULT_PROXY_LOG
}

fault_proxy_stop() {
	if [ -n "${FAULT_PROXY_PID:-}" ]; then
		kill "$FAULT_PROXY_PID" 2>/dev/null
		wait "$FAULT_PROXY_PID" 2>/dev/null
		FAULT_PROXY_PID=
	fi
	return 0
}
