# net_reuse.sh - an address one of berth's own containers had, handed to
# another, answers at once (issue 20 part 4): the host still caches the old
# container's MAC for it, and the daemon's announcement (a gratuitous ARP from
# the new interface, sent by its network worker) replaces that entry within
# moments instead of the 8-30 s a stale neighbour entry lasts.
. "$BERTH_TOP/tests/lib.sh"
need_cmd ip jq
. "$BERTH_TOP/tests/daemon.sh"
mkdir -p "$C/containers.d"
cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run

[network default]
bridge = berth0
subnet = 10.88.0.0/24

[dns]
upstream = 127.0.0.1
host     = no
INI
ctr() { printf '[container]\nrootfs  = /\ncommand = sleep 100000\nip      = 10.88.0.50\n' >"$C/containers.d/$1.ini"; }
mac_of() { nsenter --net="$S/netns/$1" ip -j link show eth0 | jq -r '.[0].address'; }
neigh() { ip -j neigh show 10.88.0.50 dev berth0 | jq -r '.[0].lladdr // empty'; }

ctr alpha
# another container keeps the bridge's carrier up: were alpha its only port,
# the kernel would flush the bridge's neighbour entries when alpha goes
printf '[container]\nrootfs  = /\ncommand = sleep 100000\n' >"$C/containers.d/keeper.ini"
start_daemon || { not_ok "the daemon starts" "$(cat "$log")"; done_testing; }
wait_for test -e "$S/netns/alpha"
a_mac=$(mac_of alpha)
# the host has talked to alpha: its entry for 10.88.0.50 is alpha's MAC
ip neigh replace 10.88.0.50 lladdr "$a_mac" dev berth0 nud stale
check_out "the host caches alpha's MAC for 10.88.0.50" "$a_mac" neigh

rm "$C/containers.d/alpha.ini"
ctr beta
check "a reload gives 10.88.0.50 to beta" B reload --wait
wait_for test -e "$S/netns/beta"
b_mac=$(mac_of beta)
check "beta's MAC differs from alpha's" test "$b_mac" != "$a_mac"
# wait_for gives up after ~10 s, well inside the stale entry's life
check "the host's entry for 10.88.0.50 becomes beta's MAC at once" \
	wait_for sh -c "[ \"\$(ip -j neigh show 10.88.0.50 dev berth0 | jq -r '.[0].lladdr // empty')\" = '$b_mac' ]"
done_testing
