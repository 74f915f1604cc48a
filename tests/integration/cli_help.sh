# cli_help.sh - documentation that cannot drift (issue 22): berth help COMMAND
# and COMMAND --help for every command; bad input prints that command's usage
# and exits 2; berth(8) and berth.ini(5) render without warnings and name
# every command and every configuration key; the bash completion completes a
# command prefix, options and a container's name from the running daemon;
# the CLI that finds a broken berth.ini falls back to the default socket and
# says why, and an empty berth.ini means the default socket, silently.
. "$BERTH_TOP/tests/lib.sh"
need_cmd jq groff man bash
. "$BERTH_TOP/tests/daemon.sh"
# The daemon below listens on the default socket (/run/berth/berth.sock):
# only inside the private /run that tests/run.sh mounts for each test.
grep -q '^berth-test-run /run ' /proc/self/mounts ||
	skip_all "needs the private /run of tests/run.sh (run it through tests/run.sh)"

cmds=$("$BERTH" help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
n=$(printf '%s\n' "$cmds" | wc -l)
[ "$n" -ge 25 ] && ok "berth help lists the commands ($n)" || not_ok "berth help lists the commands" "got: $cmds"

# ---- help, usage --------------------------------------------------------------
bad=
for c in $cmds; do
	h=$("$BERTH" help "$c" 2>&1) || bad="$bad $c(help exits $?)"
	case $h in
	"usage: berth $c"*) ;;
	*) bad="$bad $c(help: $(printf '%s' "$h" | head -1))" ;;
	esac
	case $h in *"
options:"*) opts=1 ;; *) opts= ;; esac
	[ "$("$BERTH" "$c" --help 2>&1)" = "$h" ] || bad="$bad $c(--help differs)"
	[ -z "$opts" ] || [ "$("$BERTH" "$c" -h 2>&1)" = "$h" ] || bad="$bad $c(-h differs)"
done
check_out "berth help CMD and CMD --help print the same usage and help for every command" "" echo "$bad"

out=$("$BERTH" logs web --bogus 2>&1); rc=$?
check_out "an unknown option: exit 2, the reason, that command's usage only" \
	"2 berth: logs: unknown option '--bogus'
usage: berth logs [-f] [--tail N] NAME
see: berth help logs" echo "$rc $out"
out=$("$BERTH" dns lsx 2>&1); rc=$?
check_out "an unknown subcommand: exit 2, each form of that command" \
	"2 berth: dns: unknown subcommand 'lsx'
usage: berth dns ls
       berth dns query NAME
see: berth help dns" echo "$rc $out"
out=$("$BERTH" inspect 2>&1); rc=$?
check_out "a missing argument is named" "2 berth: inspect: missing NAME" echo "$rc $(echo "$out" | head -1)"
out=$("$BERTH" -o json stop web extra 2>/dev/null); rc=$?
check_out "with -o json the usage error is a JSON object on stdout, still exit 2" \
	"2 stop: unexpected argument 'extra' usage: berth stop [-t SECONDS] NAME" \
	echo "$rc $(printf '%s' "$out" | jq -r '.error + " " + .details[0]')"
out=$("$BERTH" frobnicate 2>&1); rc=$?
case $out in
"berth: unknown command 'frobnicate'
commands: "*"see: berth help"*) shape=ok ;;
*) shape=bad ;;
esac
check_out "an unknown command: exit 2, the command names and where to look" "2 ok" echo "$rc $shape"
check_out "... not the whole list of what each command does" "0" \
	sh -c 'printf "%s\n" "$1" | grep -c "global options\|the daemon.s version"' _ "$out"
out=$("$BERTH" help frobnicate 2>&1); rc=$?
check_out "help for an unknown command: exit 2" "2" echo "$rc"

# A daemon that judges the arguments itself (one the CLI's table lets through,
# or a newer daemon): its "usage: ..." answer is a usage error too.
python3 - "$TMPDIR/fake.sock" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1); s.settimeout(20)
c, _ = s.accept()
c.recv(4096)
c.sendall(b"error usage: berth ip ls\n")
c.close()
PY
fake=$!
wait_for test -S "$TMPDIR/fake.sock"
out=$("$BERTH" -s "$TMPDIR/fake.sock" ip ls 2>&1); rc=$?
wait "$fake"
check_out "the daemon's own usage answer: exit 2 and the command's usage" \
	"2 berth: ip: the daemon refused these arguments
usage: berth ip ls
see: berth help ip" echo "$rc $out"

# ---- man pages ----------------------------------------------------------------------
man8=$TMPDIR/berth.8 man5=$TMPDIR/berth.ini.5
"$BERTH" doc man8 >"$man8" && "$BERTH" doc man5 >"$man5"
for m in "$man8" "$man5"; do
	w=$(groff -man -Tutf8 -ww -z "$m" 2>&1)
	check_out "${m##*/} renders with groff -ww without a warning" "" echo "$w"
	w=$(MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	check_out "${m##*/} renders with man -l without a warning" "" echo "$w"
done
page=$(MANWIDTH=200 man -l "$man8" 2>/dev/null)
missing=
for c in $cmds; do
	printf '%s\n' "$page" | grep -qx "   $c" || missing="$missing $c"
	printf '%s\n' "$page" | grep -q "^ *berth $c" || missing="$missing $c(synopsis)"
done
check_out "berth(8) has a section and a synopsis for every command" "" echo "$missing"
page=$(MANWIDTH=200 man -l "$man5" 2>/dev/null)
keys=$("$BERTH" -o json config keys | jq -r '.sections[] | .section as $s | .keys[] | "\($s)\t\(.key)"')
missing=
tab=$(printf '\t')
while IFS=$tab read -r sect key; do
	printf '%s\n' "$page" | grep -qF "[$sect]" || missing="$missing [$sect]"
	printf '%s\n' "$page" | grep -q "^ *$key = " || missing="$missing $key"
done <<EOF
$keys
EOF
nkeys=$(printf '%s\n' "$keys" | wc -l)
check_out "berth.ini(5) has every section and every key of config keys ($nkeys)" "" echo "$missing"
# what the build made (make: build/man) is what this binary says
top_man=$BERTH_TOP/build/man
if [ -f "$top_man/berth.8" ] && [ -f "$top_man/berth.ini.5" ]; then
	check "the built man pages are today's (make regenerates them from the tables)" \
		sh -c 'cmp "$1" "$2/berth.8" && cmp "$3" "$2/berth.ini.5"' _ "$man8" "$top_man" "$man5"
else
	skip "the built man pages are today's" "build/man is not built (make)"
fi

# ---- a daemon on the default socket -------------------------------------------------
busybox_world
# no run_dir: the default, /run/berth (this test's private /run)
printf '[daemon]\nstate_dir = %s\n[network default]\nbridge = berth0\nsubnet = 10.88.0.0/16\n[dns]\nupstream = 127.0.0.1\n' \
	"$S" >"$C/berth.ini"
for n in web worker; do
	printf '[container]\nrootfs = %s\ncommand = sleep 1000\n' "$R" >"$C/containers.d/$n.ini"
done
start_daemon || { not_ok "the daemon starts" "$(cat "$log")"; done_testing; }
check "the daemon answers on the default socket" test -S /run/berth/berth.sock

# ---- bash completion ----------------------------------------------------------------
"$BERTH" completion bash >"$TMPDIR/completion.bash"
mkdir -p "$TMPDIR/bin"
ln -s "$BERTH" "$TMPDIR/bin/berth"
# complete WORD...: what _berth offers for the last word
complete_words() {
	PATH="$TMPDIR/bin:$PATH" bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_berth; [ ${#COMPREPLY[@]} = 0 ] || printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$TMPDIR/completion.bash" "$@"
}
check_out "a command prefix" "start stats status stop " complete_words berth st
check_out "after global options too" "image inspect ip " complete_words berth -c "$C" i
check_out "a subcommand" "ls query " complete_words berth dns ""
check_out "an option of the command" "--tail " complete_words berth logs --t
check_out "a container name, asked of the daemon (-c passed on)" "web worker " \
	complete_words berth -c "$C" logs ""
check_out "a container name after an option and its value" "worker " \
	complete_words berth -c "$C" stop -t 3 wo
check_out "nothing after the container's name where one is all" "" \
	complete_words berth -c "$C" inspect web ""
check_out "the command names for help" "policy port ports ps " complete_words berth help p
check_out "an option's values" "on-failure " complete_words berth run web --restart o
check_out "a global option's value" "json " complete_words berth -o ""
check_out "a directory for -c" "$C/containers.d " complete_words berth -c "$C/con"
if B network ls >/dev/null 2>&1; then
	check_out "a network name" "default " complete_words berth -c "$C" network inspect ""
else
	skip "a network name" "this daemon has no 'network ls' yet"
fi

# ---- the CLI finding its socket -----------------------------------------------------
mkdir -p "$TMPDIR/broken" "$TMPDIR/empty" "$TMPDIR/other"
printf '[daemon]\nrun_dir = /run/elsewhere\nlog_level = loud\n' >"$TMPDIR/broken/berth.ini"
out=$("$BERTH" -c "$TMPDIR/broken" -o json status 2>"$TMPDIR/err"); rc=$?
check_out "berth.ini with errors in [daemon]: the CLI still reaches the daemon (default socket)" \
	"0 $pid" echo "$rc $(printf '%s' "$out" | jq -r .pid)"
check_out "... and says it fell back, and why (file:line)" \
	"berth: $TMPDIR/broken/berth.ini:3: [daemon] log_level: 'loud': expected error, warn, info or debug; trying the default socket /run/berth/berth.sock (see: berth config check -c $TMPDIR/broken)" \
	cat "$TMPDIR/err"
: >"$TMPDIR/empty/berth.ini"
out=$("$BERTH" -c "$TMPDIR/empty" -o json status 2>"$TMPDIR/err"); rc=$?
check_out "an empty berth.ini means the default run_dir: reaches the daemon, says nothing" \
	"0 $pid " echo "$rc $(printf '%s' "$out" | jq -r .pid) $(cat "$TMPDIR/err")"
# an error outside [daemon] leaves its run_dir in force: no fallback there
printf '[daemon]\nrun_dir = %s/other\n[network default]\nsubnet = 10.88.0.0/33\n' "$TMPDIR" \
	>"$TMPDIR/other/berth.ini"
out=$("$BERTH" -c "$TMPDIR/other" status 2>&1); rc=$?
check_out "an error elsewhere in berth.ini: its run_dir still holds, no silent redirect" \
	"1 berth: cannot reach berth at $TMPDIR/other/berth.sock: No such file or directory (is the daemon running?)" \
	echo "$rc $out"

done_testing
