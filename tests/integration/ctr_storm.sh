# ctr_storm.sh - a daemon that starts many containers at once (a gateway
# booting after a power cut) starts at most CTR_STARTS_MAX (8) at a time, the
# others waiting their turn, so no start misses its report deadline on a
# slow board; every one of them runs in the end.
. "$BERTH_TOP/tests/lib.sh"
need_cmd busybox

. "$BERTH_TOP/tests/daemon.sh"
busybox_world "domain   = berth.internal"
N=40
for i in $(seq 1 $N); do
	printf '[container]\nrootfs  = %s\ncommand = sleep 3600\n' "$R" >"$C/containers.d/s$i.ini"
done
"$BERTH" daemon -c "$C" --foreground >>"$log" 2>&1 &
pid=$!
wait_for B status || skip_all "the daemon did not start"
# how many are starting at once, sampled until all run
most=0 running=0
for _ in $(seq 600); do
	B ps >"$TMPDIR/ps" 2>/dev/null || continue
	n=$(awk 'NR > 1 && $2 == "starting"' "$TMPDIR/ps" | wc -l)
	[ "$n" -gt "$most" ] && most=$n
	running=$(awk 'NR > 1 && $2 == "running"' "$TMPDIR/ps" | wc -l)
	[ "$running" = "$N" ] && break
	sleep 0.02
done
check_out "all $N containers run" "$N" echo "$running"
if [ "$most" -le 8 ] && [ "$most" -ge 1 ]; then
	ok "at most 8 were starting at once (saw $most)"
else
	not_ok "at most 8 are starting at once" "saw $most"
fi
done_testing
