#!/bin/sh
# run.sh - start berth in a sandbox: its own network and mount namespaces, so
# nothing it creates (bridges, veths, netns, nf_tables) touches this machine,
# with a demo configuration whose state lives under build/run/.
#   mk/run.sh path/to/berth [daemon options]
set -eu
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/build/run
etc=$demo/etc

mkdir -p "$etc/containers.d" "$etc/policies.d"
cat >"$etc/berth.ini" <<INI
; written by mk/run.sh: the embedded default network, state under build/run
[daemon]
state_dir = $demo/state
run_dir   = $demo/run

[network default]
bridge  = berth0
subnet  = 10.88.0.0/16
subnet6 = fd88::/64

[dns]
domain   = berth.internal
upstream = 127.0.0.1
INI
# The demo containers are the examples of rootfs/etc/berth/containers.d,
# running from a busybox root assembled here (mk/busybox-rootfs.sh).
"$top/mk/busybox-rootfs.sh" "$(uname -m)" "$demo/rootfs"
echo "hello from the web container" >"$demo/rootfs/www/index.html"
# For the demo, both say what they do: httpd logs each request (-v) and the
# client prints the page it fetched, so `berth logs` has something to show.
for f in web client; do
	sed -e "s|^rootfs *=.*|rootfs   = $demo/rootfs|" -e "s|httpd -f -p 80|httpd -f -v -p 80|" \
		-e "s|wget -q -O /dev/null|wget -q -O -|" "$top/rootfs/etc/berth/containers.d/$f.ini" \
		>"$etc/containers.d/$f.ini"
	# httpd and sh as pid 1 ignore SIGTERM: Ctrl-C ends the demo in 2 s, not 10
	echo "stop_timeout = 2" >>"$etc/containers.d/$f.ini"
done

if [ "$(id -u)" = 0 ]; then
	sandbox="unshare --net --mount --propagation private"
else
	# without root, a user namespace makes us root inside the sandbox
	sandbox="unshare --user --map-root-user --net --mount --propagation private"
fi
cat <<MSG
berth: starting the daemon in a sandbox (own network + mount namespaces) with
       the demo configuration in $etc: two busybox containers, web (httpd)
       and client (polls web by its DNS name). Stop it with Ctrl-C.
       Meanwhile, in another terminal, try:
         $bin -c $etc ps
         $bin -c $etc exec client -- wget -qO- http://web/
         $bin -c $etc logs web
MSG
exec $sandbox sh -c 'ip link set lo up 2>/dev/null; c="$1"; shift; exec "$0" daemon -c "$c" --foreground "$@"' \
	"$bin" "$etc" "$@"
