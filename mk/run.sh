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

# One policy, so that `berth policy why` has something to tell: web accepts
# port 80 from the client (and its published ports from the world), nothing
# else (rootfs/etc/berth/policies.d/web.ini).
cp "$top/rootfs/etc/berth/policies.d/web.ini" "$etc/policies.d/web.ini"

if [ "$(id -u)" = 0 ]; then
	sandbox="unshare --net --mount --propagation private"
else
	# without root, a user namespace makes us root inside the sandbox
	sandbox="unshare --user --map-root-user --net --mount --propagation private"
fi
b="$bin -c $etc"
cat <<MSG
berth: starting the daemon in a sandbox (own network + mount namespaces) with
       the demo configuration in $etc:
       two busybox containers, web (httpd) and client (fetches http://web/ by
       its DNS name every 10 s), and one policy, web (policies.d/web.ini): web
       accepts port 80 from the client and nothing else. Stop it with Ctrl-C.
MSG
# Once the daemon answers: the policy at work, then what to try next.
tutor() {
	i=0
	while ! $b status >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 100 ] || return 0; sleep 0.1
	done
	sleep 1     # the containers' start
	{
		echo
		echo "berth: up. The policy allows, and denies:"
		echo "  \$ berth policy why client web 80/tcp"
		$b policy why client web 80/tcp 2>&1 | sed 's/^/    /'
		echo "  \$ berth policy why client web 22/tcp"
		$b policy why client web 22/tcp 2>&1 | sed 's/^/    /'
		cat <<NEXT

Try next, in another terminal:
  alias berth='$b'
  berth ps                       the containers, their state and addresses
  berth exec client -- wget -qO- http://web/
                                 the client reaches web by its DNS name
  berth logs -f web              httpd logs each request (Ctrl-C ends it)
  berth events -f                what happens, as it happens
  berth policy why host web 80/tcp
                                 denied: no rule of policy web lets the host in
  Then edit $etc/policies.d/web.ini, add
      [ingress from-host]
      from  = host
      ports = 80/tcp
  and run: berth reload (all or nothing: a typo is named by file:line and the
  running configuration stays), then ask policy why again.
  More: berth help, berth help COMMAND, man -l build/man/berth.8
NEXT
	} >&2
}
tutor &
exec $sandbox sh -c 'ip link set lo up 2>/dev/null; c="$1"; shift; exec "$0" daemon -c "$c" --foreground "$@"' \
	"$bin" "$etc" "$@"
