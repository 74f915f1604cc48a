# cni_podman.sh - berth as the CNI plugin of a real client, Debian's podman
# with its CNI backend: two podman containers on the berth network resolve each
# other by name through berth's DNS (resolv.conf names berth's server), `-p`
# publishes a port the world reaches, a berth policy selecting the label
# pod=NAME (K8S_POD_NAME, which podman sets to the container's name) cuts one
# of them off while the other still works, `podman rm -f` frees the address
# and the name, and 20 containers made and removed leave no veth, address, nft
# element or name behind.
#
# podman runs with everything of its own under $T: storage (vfs), run root,
# libpod's tmp dir, events, containers.conf (CONTAINERS_CONF), storage.conf
# (CONTAINERS_STORAGE_CONF), the conflist dir and the plugin dir (one `berth`
# link to the berth under test). What podman 4.3 keeps at fixed paths is made
# private to this test's mount namespace: /etc/containers (a bind mount of a
# dir holding only policy.json, so the machine's config is never read),
# /dev/shm (libpod's lock file), and /run and /var/lib, which tests/run.sh
# mounts as tmpfs (/run/netns, /run/crun, /var/lib/cni,
# /var/lib/containers/cache). /sys/fs/cgroup is an empty tmpfs here too: the
# containers run without cgroups (crun refuses a hybrid v1/v2 hierarchy, and
# this test has no business in the machine's cgroups).
. "$BERTH_TOP/tests/lib.sh"
command -v podman >/dev/null 2>&1 || skip_all "podman is not installed (mk/deps.sh test)"
. "$BERTH_TOP/tests/daemon.sh"

T=$TMPDIR/podman
R=$TMPDIR/rootfs
IMG=localhost/berth-busybox:test
mkdir -p "$T/etc-containers" "$T/cni" "$T/cni-bin" "$C/containers.d" "$C/policies.d"

# bail WHAT: a set-up step failed; nothing after it could mean anything
bail() { not_ok "$1"; done_testing; }

mount -t tmpfs -o mode=1777 berth-test-shm /dev/shm || bail "a private /dev/shm for libpod's lock"
mount -t tmpfs -o mode=0755 berth-test-nocg /sys/fs/cgroup || bail "an empty /sys/fs/cgroup"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/etc-containers/policy.json"
mount --bind "$T/etc-containers" /etc/containers || bail "a private /etc/containers"

cat >"$C/berth.ini" <<INI
[daemon]
state_dir = $S
run_dir   = $TMPDIR/run
log_level = debug

[network default]
bridge     = berth0
subnet     = 10.88.0.0/24
masquerade = yes

[dns]
domain   = berth.internal
upstream = 127.0.0.1
host     = no
INI

ln -s "$BERTH" "$T/cni-bin/berth"
cat >"$T/cni/berthnet.conflist" <<JSON
{"cniVersion":"1.0.0","name":"berthnet","plugins":[{"type":"berth","network":"default","socket":"$TMPDIR/run/berth.sock","capabilities":{"portMappings":true,"aliases":true,"ips":true,"mac":true}}]}
JSON
# The process limits podman asks for by default (nofile and nproc at 1048576)
# are above this machine's hard limits, and root here lacks
# CAP_SYS_RESOURCE: crun's setrlimit fails. Lower ones always work.
cat >"$T/containers.conf" <<CONF
[containers]
cgroups = "disabled"
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/libpod"
volume_path = "$T/volumes"

[network]
network_backend = "cni"
network_config_dir = "$T/cni"
cni_plugin_dirs = ["$T/cni-bin"]
CONF
cat >"$T/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$T/runroot"
graphroot = "$T/root"
CONF
export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf"
P() {
	TMPDIR=$T podman --root "$T/root" --runroot "$T/runroot" --storage-driver vfs \
		--network-backend cni --network-config-dir "$T/cni" --tmpdir "$T/libpod" "$@"
}

world_ns

pod_cleanup() {
	P rm -fa -t 0 >/dev/null 2>&1
	cleanup
	ip netns del world 2>/dev/null
	return 0
}
trap pod_cleanup EXIT

start_daemon || { tail "$log"; bail "the berth daemon starts"; }

sh "$BERTH_TOP/mk/busybox-rootfs.sh" x86_64 "$R" >/dev/null 2>&1 || bail "mk/busybox-rootfs.sh assembles a busybox rootfs"
import_image() { tar -C "$R" -c . | P import - $IMG; }
check "podman imports the busybox rootfs as an image (offline)" import_image
check_out "podman runs its CNI backend with storage under the test's directory" "cni $T/root vfs" \
	P info --format '{{.Host.NetworkBackend}} {{.Store.GraphRoot}} {{.Store.GraphDriverName}}'
nets() { P network ls --format '{{.Name}} {{.Driver}}' | grep berthnet; }
check_out "podman lists the berth network from the conflist" "berthnet berth" nets

# run NAME [PODMAN-RUN-OPTION...]: a container on the berth network whose
# page (busybox httpd, port 80) is its name
run() {
	name=$1; shift
	P run -d --name "$name" --network berthnet "$@" $IMG \
		sh -c "echo $name >/www/index.html && exec httpd -f -p 80 -h /www"
}
addr() { P inspect "$1" --format '{{(index .NetworkSettings.Networks "berthnet").IPAddress}}'; }
# get FROM URL: the page, or "blocked" when nothing answers in 3 s
get() { P exec "$1" sh -c "timeout 3 wget -qO- $2 2>/dev/null || echo blocked"; }
resolve() { P exec "$1" nslookup "$2" 2>/dev/null | awk '/^Address: /{print $2}'; }
ipam_has() { B -o json ip ls | jq -r --arg a "$1" '[.[] | select(.address == $a)] | length'; }

# --- a. two containers find each other by name through berth
# podman 4.3 passes the name only as K8S_POD_NAME in CNI_ARGS; its aliases
# capability ({"berthnet": [--network-alias..., the short id]}) never holds it
check "podman run -p 8080:80 --network-alias www web on the berth network" run web -p 8080:80 --network-alias www
check "podman run cli on the berth network" run cli
web4=$(addr web) cli4=$(addr cli)
case "$web4 $cli4" in
10.88.0.*" "10.88.0.*) ok "both have addresses in the berth network's subnet ($web4, $cli4)" ;;
*) not_ok "both have addresses in the berth network's subnet" "web: $web4" "cli: $cli4" ;;
esac
check_out "berth's IPAM holds web's address" 1 ipam_has "$web4"
check_out "berth's IPAM holds cli's address" 1 ipam_has "$cli4"
first_ns() { P exec "$1" cat /etc/resolv.conf | awk '/^nameserver/ { print $2; exit }'; }
search() { P exec "$1" cat /etc/resolv.conf | grep '^search' | tr ' ' '\n' | grep -x berth.internal; }
check_out "cli's resolv.conf names berth's server (the gateway) first" "10.88.0.1" first_ns cli
check_out "and searches berth's domain" "berth.internal" search cli
check_out "cli resolves web by name (nslookup through berth)" "$web4" resolve cli web
check_out "web resolves cli by name" "$cli4" resolve web cli
check_out "and by NAME.DOMAIN" "$web4" resolve cli web.berth.internal
check_out "and by its --network-alias (the aliases capability)" "$web4" resolve cli www
check "cli pings web by name" P exec cli ping -c 1 -W 2 web
check_out "cli fetches web's page by name" "web" get cli http://web/
check_out "berth dns answers for the podman container's name" "$web4" \
	sh -c "'$BERTH' -c '$C' -o json dns query web | jq -r '.[] | select(.type == \"A\") | .address'"

# --- b. -p publishes a port the world reaches
check_out "the world reaches web through the published port" "web" \
	world curl -s --max-time 3 http://192.0.2.1:8080/
check_out "berth ports lists it: 8080/tcp to port 80" "8080 80 tcp" \
	sh -c "'$BERTH' -c '$C' -o json ports | jq -r '.[] | select(.host_port == 8080) | \"\(.host_port) \(.container_port) \(.proto)\"'"

# --- c. a policy by label (pod=NAME from K8S_POD_NAME) cuts cli off
cat >"$C/policies.d/cut-cli.ini" <<INI
[policy]
select = pod=cli
types  = ingress, egress
INI
check "berth reload applies a policy selecting pod=cli" B reload
check_out "the policy selects one container" 1 \
	sh -c "'$BERTH' -c '$C' -o json policy ls | jq -r '.[] | select(.name == \"cut-cli\") | .selected'"
check_out "cli can no longer reach web" "blocked" get cli "http://$web4/"
check_out "web can no longer reach cli" "blocked" get web "http://$cli4/"
check_out "web still serves the world" "web" world curl -s --max-time 3 http://192.0.2.1:8080/
check_out "cli still asks berth's DNS (the gateway's port 53 is always open)" "$web4" resolve cli web
rm "$C/policies.d/cut-cli.ini"
check "berth reload without the policy" B reload
check_out "cli reaches web again" "web" get cli "http://$web4/"
check_out "web reaches cli again" "cli" get web "http://$cli4/"

# --- d. podman rm -f frees the address and the name
check "podman rm -f cli" P rm -f -t 0 cli
check_out "berth's IPAM no longer holds cli's address" 0 ipam_has "$cli4"
check_out "berth no longer answers for cli" "cli: no such name (NXDOMAIN)" sh -c "'$BERTH' -c '$C' -o json dns query cli 2>/dev/null | jq -r '.error'"
check "a new container asks for that address (podman --ip)" run again --ip "$cli4"
check_out "and gets it" "$cli4" addr again
check_out "web finds it by its name at that address" "$cli4" resolve web again
check_out "and reaches it there at once" "again" get web "http://$cli4/"
check "podman rm -f again" P rm -f -t 0 again

# --- e. 20 containers made and removed leave nothing behind
veths() { ip -o link show | grep -c ': bh'; }
addrs() { B -o json ip ls | jq length; }
elems() { nft -j list table inet berth | jq '[.nftables[] | (.set // .map) | select(. != null) | .elem[]?] | length'; }
names() { B -o json dns ls | jq length; }
v0=$(veths) a0=$(addrs) e0=$(elems) n0=$(names)
started=0
for i in $(seq 20); do
	P run -d --name "n$i" --network berthnet $IMG sleep 1000 >/dev/null 2>&1 && started=$((started + 1))
done
check_out "20 podman containers start on the berth network" 20 echo $started
check_out "20 more host veth ends (bh*)" $((v0 + 20)) veths
check_out "20 more addresses in berth's IPAM" $((a0 + 20)) addrs
n1=$(names)   # aliases (podman's short ids) may add more than one each
if [ "$n1" -ge $((n0 + 20)) ]; then ok "at least 20 more names in berth's DNS ($n0 -> $n1)"; else not_ok "at least 20 more names in berth's DNS" "before: $n0" "with 20: $n1"; fi
e1=$(elems)
if [ "$e1" -gt "$e0" ]; then ok "more nft set elements ($e0 -> $e1)"; else not_ok "more nft set elements" "before: $e0" "with 20: $e1"; fi
check "podman rm -f of the 20" P rm -f -t 0 $(seq -f 'n%g' 20)
check_out "no veth left behind" "$v0" veths
check_out "no address left behind" "$a0" addrs
check_out "no nft set element left behind" "$e0" elems
check_out "no name left behind" "$n0" names
check_out "podman keeps only web" "web" P ps -a --format '{{.Names}}'

P rm -fa -t 0 >/dev/null 2>&1
done_testing
