# cli.sh - the binaries' command dispatch: version, help, unknown commands.
. "$BERTH_TOP/tests/lib.sh"

for arch in x86_64 aarch64; do
	bin=$BERTH_TOP/build/$arch/berth
	run=
	if [ "$arch" != "$(uname -m)" ]; then
		q=qemu-$arch-static
		command -v "$q" >/dev/null || q=qemu-$arch
		if ! command -v "$q" >/dev/null; then
			skip "berth version under qemu reports $arch" "qemu-user-static is not installed"
			continue
		fi
		run=$q
	fi
	out=$($run "$bin" version 2>&1)
	check_out "berth version ($arch) reports arch $arch" "arch:    $arch" \
		echo "$(printf '%s\n' "$out" | grep '^arch:')"
	first=$(printf '%s\n' "$out" | head -1)
	case $first in
	"berth "[0-9]*.*) ok "berth version ($arch) starts with the version: $first" ;;
	*) not_ok "berth version ($arch) starts with the version" "got: $first" ;;
	esac
	sq=$(printf '%s\n' "$out" | sed -n 's/^sqlite: *//p')
	case $sq in
	3.*) ok "berth version ($arch) names the SQLite compiled in ($sq)" ;;
	*) not_ok "berth version ($arch) names the SQLite compiled in" "got: $out" ;;
	esac
	bs=$(printf '%s\n' "$out" | sed -n 's/^bearssl: *//p')
	case $bs in
	[0-9]*) ok "berth version ($arch) names the BearSSL compiled in ($bs)" ;;
	*) not_ok "berth version ($arch) names the BearSSL compiled in" "got: $out" ;;
	esac
	commit=$(printf '%s\n' "$out" | sed -n 's/^commit: *//p')
	want=$(cd "$BERTH_TOP" && git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	check_out "berth version ($arch) names the commit it was built from" "$want" echo "$commit"
done

bin=$BERTH_TOP/build/x86_64/berth
[ "$(uname -m)" = x86_64 ] || bin=$BERTH_TOP/build/aarch64/berth
out=$("$bin" help)
for c in daemon version help; do
	case $out in
	*"  $c "*) ok "berth help lists '$c'" ;;
	*) not_ok "berth help lists '$c'" "$out" ;;
	esac
done
"$bin" frobnicate >"${TMPDIR:-/tmp}/out" 2>"${TMPDIR:-/tmp}/err"; rc=$?
check_out "an unknown command exits 2" 2 echo "$rc"
check "an unknown command names itself on stderr" grep -q "unknown command 'frobnicate'" "${TMPDIR:-/tmp}/err"
check "an unknown command lists the command names and points to berth help" sh -c "grep -q '^see: berth help' '${TMPDIR:-/tmp}/err' && grep -qw reload '${TMPDIR:-/tmp}/err'"
check_out "an unknown command prints nothing on stdout" "" cat "${TMPDIR:-/tmp}/out"
"$bin" -o yaml version >/dev/null 2>&1; rc=$?
check_out "-o with anything but json is a usage error" 2 echo "$rc"
out=$("$bin" version -o json)
case $out in
"{\"version\":"*"\"arch\":\""*) ok "berth version -o json prints a JSON object" ;;
*) not_ok "berth version -o json prints a JSON object" "$out" ;;
esac
if command -v jq >/dev/null; then
	check "berth version -o json parses" sh -c "printf '%s' '$out' | jq -e .sqlite"
fi
done_testing
