# config.sh - time `berth config check` (load + validate everything) on
# generated configs of 10, 100 and 1000 containers, one policy per 10.
bin=${BERTH_PROD:-$BERTH_TOP/build/$(uname -m)/berth}
[ -x "$bin" ] || { echo "   no product binary ($bin): run make"; exit 0; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-config.XXXXXX")
trap 'rm -rf "$dir"' EXIT
# the check wants each rootfs to exist and to hold the command
mkdir -p "$dir/rootfs/bin"
: >"$dir/rootfs/bin/httpd"
chmod +x "$dir/rootfs/bin/httpd"
printf '   %-12s %-10s %s\n' containers policies "config check (ms, best of 5)"
for n in 10 100 1000; do
	d=$dir/c$n
	mkdir -p "$d/containers.d" "$d/policies.d"
	i=1
	while [ $i -le $n ]; do
		printf '[container]\nrootfs = %s\ncommand = httpd -f -p 80\nlabels = app=a%d, tier=web\nports = %d:80/tcp\nip = 10.88.%d.%d\n' \
			"$dir/rootfs" $i $((10000 + i)) $((i / 200 + 1)) $((i % 200 + 2)) >"$d/containers.d/c$i.ini"
		if [ $((i % 10)) = 0 ]; then
			printf '[policy]\nselect = app=a%d\n[ingress web]\nfrom = tier in (web, api), !quarantined\nports = 80/tcp\n' \
				$i >"$d/policies.d/p$i.ini"
		fi
		i=$((i + 1))
	done
	best=
	for r in 1 2 3 4 5; do
		t0=$(date +%s%N)
		"$bin" config check -c "$d" >/dev/null || { echo "   config check failed on $d"; exit 1; }
		t=$(( ($(date +%s%N) - t0) / 1000 ))
		[ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t
	done
	printf '   %-12s %-10s %d.%03d\n' $n $((n / 10)) $((best / 1000)) $((best % 1000))
done
