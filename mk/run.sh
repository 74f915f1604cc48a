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
cat >"$etc/containers.d/web.ini" <<INI
[container]
rootfs  = $demo/rootfs
command = httpd -f -p 80 -h /www
labels  = app=web
ports   = 8080:80/tcp
service = web
INI
cat >"$etc/containers.d/client.ini" <<INI
[container]
rootfs  = $demo/rootfs
command = sleep 3600
labels  = app=client
INI

if [ "$(id -u)" = 0 ]; then
	sandbox="unshare --net --mount --propagation private"
else
	# without root, a user namespace makes us root inside the sandbox
	sandbox="unshare --user --map-root-user --net --mount --propagation private"
fi
cat <<MSG
berth: starting the daemon in a sandbox (own network + mount namespaces) with
       the demo configuration in $etc. Stop it with Ctrl-C.
       Meanwhile, in another terminal, try:
         $bin -c $etc ps
         $bin -c $etc dns query web
         $bin -c $etc ip ls
MSG
exec $sandbox sh -c 'ip link set lo up 2>/dev/null; c="$1"; shift; exec "$0" daemon -c "$c" --foreground "$@"' \
	"$bin" "$etc" "$@"
