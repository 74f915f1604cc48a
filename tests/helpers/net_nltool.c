/* net_nltool.c - drive net/netlink.c against the kernel for integration tests.
 *
 *   net_nltool links                     dump every link (multi-part dump), one name per line
 *   net_nltool batch OP TABLE [OP TABLE] one nf_tables batch; OP is add or del (inet TABLE)
 *
 * Errors print "message I: <error>" per failing message (I counts from 1, the
 * batch begin being message 0) and the exit status is 1. */
#include "net/netlink.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>

static int print_link(const struct nlmsghdr *nlh, void *ctx)
{
	const struct nlattr *tb[IFLA_MAX + 1];
	const char *name;

	(*(int *)ctx)++;
	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    nl_msg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX) < 0 ||
	    nl_attr_str(tb[IFLA_IFNAME], &name) < 0)
		return -EBADMSG;
	printf("%s\n", name);
	return 0;
}

static int print_error(unsigned index, int code, const char *ext, void *ctx)
{
	char nb[16];

	(void)ctx;
	printf("message %u: %s (%s)%s%s\n", index, strerror(code), errno_name(code, nb),
	       ext && *ext ? ": " : "", ext ? ext : "");
	return -code;
}

int main(int argc, char **argv)
{
	static uint8_t buf[65536] __attribute__((aligned(8)));
	struct nl_sock s;
	struct nl_msg m;
	struct err e = { 0 };
	int n = 0, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);   /* keep stdout and stderr in order */
	if (argc == 2 && !strcmp(argv[1], "links")) {
		struct nl_handlers h = { .on_data = print_link, .ctx = &n };

		if (nl_open(&s, NETLINK_ROUTE, &e) < 0)
			goto fail;
		nl_msg_init(&m, buf, sizeof(buf));
		nl_msg_start(&m, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
		nl_msg_put_header(&m, sizeof(struct ifinfomsg));
		ret = nl_talk(&s, &m, &h, &e);
		nl_close(&s);
		if (ret < 0)
			goto fail;
		return 0;
	}
	if (argc >= 4 && argc % 2 == 0 && !strcmp(argv[1], "batch")) {
		struct nl_handlers h = { .on_error = print_error };

		if (nl_open(&s, NETLINK_NETFILTER, &e) < 0)
			goto fail;
		nl_msg_init(&m, buf, sizeof(buf));
		nl_batch_begin(&m, NFNL_SUBSYS_NFTABLES);
		for (int i = 2; i + 1 < argc; i += 2) {
			bool add = !strcmp(argv[i], "add");

			nl_nfmsg_start(&m, NFNL_SUBSYS_NFTABLES, add ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE,
				       NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0),
				       NFPROTO_INET);
			nl_put_str(&m, NFTA_TABLE_NAME, argv[i + 1]);
		}
		nl_batch_end(&m, NFNL_SUBSYS_NFTABLES);
		ret = nl_talk(&s, &m, &h, &e);
		nl_close(&s);
		if (ret < 0)
			goto fail;
		printf("ok\n");
		return 0;
	}
	fprintf(stderr, "usage: net_nltool links | net_nltool batch add|del TABLE ...\n");
	return 2;
fail:
	fprintf(stderr, "net_nltool: %s\n", e.msg);
	return 1;
}
