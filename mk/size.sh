#!/bin/sh
# size.sh - the size of each berth binary, and what each dependency adds to it,
# read from the linker map (bytes of allocated sections kept after --gc-sections).
#   mk/size.sh build/x86_64 [build/aarch64 ...]
set -eu
for dir in "$@"; do
	bin=$dir/berth map=$dir/berth.map
	[ -f "$bin" ] && [ -f "$map" ] || { echo "size.sh: $bin or its map is missing (run make)" >&2; exit 1; }
	printf '%s: %s bytes (stripped, static)\n' "$bin" "$(stat -c %s "$bin")"
	# Map lines after "Linker script and memory map": an input section is
	# " .sect 0xADDR 0xSIZE file" (or the name alone, then "0xADDR 0xSIZE file").
	awk '
	function hex(s,   i, c, v) {
		v = 0; s = tolower(substr(s, 3))
		for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)); v = v * 16 + c - 1 }
		return v
	}
	/^Linker script and memory map/ { on = 1; next }
	!on { next }
	/^\/DISCARD\// { exit }
	{
		if ($0 ~ /^ [.][^ ]+$/) { pend = $1; next }
		if ($0 ~ /^ [.][^ ]+ +0x/) { sect = $1; addr = $2; sz = $3; file = $4 }
		else if (pend != "" && $0 ~ /^ +0x[0-9a-f]+ +0x[0-9a-f]+ /) { sect = pend; addr = $1; sz = $2; file = $3 }
		else { pend = ""; next }
		pend = ""
		if (sect ~ /^[.](debug|comment|note[.]GNU-stack)/ || file == "") next
		if (hex(addr) == 0) next
		if (file ~ /libsqlite3[.]a/) k = "sqlite"
		else if (file ~ /libbearssl[.]a/) k = "bearssl"
		else if (file ~ /libinih[.]a/) k = "inih"
		else if (file ~ /musl|libc[.]a|crt[1in][.]o|libgcc/) k = "libc (musl) + libgcc"
		else if (file ~ /obj\//) { k = file; sub(/.*obj\//, "", k); sub(/\/.*/, "", k); k = "berth " k "/" }
		else k = "other"
		sum[k] += hex(sz)
	}
	END { for (k in sum) printf "%9d bytes  %s\n", sum[k], k }' "$map" | sort -rn | sed 's/^/  /'
done
