#!/bin/sh
# run.sh - start berth in a sandbox: its own network and mount namespaces, so
# nothing it creates (bridges, veths, nf_tables, mounts) touches this machine.
#   mk/run.sh path/to/berth [daemon options]
set -eu
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift
if [ "$(id -u)" = 0 ]; then
	sandbox="unshare --net --mount --propagation private"
else
	# without root, a user namespace makes us root inside the sandbox
	sandbox="unshare --user --map-root-user --net --mount --propagation private"
fi
cat <<MSG
berth: starting the daemon in a sandbox (own network + mount namespaces).
       Stop it with Ctrl-C. Meanwhile, in another terminal, try:
         $bin version
         $bin help
         $bin version -o json
MSG
exec $sandbox sh -c 'ip link set lo up 2>/dev/null; exec "$0" daemon --foreground "$@"' "$bin" "$@"
