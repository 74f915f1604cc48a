# lib.sh - TAP helpers for shell tests (sourced). See tests/run.sh.
#
#   check "what a user would notice" COMMAND...     ok if COMMAND succeeds
#   check_out "what" "expected output" COMMAND...   ok if COMMAND prints exactly that
#   skip "what" "why"                               one skipped check
#   skip_all "why"                                  the whole file cannot run (exit 77)
#   done_testing                                    plan line; exit 1 if anything failed

_t_n=0
_t_failed=0

ok() { _t_n=$((_t_n + 1)); echo "ok $_t_n - $1"; }
not_ok() {
	_t_n=$((_t_n + 1)); _t_failed=$((_t_failed + 1))
	echo "not ok $_t_n - $1"
	shift
	[ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/#   /'
	return 0
}

check() {
	_what=$1; shift
	if _out=$("$@" 2>&1); then
		ok "$_what"
	else
		not_ok "$_what" "command: $*" "output: $_out"
	fi
}

check_out() {
	_what=$1 _want=$2; shift 2
	_got=$("$@" 2>&1)
	if [ "$_got" = "$_want" ]; then
		ok "$_what"
	else
		not_ok "$_what" "command: $*" "want: $_want" "got:  $_got"
	fi
}

skip() { _t_n=$((_t_n + 1)); echo "ok $_t_n - $1 # SKIP $2"; }
skip_all() { echo "1..0 # SKIP $1"; echo "$1"; exit 77; }
done_testing() { echo "1..$_t_n"; [ "$_t_failed" = 0 ]; exit $?; }

need_cmd() {
	for _c in "$@"; do
		command -v "$_c" >/dev/null 2>&1 || skip_all "'$_c' is not installed (run mk/deps.sh test)"
	done
}
