#!/bin/sh
# busybox-rootfs.sh - assemble a minimal root filesystem from Debian's busybox-static.
#
#   mk/busybox-rootfs.sh ARCH DEST      (ARCH: x86_64 | aarch64)
#
# DEST gets bin/busybox, a link per applet in bin/ and sbin/, and the empty
# directories a container (or a board) mounts over: proc, sys, dev, tmp, run,
# etc, root, var. The busybox of the host's architecture comes from the
# installed busybox-static package; another architecture's is downloaded once
# with `apt-get download` and cached under build/dl/. Idempotent.
set -eu

arch=${1:?usage: $0 ARCH DEST}
dest=${2:?usage: $0 ARCH DEST}
top=$(cd "$(dirname "$0")/.." && pwd)

case $arch in
x86_64) debarch=amd64 ;;
aarch64) debarch=arm64 ;;
*) echo "busybox-rootfs.sh: unknown architecture '$arch'" >&2; exit 2 ;;
esac

if [ "$(dpkg --print-architecture)" = "$debarch" ] && [ -x /bin/busybox ]; then
	bb=/bin/busybox
else
	dl=$top/build/dl/busybox-$debarch
	bb=$dl/bin/busybox
	if [ ! -x "$bb" ]; then
		mkdir -p "$dl"
		# As root, apt downloads as the user _apt, who cannot write into
		# build/: download as root directly instead (no warning, no fallback).
		sandbox=
		[ "$(id -u)" = 0 ] && sandbox="-o APT::Sandbox::User=root"
		# shellcheck disable=SC2086
		(cd "$dl" && apt-get download -q $sandbox "busybox-static:$debarch" >/dev/null) || {
			echo "busybox-rootfs.sh: apt-get download busybox-static:$debarch failed" >&2
			exit 1
		}
		dpkg-deb -x "$dl"/busybox-static_*_"$debarch".deb "$dl"
	fi
fi

mkdir -p "$dest/bin" "$dest/sbin" "$dest/usr/bin" "$dest/usr/sbin"
for d in proc sys dev tmp run etc root var var/log www; do
	mkdir -p "$dest/$d"
done
chmod 1777 "$dest/tmp"
cp -f "$bb" "$dest/bin/busybox"
# The applet list comes from the host's busybox: the same Debian version on
# every architecture, and it runs here even when $bb does not.
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] && continue
	[ -e "$dest/bin/$a" ] || ln -s busybox "$dest/bin/$a"
done
[ -e "$dest/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dest/etc/passwd"
[ -e "$dest/etc/group" ] || printf 'root:x:0:\nnogroup:x:65534:\n' >"$dest/etc/group"
exit 0
