#!/bin/sh
# net_netlink.sh - net/netlink.c against the kernel: nf_tables batches (atomic, acks mapped to messages) and multi-part dumps.
. "$BERTH_TOP/tests/lib.sh"
need_cmd nft ip jq
T=$BERTH_TOP/build/test/helpers/net_nltool
[ -x "$T" ] || skip_all "$T is not built (make test-build)"
nft list tables >/dev/null 2>&1 || skip_all "nf_tables is not available in this kernel"

check_out "a batch creates table inet berth_test" "ok" "$T" batch add berth_test
check_out "nft sees it" "table inet berth_test" nft list tables
check_out "create and delete in one batch: both applied in order" "ok" "$T" batch add berth_tmp del berth_tmp
check_out "nft sees only the first table" "table inet berth_test" nft list tables
check_out "a failing message is reported by its index, with the kernel's error" \
	"message 2: No such file or directory (ENOENT)
net_nltool: No such file or directory (ENOENT)" "$T" batch add berth_new del berth_nosuch
check_out "and the whole batch was rolled back (berth_new does not exist)" "table inet berth_test" nft list tables
check_out "two failures in one batch are both reported" \
	"message 1: No such file or directory (ENOENT)
message 2: No such file or directory (ENOENT)
net_nltool: No such file or directory (ENOENT)" "$T" batch del nosuch1 del nosuch2
check_out "the socket sequence is not confused: the next batch works" "ok" "$T" batch del berth_test
check_out "no table is left" "" nft list tables

# A big batch: 500 tables, every message acknowledged, in one send.
args=$(for i in $(seq 1 500); do printf ' add t%d' "$i"; done)
# shellcheck disable=SC2086
check_out "one batch of 500 acknowledged messages" "ok" "$T" batch $args
check_out "nft sees 500 tables" "500" sh -c "nft list tables | wc -l | tr -d ' '"
args=$(for i in $(seq 1 500); do printf ' del t%d' "$i"; done)
# shellcheck disable=SC2086
check_out "and one batch deletes them all" "ok" "$T" batch $args
check_out "no table is left" "" nft list tables

# A dump that needs several datagrams: 300 links.
for i in $(seq 1 300); do ip link add "br$i" type bridge || break; done
check_out "a multi-part link dump returns exactly what ip sees (301 links)" \
	"$(ip -j link show | jq -r '.[].ifname' | sort)" sh -c "'$T' links | sort"
check_out "and counts 301" "301" sh -c "'$T' links | wc -l | tr -d ' '"
done_testing
