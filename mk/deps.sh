#!/bin/sh
# deps.sh - install, with apt-get, what berth's build, tests and benchmarks need.
#
#   mk/deps.sh [build|test|bench|board|all]     (default: all)
#
# Idempotent: installs only what is missing and says what it installs. It may
# also enable the arm64 architecture (for the aarch64 musl, busybox and inih)
# and Debian's source archive (for `apt-get source sqlite3 bearssl`).
set -eu

what=${1:-all}

build_pkgs="make gcc libc6-dev binutils musl-tools musl-dev:arm64 gcc-aarch64-linux-gnu
	binutils-aarch64-linux-gnu linux-libc-dev linux-libc-dev-arm64-cross tcl dpkg-dev
	xz-utils file git ca-certificates"
test_pkgs="sqlite3 libsqlite3-dev libbearssl-dev libinih-dev zlib1g-dev qemu-user-static iproute2 openssl
	nftables bind9-dnsutils netcat-openbsd curl util-linux procps jq python3
	busybox-static strace clang dnsmasq-base podman containernetworking-plugins
	skopeo docker-registry apache2-utils umoci man-db groff-base"
# man-db and groff-base: tests/integration/cli_help.sh renders berth(8) and
# berth.ini(5) with man -l and groff -ww, as a user's man would.
# podman: the real CNI client of tests/integration/cni_podman.sh (4.3 in
# bookworm, with a CNI backend). It pulls conmon, crun (first of crun | runc)
# and golang-github-containers-common, whose container-network-stack is
# pinned to containernetworking-plugins here (else apt may pick netavark).
# Its Recommends (catatonit, slirp4netns, fuse-overlayfs, uidmap, buildah)
# serve --init, pods and rootless use: the test needs none of them.
# skopeo, docker-registry, apache2-utils (htpasswd -B) and umoci: the real
# image tools of issue 21's tests (tests/helpers/registry.sh, mkimage.py,
# tests/integration/image_fixtures.sh). docker-registry's postinst starts its
# service (listening on :5000 of the host) through invoke-rc.d: the install
# below denies that with a temporary policy-rc.d, and no test needs it (each
# starts its own registry on 127.0.0.1 inside its own network namespace).
bench_pkgs="containernetworking-plugins dnsperf dnsmasq-base iptables netavark aardvark-dns crun
	conmon"
# busybox-static:arm64 cannot be installed next to the amd64 one that the tests
# need (they conflict): mk/busybox-rootfs.sh fetches it with apt-get download.
# python3 runs tests/helpers/mkimage.py, which writes the board's image.
board_pkgs="qemu-system-x86 qemu-system-arm cpio busybox-static python3"
# make test runs both boards (the other architecture's under TCG)
host_board_pkgs="qemu-system-x86 qemu-system-arm cpio"

case $what in
build) want=$build_pkgs ;;
test)  want="$build_pkgs $test_pkgs $host_board_pkgs" ;;
bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
board) want="$build_pkgs $board_pkgs" ;;
all)   want="$build_pkgs $test_pkgs $bench_pkgs $board_pkgs" ;;
*) echo "usage: $0 [build|test|bench|board|all]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
	sudo=sudo
	command -v sudo >/dev/null || { echo "deps.sh: run as root (or install sudo)" >&2; exit 1; }
else
	sudo=
fi

need_update=
case " $want " in
*:arm64*)
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		echo "deps.sh: enabling the arm64 architecture (dpkg --add-architecture arm64)"
		$sudo dpkg --add-architecture arm64
		need_update=1
	fi ;;
esac

# `apt-get source` needs deb-src entries; derive them from the binary ones.
src_list=/etc/apt/sources.list.d/berth-src.sources
if [ ! -e "$src_list" ] && ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		echo "deps.sh: enabling Debian source packages ($src_list)"
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $sudo tee "$src_list" >/dev/null
	elif [ -f /etc/apt/sources.list ]; then
		echo "deps.sh: enabling Debian source packages (/etc/apt/sources.list.d/berth-src.list)"
		sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $sudo tee /etc/apt/sources.list.d/berth-src.list >/dev/null
	fi
	need_update=1
fi

missing=
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$st" = "install ok installed" ] || missing="$missing $p"
done

stamp=/var/lib/apt/periodic/berth-update-stamp
if [ -n "$missing" ] || [ -n "$need_update" ]; then
	if [ -n "$need_update" ] || [ ! -e "$stamp" ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ]; then
		echo "deps.sh: apt-get update"
		$sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null || { echo "deps.sh: apt-get update failed" >&2; exit 1; }
		$sudo mkdir -p "${stamp%/*}" && $sudo touch "$stamp"
	fi
fi
if [ -n "$missing" ]; then
	echo "deps.sh: installing:$missing"
	# No service of a package starts as a side effect of this install
	# (docker-registry's would listen on the host): policy-rc.d answers 101
	# ("action forbidden") to invoke-rc.d and deb-systemd-invoke. One the
	# machine already has is left alone.
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# mk/deps.sh: no service starts while it installs\nexit 101\n' | $sudo tee $policy >/dev/null
		$sudo chmod 755 $policy
		trap '$sudo rm -f $policy' EXIT
	fi
	# shellcheck disable=SC2086
	if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/tmp/berth-deps.log 2>&1; then
		tail -20 /tmp/berth-deps.log >&2
		echo "deps.sh: apt-get install failed for:$missing (log: /tmp/berth-deps.log)" >&2
		exit 1
	fi
else
	echo "deps.sh: all $what dependencies present"
fi
