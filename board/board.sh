#!/bin/sh
# board.sh - build a QEMU board (Debian kernel, busybox, rootfs/, static berth), boot it, count its steps.
#
#   board/board.sh BOARD [--tap] [--timeout SECONDS]
#
# BOARD is a directory of board/ (qemu-x86_64, qemu-aarch64) whose board.conf
# says only what differs per board. Everything else is here and in board/init/:
#   - the kernel: the package the distribution's meta-package (linux-image-cloud-
#     ARCH) depends on today, fetched with `apt-get download`, and the modules
#     berth needs with their dependencies from modules.dep (busybox depmod);
#   - nft and jq for the scenario's probes and JSON checks, with their libraries,
#     from the target architecture's Debian packages;
#   - busybox (mk/busybox-rootfs.sh), rootfs/etc/berth, rootfs/etc/init.d/berth,
#     build/ARCH/berth, a busybox root for the demo containers;
#   - an image of the board's architecture (tests/helpers/mkimage.py, python3),
#     /var/lib/berth-images/app.tar, for the scenario to import and run;
#   - an initramfs written by cpio -H newc (no loop mount, no root needed).
# QEMU boots it without any host network (user-mode NIC with restrict=on), with
# KVM when the board is the host's architecture and /dev/kvm really works. The
# board's scenario prints "BOARD PASS|FAIL|SKIP step: detail" lines on the serial
# console and powers off; this script prints them (as TAP with --tap) and closes
# with "N passed, N failed[, N skipped]". QEMU is stopped after the scenario or
# after --timeout seconds (default 300, or BOARD_TIMEOUT). Downloads are cached
# under build/dl/, everything else is built under build/board/BOARD/.
# BOARD_OVERLAY=DIR copies DIR over the board's root last (a developer's aid:
# extra tools, a different inittab or scenario).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
board='' tap=
limit=${BOARD_TIMEOUT:-300}
usage() { echo "usage: $0 BOARD [--tap] [--timeout SECONDS]" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--tap) tap=1 ;;
	--timeout) [ $# -ge 2 ] || usage; limit=$2; shift ;;
	-*) usage ;;
	*) [ -z "$board" ] || usage; board=$1 ;;
	esac
	shift
done
[ -n "$board" ] || usage
case $limit in ''|*[!0-9]*) echo "board.sh: --timeout takes seconds, not '$limit'" >&2; exit 2 ;; esac

die() { echo "board.sh: $*" >&2; exit 1; }
say() { [ -n "$tap" ] && echo "# $*" || echo "$*"; }

conf=$top/board/$board/board.conf
[ -f "$conf" ] || die "no board '$board' (boards: $(cd "$top/board" && ls -d qemu-* | tr '\n' ' '))"
# shellcheck disable=SC1090
. "$conf"

# The kernel pieces berth needs on every board (the board's own list adds its
# drivers): links and bridges, nf_tables with NAT, masquerade, conntrack, fib,
# reject and log for the firewall, and br_netfilter so that bridged traffic
# between two containers meets the inet table's hooks. (counters, lookups,
# payload and meta expressions are part of nf_tables itself, except that the
# bridge family resolves `meta` through nft_meta_bridge: without it every
# rule of table bridge berth, the anti-spoofing, is refused with ENOENT.)
# inet_diag with tcp_diag and udp_diag answer "which host port is in use" for
# a published port (net/nat.c); without them berth reads /proc/net instead.
# overlay is the root of a container from an image (its layers, read-only).
# nft_numgen picks a service's backend (net/svc.c): without it the batch
# that adds a service is refused with ENOENT (the rest of the table stays).
BERTH_MODULES="veth bridge br_netfilter nf_tables nf_conntrack nf_nat nft_chain_nat nft_nat
	nft_masq nft_redir nft_ct nft_fib_inet nft_fib_ipv4 nft_fib_ipv6 nft_limit nft_log
	nft_reject_inet nft_meta_bridge nft_numgen inet_diag tcp_diag udp_diag overlay"
# Debian packages of the target architecture that the scenario runs on the board.
BOARD_TOOLS="nftables jq"

dl=$top/build/dl
out=$top/build/board/$board
mkdir -p "$dl" "$out"

sandbox=
[ "$(id -u)" = 0 ] && sandbox="-o APT::Sandbox::User=root"  # _apt cannot write into build/

# fetch DIR PKG...: apt-get download into DIR unless its .debs are there already.
fetch() {
	fdir=$1; shift
	mkdir -p "$fdir"
	if [ "$(cat "$fdir/.pkgs" 2>/dev/null)" = "$*" ]; then
		return 0
	fi
	rm -f "$fdir"/*.deb "$fdir/.pkgs"
	# shellcheck disable=SC2086
	(cd "$fdir" && apt-get download -q $sandbox "$@") >"$fdir/.log" 2>&1 || {
		cat "$fdir/.log" >&2
		die "apt-get download $* failed (apt-get update? mk/deps.sh board enables arm64)"
	}
	echo "$*" >"$fdir/.pkgs"
}

command -v "$BOARD_QEMU" >/dev/null || die "$BOARD_QEMU not found: run mk/deps.sh board"
command -v cpio >/dev/null || die "cpio not found: run mk/deps.sh board"
command -v busybox >/dev/null || die "busybox not found (its depmod resolves modules): mk/deps.sh test"
command -v python3 >/dev/null || die "python3 not found (it writes the board's image): mk/deps.sh board"
berth=$top/build/$BOARD_ARCH/berth
[ -x "$berth" ] || die "$berth not built: make ARCH=$BOARD_ARCH"

t0=$(date +%s)

# ---- kernel and modules ------------------------------------------------------
if [ "$BOARD_DEBARCH" = "$(dpkg --print-architecture)" ]; then q=; else q=:$BOARD_DEBARCH; fi
kpkg=$(apt-cache depends "$BOARD_KERNEL$q" 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[^ :]*\).*/\1/p' | head -1)
[ -n "$kpkg" ] || die "apt-cache knows no $BOARD_KERNEL$q: run apt-get update (mk/deps.sh board)"
fetch "$dl/$kpkg" "$kpkg$q"
kx=$out/kernel/$kpkg
if [ ! -f "$kx/.stamp" ]; then
	rm -rf "$out/kernel"; mkdir -p "$kx"
	dpkg-deb -x "$dl/$kpkg"/*.deb "$kx"
	kver=$(ls "$kx/lib/modules")
	# Newer Debian kernels compress modules; busybox insmod wants them plain.
	find "$kx/lib/modules" -name '*.ko.xz' -exec xz -d {} +
	if find "$kx/lib/modules" -name '*.ko.zst' | grep -q .; then
		command -v zstd >/dev/null || die "the kernel's modules are .ko.zst: install zstd"
		find "$kx/lib/modules" -name '*.ko.zst' -exec zstd -d -q --rm {} +
	fi
	busybox depmod -b "$kx" "$kver"
	touch "$kx/.stamp"
fi
kver=$(ls "$kx/lib/modules")
vmlinuz=$kx/boot/vmlinuz-$kver
mdir=$kx/lib/modules/$kver

# The modules in load order (each after its dependencies), from modules.dep;
# built-in ones are left out, an unknown one is an error.
modlist=$out/modules
# shellcheck disable=SC2086
awk -v want="$BERTH_MODULES $BOARD_MODULES" -v builtin="$mdir/modules.builtin" '
function key(p,   n) { n = p; sub(/.*\//, "", n); sub(/\.ko$/, "", n); gsub(/-/, "_", n); return n }
function visit(p,   d, n, i) {
	if (p in seen) return
	seen[p] = 1
	n = split(deps[p], d, " ")
	for (i = 1; i <= n; i++) visit(d[i])
	print p
}
{ p = $1; sub(/:$/, "", p); $1 = ""; deps[p] = $0; path[key(p)] = p }
END {
	while ((getline l < builtin) > 0) inkernel[key(l)] = 1
	n = split(want, w, /[ \t\n]+/)
	for (i = 1; i <= n; i++) {
		if (w[i] == "") continue
		m = w[i]; gsub(/-/, "_", m)
		if (m in path) visit(path[m])
		else if (!(m in inkernel)) { print "unknown module " m > "/dev/stderr"; bad = 1 }
	}
	exit bad
}' "$mdir/modules.dep" >"$modlist" || die "module list: not in kernel $kver"

# ---- tools for the scenario (nft, jq) with their libraries -------------------
# shellcheck disable=SC2046
tpkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	--no-breaks --no-replaces --no-enhances $(for p in $BOARD_TOOLS; do echo "$p$q"; done) 2>/dev/null |
	grep -v '^[ <]' | sort -u | tr '\n' ' ')
tpkgs=${tpkgs% }
[ -n "$tpkgs" ] || die "apt-cache knows no $BOARD_TOOLS for $BOARD_DEBARCH: apt-get update"
# shellcheck disable=SC2086
fetch "$dl/tools-$BOARD_DEBARCH" $tpkgs
tx=$out/tools
if [ "$(cat "$tx/.pkgs" 2>/dev/null)" != "$tpkgs" ]; then
	rm -rf "$tx"; mkdir -p "$tx"
	for d in "$dl/tools-$BOARD_DEBARCH"/*.deb; do dpkg-deb -x "$d" "$tx"; done
	# what the board does not need: documentation, locales, gconv, helpers
	rm -rf "${tx:?}/usr/share" "$tx/usr/lib"/*/gconv "$tx/usr/lib"/*/audit "$tx/usr/libexec" \
		"$tx/sbin" "$tx/usr/bin"/[!j]* "${tx:?}/etc" "${tx:?}/var"
	echo "$tpkgs" >"$tx/.pkgs"
fi

# ---- the board's image ---------------------------------------------------------
# tests/helpers/mkimage.py's test image (its header says what the image holds
# and what its entrypoint prints) for the board's architecture, from a busybox
# root of that architecture, as an oci-archive with gzip layers (so the
# board's berth unpacks them with its own zlib). Rewritten when mkimage.py,
# the busybox root (its binary, its names) or the arguments change. The
# scenario imports it.
IMAGE_REF=board/app:1
ix=$out/image
mkdir -p "$ix"
"$top/mk/busybox-rootfs.sh" "$BOARD_ARCH" "$ix/rootfs"
ikey=$({ cat "$top/tests/helpers/mkimage.py" "$ix/rootfs/bin/busybox"; (cd "$ix/rootfs" && find . | LC_ALL=C sort); } |
	sha256sum | cut -d' ' -f1)
ikey="$ikey $BOARD_DEBARCH oci-archive $IMAGE_REF"
if [ "$(cat "$ix/.key" 2>/dev/null)" != "$ikey" ] || [ ! -f "$ix/app.tar" ]; then
	rm -f "$ix/.key"
	python3 "$top/tests/helpers/mkimage.py" --arch "$BOARD_DEBARCH" --rootfs "$ix/rootfs" \
		--format oci-archive --name "$IMAGE_REF" --out "$ix/app.tar" >"$ix/app.json" ||
		die "tests/helpers/mkimage.py could not write the board's image"
	echo "$ikey" >"$ix/.key"
fi

# ---- the root filesystem -----------------------------------------------------
stage=$out/root
rm -rf "$stage"
mkdir -p "$stage"
"$top/mk/busybox-rootfs.sh" "$BOARD_ARCH" "$stage"
# The tools keep their glibc to themselves under /opt/tools: in /lib, the static
# (glibc) busybox would dlopen its NSS modules and crash on the foreign build.
mkdir -p "$stage/opt/tools"
cp -a "$tx/." "$stage/opt/tools/"
rm -f "$stage/opt/tools/.pkgs"
triplet=$BOARD_ARCH-linux-gnu
ld=$(cd "$tx" && ls lib/"$triplet"/ld-linux-*.so.[0-9] 2>/dev/null | head -1)
[ -n "$ld" ] || die "no dynamic loader in $tx/lib/$triplet"
for t in usr/sbin/nft usr/bin/jq; do
	[ -x "$tx/$t" ] || die "$BOARD_TOOLS packages gave no $t"
	printf '#!/bin/sh
exec /opt/tools/%s --library-path /opt/tools/lib/%s:/opt/tools/usr/lib/%s /opt/tools/%s "$@"
' \
		"$ld" "$triplet" "$triplet" "$t" >"$stage/usr/bin/${t##*/}"
	chmod 755 "$stage/usr/bin/${t##*/}"
done
# kernel modules, at their modules.dep paths, and the order to load them in
while read -r m; do
	mkdir -p "$stage/lib/modules/$kver/${m%/*}"
	cp "$mdir/$m" "$stage/lib/modules/$kver/$m"
done <"$modlist"
mkdir -p "$stage/etc/board" "$stage/etc/init.d" "$stage/usr/sbin" "$stage/newroot" "$stage/var/lib/berth"
sed "s|^|/lib/modules/$kver/|" "$modlist" >"$stage/etc/board/modules"
# the device's files: berth, its configuration and its init script
cp "$berth" "$stage/usr/sbin/berth"
cp -a "$top/rootfs/etc/berth" "$stage/etc/berth"
cp "$top/rootfs/etc/init.d/berth" "$stage/etc/init.d/berth"
chmod 755 "$stage/etc/init.d/berth"
# the board's own init: /init moves the root onto a tmpfs, then busybox init
for f in "$top"/board/init/*; do
	cp "$f" "$stage/etc/board/${f##*/}"
	chmod 755 "$stage/etc/board/${f##*/}"
done
mv "$stage/etc/board/init" "$stage/init"
# inittab: berth is started, and respawned when it dies, by exactly the line
# rootfs/etc/init.d/berth documents
respawn=$(sed -n 's/^#[[:space:]]*\(::respawn:.*\)/\1/p' "$top/rootfs/etc/init.d/berth" | head -1)
[ -n "$respawn" ] || die "rootfs/etc/init.d/berth documents no ::respawn: inittab line"
cat >"$stage/etc/inittab" <<EOF
# inittab - written by board/board.sh
::sysinit:/etc/board/rcS
$respawn
::once:/etc/board/scenario
EOF
echo "nameserver 10.0.2.3" >"$stage/etc/resolv.conf"
echo board >"$stage/etc/hostname"
# the demo containers' root (containers.d: rootfs = /var/lib/berth/rootfs/busybox)
croot=$stage/var/lib/berth/rootfs/busybox
"$top/mk/busybox-rootfs.sh" "$BOARD_ARCH" "$croot"
echo "berth board $board: hello from web" >"$croot/www/index.html"
# the image, outside state_dir (a file brought to the device, imported there),
# and what the scenario expects of it: its name, manifest digest and platform
mkdir -p "$stage/var/lib/berth-images"
cp "$ix/app.tar" "$stage/var/lib/berth-images/app.tar"
{
	echo "IMAGE_FILE=/var/lib/berth-images/app.tar"
	echo "IMAGE_REF=$IMAGE_REF"
	python3 -c 'import json, sys; m = json.load(sys.stdin)["manifests"][0]
print("IMAGE_DIGEST=" + m["digest"]); print("IMAGE_ARCH=" + m["arch"])' <"$ix/app.json"
	echo "BOARD_ARCH=$BOARD_ARCH"
} >"$stage/etc/board/image" || die "the board's image summary ($ix/app.json)"
[ -z "${BOARD_OVERLAY:-}" ] || cp -a "$BOARD_OVERLAY/." "$stage/"

# ---- initramfs: cpio newc, plus /dev/console written by hand -----------------
# The kernel opens /dev/console for init before anything mounts devtmpfs; a
# device node needs root to create, so its cpio entry is written directly.
cpio_node() {  # NAME MODE(octal, with type) MAJOR MINOR
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
		1 $((0$2)) 0 0 1 0 0 0 0 "$3" "$4" $((${#1} + 1)) 0 "$1"
	# header (110 bytes) + name + NUL, padded to a multiple of 4
	pad=$(( (4 - (110 + ${#1} + 1) % 4) % 4 ))
	[ "$pad" = 0 ] || head -c "$pad" /dev/zero
}
initrd=$out/initramfs.cpio.gz
{
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
	{ cpio_node dev/console 020600 5 1; cpio_node TRAILER!!! 0 0 0; } | cat
} | gzip -1 >"$initrd"
t1=$(date +%s)

# ---- boot --------------------------------------------------------------------
accel="-accel tcg -cpu $BOARD_CPU" how=TCG
if [ "${BOARD_ACCEL:-}" != tcg ] && [ "$BOARD_ARCH" = "$(uname -m)" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	# /dev/kvm can exist and still refuse (nested virtualisation off, no
	# permission): let QEMU try it, paused, for a second.
	# /dev/kvm can exist and still not run a guest (nested virtualisation
	# that starts QEMU but never runs the kernel): boot the board's kernel
	# without a root, which under working KVM panics within a second or two.
	timeout 10 "$BOARD_QEMU" -accel kvm -M "$BOARD_MACHINE" -cpu host -m 256 -nodefaults \
		-no-reboot -display none -monitor none -serial "file:$out/kvm-probe.log" \
		-kernel "$vmlinuz" -append "console=$BOARD_CONSOLE panic=-1" -nic none \
		>/dev/null 2>&1 </dev/null || true
	if grep -q 'Kernel panic' "$out/kvm-probe.log" 2>/dev/null; then
		accel="-accel kvm -cpu host" how=KVM
	else
		how="TCG (/dev/kvm did not boot the kernel within 10 s)"
	fi
fi
t2=$(date +%s)
log=$out/console.log
res=$out/results
: >"$log"; : >"$res"
say "board $board: kernel $kver ($kpkg), $how, initramfs $(($(stat -c %s "$initrd") / 1024)) KiB, built in $((t1 - t0)) s"
# shellcheck disable=SC2086
timeout -k 5 "$limit" "$BOARD_QEMU" -M "$BOARD_MACHINE" $accel -smp 2 -m 512 \
	-nodefaults -no-reboot -display none -monitor none -serial "file:$log" \
	-kernel "$vmlinuz" -initrd "$initrd" \
	-append "console=$BOARD_CONSOLE panic=-1 quiet loglevel=3" \
	-nic "user,restrict=on,model=$BOARD_NIC" </dev/null >"$out/qemu.out" 2>&1 &
qpid=$!

# Follow the console: print each step as it comes, stop QEMU after DONE.
n=0
tail -n +1 -s 0.2 -f --pid=$qpid "$log" 2>/dev/null | tr -d '\r' | while IFS= read -r line; do
	case $line in
	"BOARD PASS "*|"BOARD FAIL "*|"BOARD SKIP "*)
		n=$((n + 1))
		verdict=${line#BOARD }
		verdict=${verdict%% *}
		step=${line#"BOARD $verdict "}
		echo "$verdict $step" >>"$res"
		if [ -z "$tap" ]; then
			echo "  $verdict $step"
		elif [ "$verdict" = PASS ]; then
			echo "ok $n - $board: $step"
		elif [ "$verdict" = FAIL ]; then
			echo "not ok $n - $board: $step"
		else
			echo "ok $n - $board: ${step%%:*} # SKIP $step"
		fi ;;
	"BOARD DONE"*)
		echo DONE >>"$res"
		# the board powers off by itself; if it does not within 5 s, stop it
		i=0
		while kill -0 "$qpid" 2>/dev/null && [ $i -lt 25 ]; do sleep 0.2; i=$((i + 1)); done
		kill "$qpid" 2>/dev/null || true
		break ;;
	esac
done
wait "$qpid" && rc=0 || rc=$?
t3=$(date +%s)

passed=$(grep -c '^PASS ' "$res" || true)
failed=$(grep -c '^FAIL ' "$res" || true)
skipped=$(grep -c '^SKIP ' "$res" || true)
if ! grep -q '^DONE' "$res"; then
	failed=$((failed + 1))
	if [ "$rc" = 124 ]; then why="timed out after ${limit} s"; else why="QEMU exited with status $rc"; fi
	n=$((passed + failed + skipped))
	if [ -n "$tap" ]; then
		echo "not ok $n - $board: the scenario did not finish ($why)"
	else
		echo "  FAIL the scenario did not finish ($why)"
	fi
	cat "$out/qemu.out" >&2
fi
if [ "$failed" != 0 ]; then
	say "last console lines (whole log: ${log#"$top"/}):"
	tail -n 40 "$log" | tr -d '\r' | sed 's/^/#   /'
fi
say "board $board: $how, boot and scenario $((t3 - t2)) s (choosing the accelerator $((t2 - t1)) s), total $((t3 - t0)) s"
if [ "$skipped" != 0 ]; then
	say "skipped:"
	grep '^SKIP ' "$res" | sed 's/^SKIP /  /' | while IFS= read -r l; do say "$l"; done
	summary="$passed passed, $failed failed, $skipped skipped"
else
	summary="$passed passed, $failed failed"
fi
if [ -n "$tap" ]; then echo "# $summary"; else echo "$summary"; fi
[ "$failed" = 0 ]
