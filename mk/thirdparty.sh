#!/bin/sh
# thirdparty.sh - fetch third-party code from Debian, once, into build/deps/.
#
#   mk/thirdparty.sh sqlite SRCDIR        -> SRCDIR/sqlite/{sqlite3.c,sqlite3.h,VERSION}
#   mk/thirdparty.sh bearssl SRCDIR       -> SRCDIR/bearssl/{src,inc,VERSION}
#   mk/thirdparty.sh zlib SRCDIR          -> SRCDIR/zlib/{*.c,*.h,VERSION}
#   mk/thirdparty.sh inih ARCH OUTDIR     -> OUTDIR/{libinih.a,ini.h}
#
# Nothing here is committed: it comes from `apt-get source` / `apt-get download`
# and is cached by the Makefile's stamps. A missing tool or package is an error
# that names what to install.
set -eu

die() { echo "thirdparty: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install $2 (or run mk/deps.sh)"; }

# apt-get source PKG into DIR/PKG-*/ and print that directory.
fetch_source() {
	pkg=$1
	need apt-get apt; need dpkg-source dpkg-dev
	mkdir -p "$2"
	dl=$(cd "$2" && pwd)/dl-$pkg
	rm -rf "$dl"; mkdir -p "$dl"
	if ! (cd "$dl" && apt-get source -q --download-only "$pkg" >"$dl/apt.log" 2>&1); then
		# a mirror may list a security update's source without serving it:
		# fall back to the other versions the source lists name, newest first
		ok=
		for v in $(apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -ru); do
			rm -f "$dl"/"$pkg"_*
			if (cd "$dl" && apt-get source -q --download-only "$pkg=$v" >>"$dl/apt.log" 2>&1); then
				ok=1; break
			fi
		done
		[ -n "$ok" ] || die "apt-get source $pkg failed (are deb-src entries enabled? run mk/deps.sh): $(tail -1 "$dl/apt.log")"
	fi
	dsc=$(ls "$dl"/"$pkg"_*.dsc | head -1)
	dpkg-source --no-check -x "$dsc" "$dl/x" >/dev/null 2>&1 || die "dpkg-source -x $dsc failed"
	# the upstream version, from the .dsc file name (pkg_VERSION-rev.dsc)
	ver=${dsc##*/"$pkg"_}; ver=${ver%.dsc}; ver=${ver%-*}; ver=${ver%%+*}
	echo "$ver" >"$dl/x/.berth-version"
	echo "$dl/x"
}

cmd=${1:-}; shift || true
case $cmd in
sqlite)
	out=$1/sqlite
	need tclsh tcl; need cc gcc
	src=$(fetch_source sqlite3 "$1")
	# Debian ships the full tree; the amalgamation is generated with tcl.
	mkdir -p "$src/bld"
	(cd "$src/bld" && ../configure --disable-tcl >configure.log 2>&1 && make sqlite3.c >make.log 2>&1) ||
		die "building the SQLite amalgamation failed (see $src/bld/make.log)"
	mkdir -p "$out"
	cp "$src/bld/sqlite3.c" "$src/bld/sqlite3.h" "$out/"
	cp "$src/.berth-version" "$out/VERSION"
	rm -rf "${src%/x}"
	;;
bearssl)
	out=$1/bearssl
	src=$(fetch_source bearssl "$1")
	rm -rf "$out"; mkdir -p "$out"
	cp -r "$src/src" "$src/inc" "$out/"
	cp "$src/.berth-version" "$out/VERSION"
	rm -rf "${src%/x}"
	;;
zlib)
	out=$1/zlib
	src=$(fetch_source zlib "$1")
	# the library is the top directory's C files (contrib/, examples/ and
	# test/ are not); the Makefile picks the inflate side from them.
	[ -f "$src/inflate.c" ] && [ -f "$src/zlib.h" ] || die "the zlib source package has no inflate.c/zlib.h"
	rm -rf "$out"; mkdir -p "$out"
	cp "$src"/*.c "$src"/*.h "$out/"
	sed 's/\.dfsg.*//' "$src/.berth-version" >"$out/VERSION"
	rm -rf "${src%/x}"
	;;
inih)
	arch=$1 out=$2
	case $arch in
	x86_64) darch=amd64 triplet=x86_64-linux-gnu nm=nm ;;
	aarch64) darch=arm64 triplet=aarch64-linux-gnu nm=aarch64-linux-gnu-nm ;;
	*) die "unknown ARCH $arch" ;;
	esac
	need "$nm" "binutils for $arch"
	mkdir -p "$out/dl"; out=$(cd "$out" && pwd)
	(cd "$out/dl" && rm -f libinih-dev_*.deb && apt-get download -q "libinih-dev:$darch" >download.log 2>&1) ||
		die "apt-get download libinih-dev:$darch failed (run mk/deps.sh to enable arm64): $(tail -1 "$out/dl/download.log")"
	rm -rf "$out/dl/x"; dpkg-deb -x "$out"/dl/libinih-dev_*.deb "$out/dl/x"
	a=$out/dl/x/usr/lib/$triplet/libinih.a
	[ -f "$a" ] || die "libinih-dev:$darch has no $a"
	# DESIGN §2: use the distribution's archive only when everything it needs is
	# plain C that musl provides (no glibc __*_chk fortify calls).
	libc=/usr/lib/$arch-linux-musl/libc.a
	[ -f "$libc" ] || die "$libc not found: install musl-dev:$darch (mk/deps.sh)"
	defined=$($nm --defined-only "$libc" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u)
	for sym in $($nm -u "$a" | awk '$1=="U" {print $2}'); do
		case $sym in _GLOBAL_OFFSET_TABLE_) continue ;; esac
		echo "$defined" | grep -qx "$sym" ||
			die "libinih.a ($darch) needs '$sym', which musl does not provide; inih must be built from source"
	done
	cp "$a" "$out/libinih.a"
	cp "$out/dl/x/usr/include/ini.h" "$out/ini.h"
	rm -rf "$out/dl"
	;;
*)
	die "usage: thirdparty.sh sqlite|bearssl|zlib SRCDIR | inih ARCH OUTDIR"
	;;
esac
