# static.sh - the product binaries are static musl executables for their architecture.
. "$BERTH_TOP/tests/lib.sh"
need_cmd file

for arch in x86_64 aarch64; do
	bin=$BERTH_TOP/build/$arch/berth
	if [ ! -x "$bin" ]; then
		not_ok "build/$arch/berth exists" "run: make ARCH=$arch"
		continue
	fi
	desc=$(file -b "$bin")
	case $arch in x86_64) want=x86-64 ;; aarch64) want=aarch64 ;; esac
	case $desc in
	*"statically linked"*) ok "build/$arch/berth is statically linked" ;;
	*) not_ok "build/$arch/berth is statically linked" "file: $desc" ;;
	esac
	case $desc in
	*"$want"*) ok "build/$arch/berth is an $want executable" ;;
	*) not_ok "build/$arch/berth is an $want executable" "file: $desc" ;;
	esac
	case $desc in
	*", stripped"*) ok "build/$arch/berth is stripped" ;;
	*) not_ok "build/$arch/berth is stripped" "file: $desc" ;;
	esac
done
if [ "$(uname -m)" = x86_64 ]; then
	out=$(ldd "$BERTH_TOP/build/x86_64/berth" 2>&1)
	case $out in
	*"not a dynamic executable"*) ok "ldd says the x86_64 binary is not a dynamic executable" ;;
	*) not_ok "ldd says the x86_64 binary is not a dynamic executable" "ldd: $out" ;;
	esac
fi
done_testing
