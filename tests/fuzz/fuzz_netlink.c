/* fuzz_netlink.c - libFuzzer: net/netlink.c's parser on arbitrary kernel replies (messages, errors, nested attributes). */
#include "net/netlink.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_nested(const struct nlattr *a, int depth)
{
	struct nl_attr_iter it;
	const struct nlattr *x;
	const char *s;
	uint32_t u;

	if (depth > 4)
		return;
	for (x = nl_attr_first(nl_attr_data(a), nl_attr_len(a), &it); x; x = nl_attr_next(&it)) {
		(void)nl_attr_str(x, &s);
		(void)nl_attr_u32(x, &u);
		if (x->nla_type & NLA_F_NESTED)
			walk_nested(x, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[NL_RECV_BUF] __attribute__((aligned(8)));
	const struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	const struct nlmsghdr *nlh = (const void *)buf;
	size_t left;
	char ext[256];
	int code;

	if (size > sizeof(buf))
		return 0;
	memcpy(buf, data, size);        /* aligned, as recv() gives it */
	left = size;
	while (nl_msg_ok(nlh, left)) {
		size_t step = NLMSG_ALIGN(nlh->nlmsg_len);

		if (nlh->nlmsg_type == NLMSG_ERROR) {
			(void)nl_parse_error(nlh, &code, ext, sizeof(ext));
		} else if (nl_msg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX) == 0) {
			if (tb[IFLA_LINKINFO] && nl_nest_parse(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX) == 0 &&
			    li[IFLA_INFO_DATA])
				walk_nested(li[IFLA_INFO_DATA], 0);
			if (tb[IFLA_AF_SPEC])
				walk_nested(tb[IFLA_AF_SPEC], 0);
		}
		if (step >= left)
			break;
		left -= step;
		nlh = (const void *)((const uint8_t *)nlh + step);
	}
	return 0;
}
