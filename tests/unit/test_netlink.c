/* test_netlink.c - net/: netlink build -> parse round trips, bounds, error/ext-ack parsing, batch framing, names. */
#include "net/net.h"
#include "net/netlink.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

static uint8_t buf[4096] __attribute__((aligned(8)));

static void test_build_parse(void)
{
	struct nl_msg m;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *li, *data, *peer;
	const struct nlattr *tb[IFLA_MAX + 1], *ltb[IFLA_INFO_MAX + 1], *dtb[VETH_INFO_MAX + 1];
	const struct nlattr *ptb[IFLA_MAX + 1];
	const char *s = NULL;
	uint32_t u = 0;

	nl_msg_init(&m, buf, sizeof(buf));
	nlh = nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
	ifi = nl_msg_put_header(&m, sizeof(*ifi));
	T_OK(nlh && ifi, "message and family header fit");
	ifi->ifi_flags = IFF_UP;
	nl_put_str(&m, IFLA_IFNAME, "bh-web");
	nl_put_u32(&m, IFLA_MTU, 1400);
	li = nl_nest_start(&m, IFLA_LINKINFO);
	nl_put_str(&m, IFLA_INFO_KIND, "veth");
	data = nl_nest_start(&m, IFLA_INFO_DATA);
	peer = nl_nest_start(&m, VETH_INFO_PEER);
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));
	nl_put_str(&m, IFLA_IFNAME, "eth0");
	nl_nest_end(&m, peer);
	nl_nest_end(&m, data);
	nl_nest_end(&m, li);
	T_EQ(nl_msg_error(&m), 0, "no overflow");
	T_EQ(nlh->nlmsg_len, m.len, "nlmsg_len covers the whole message");
	T_EQ(nlh->nlmsg_len % 4, 0, "message length is aligned");

	T_EQ(nl_msg_parse(nlh, sizeof(*ifi), tb, IFLA_MAX), 0, "message parses");
	T_OK(nl_attr_str(tb[IFLA_IFNAME], &s) == 0 && !strcmp(s, "bh-web"), "IFLA_IFNAME reads back");
	T_OK(nl_attr_u32(tb[IFLA_MTU], &u) == 0 && u == 1400, "IFLA_MTU reads back");
	T_OK(tb[IFLA_LINKINFO] && (tb[IFLA_LINKINFO]->nla_type & NLA_F_NESTED), "nest is flagged NLA_F_NESTED");
	T_EQ(nl_nest_parse(tb[IFLA_LINKINFO], ltb, IFLA_INFO_MAX), 0, "nested linkinfo parses");
	T_OK(nl_attr_str(ltb[IFLA_INFO_KIND], &s) == 0 && !strcmp(s, "veth"), "kind is veth");
	T_EQ(nl_nest_parse(ltb[IFLA_INFO_DATA], dtb, VETH_INFO_MAX), 0, "info data parses");
	T_OK(dtb[VETH_INFO_PEER] != NULL, "peer nest present");
	T_EQ(nl_attr_parse((const uint8_t *)nl_attr_data(dtb[VETH_INFO_PEER]) + sizeof(struct ifinfomsg),
			   nl_attr_len(dtb[VETH_INFO_PEER]) - sizeof(struct ifinfomsg), ptb, IFLA_MAX),
	     0, "peer attributes after its ifinfomsg parse");
	T_OK(nl_attr_str(ptb[IFLA_IFNAME], &s) == 0 && !strcmp(s, "eth0"), "peer name is eth0");
	T_EQ(nl_attr_u8(tb[IFLA_MTU], (uint8_t *)&u), -EBADMSG, "u8 getter refuses a 4-byte attribute");
	T_EQ(nl_attr_u32(NULL, &u), -EBADMSG, "getter refuses a missing attribute");
}

static void test_bounds(void)
{
	uint8_t small[64] __attribute__((aligned(8)));
	struct nl_msg m;
	char big[100];
	unsigned i;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	nl_msg_init(&m, small, sizeof(small));
	nl_msg_start(&m, RTM_NEWLINK, NLM_F_REQUEST);
	nl_msg_put_header(&m, sizeof(struct ifinfomsg));
	T_OK(nl_put_u32(&m, IFLA_MTU, 1500), "a small attribute fits");
	size_t before = m.len;
	T_OK(!nl_put_str(&m, IFLA_IFNAME, big), "an attribute larger than the buffer is refused");
	T_EQ(m.len, before, "a refused put writes nothing");
	T_EQ(nl_msg_error(&m), -EMSGSIZE, "the overflow is reported as -EMSGSIZE");
	T_OK(!nl_put_u8(&m, IFLA_OPERSTATE, 1), "puts after an overflow are refused too");
	T_OK(nl_nest_start(&m, IFLA_LINKINFO) == NULL, "nest start after overflow is NULL");
	nl_nest_end(&m, NULL);

	static uint8_t many[NL_MSG_MAX * NLMSG_HDRLEN + 64] __attribute__((aligned(8)));

	nl_msg_init(&m, many, sizeof(many));
	for (i = 0; i < NL_MSG_MAX; i++)
		nl_msg_start(&m, RTM_GETLINK, NLM_F_REQUEST);
	T_EQ(nl_msg_error(&m), 0, "NL_MSG_MAX messages fit in one builder");
	T_OK(nl_msg_start(&m, RTM_GETLINK, NLM_F_REQUEST) == NULL, "one more is refused");
	T_EQ(nl_msg_error(&m), -EMSGSIZE, "and reported");

	T_OK(nl_put(&m, 1, NULL, 0) == false, "no put without a message room");
}

static void test_malformed(void)
{
	uint8_t p[32] __attribute__((aligned(8)));
	const struct nlattr *tb[8];
	struct nlattr *a = (struct nlattr *)(void *)p;
	struct nl_attr_iter it;
	int n = 0;

	memset(p, 0, sizeof(p));
	a->nla_len = 8;
	a->nla_type = 1;
	a = (struct nlattr *)(void *)(p + 8);
	a->nla_len = 200;                       /* claims more than there is */
	a->nla_type = 2;
	T_EQ(nl_attr_parse(p, 16, tb, 7), -EBADMSG, "an attribute longer than the region is rejected");
	T_OK(tb[1] != NULL && tb[2] == NULL, "attributes before it are kept, the bad one is not");

	a->nla_len = 2;                         /* shorter than its own header */
	T_EQ(nl_attr_parse(p, 16, tb, 7), -EBADMSG, "an attribute shorter than a header is rejected");

	a->nla_len = 8;
	a->nla_type = 9;                        /* above max: skipped, not an error */
	T_EQ(nl_attr_parse(p, 16, tb, 7), 0, "unknown attribute types are skipped");
	for (const struct nlattr *x = nl_attr_first(p, 16, &it); x; x = nl_attr_next(&it))
		n++;
	T_EQ(n, 2, "the iterator visits both attributes");
	T_OK(!it.bad, "and ends cleanly");

	/* A string without its NUL is not a string. */
	a->nla_type = 3;
	memcpy(p + 12, "abcd", 4);
	const char *s;
	T_EQ(nl_attr_str(a, &s), -EBADMSG, "a string without NUL is refused");

	struct nlmsghdr h = { .nlmsg_len = 8 };
	T_OK(!nl_msg_ok(&h, sizeof(h)), "a message shorter than its header is not ok");
	h.nlmsg_len = 64;
	T_OK(!nl_msg_ok(&h, sizeof(h)), "a message longer than the datagram is not ok");
}

/* An NLMSG_ERROR as the kernel sends it with NETLINK_EXT_ACK + CAP_ACK. */
static void test_error_ext_ack(void)
{
	struct nl_msg m;
	struct nlmsghdr *nlh;
	struct nlmsgerr *me;
	char ext[128];
	int code = 0;

	nl_msg_init(&m, buf, sizeof(buf));
	nlh = nl_msg_start(&m, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS);
	me = nl_msg_put_header(&m, sizeof(*me));
	me->error = -EEXIST;
	me->msg.nlmsg_len = 200;                /* capped: only the header is echoed */
	me->msg.nlmsg_type = RTM_NEWLINK;
	nl_put_str(&m, NLMSGERR_ATTR_MSG, "Link already exists");
	nl_put_u32(&m, NLMSGERR_ATTR_OFFS, 20);
	T_EQ(nl_parse_error(nlh, &code, ext, sizeof(ext)), 0, "capped error with TLVs parses");
	T_EQ(code, -EEXIST, "the error code is read");
	T_STREQ(ext, "Link already exists", "the extended ACK message is read");

	nlh->nlmsg_flags = 0;
	T_EQ(nl_parse_error(nlh, &code, ext, sizeof(ext)), 0, "error without TLVs parses");
	T_STREQ(ext, "", "and has no message");

	/* Uncapped: the whole request is echoed before the TLVs. */
	nl_msg_init(&m, buf, sizeof(buf));
	nlh = nl_msg_start(&m, NLMSG_ERROR, NLM_F_ACK_TLVS);
	me = nl_msg_put_header(&m, sizeof(*me));
	me->error = -EINVAL;
	me->msg.nlmsg_len = NLMSG_HDRLEN + 8;
	nl_msg_put_header(&m, 8);               /* the echoed payload */
	nl_put_str(&m, NLMSGERR_ATTR_MSG, "Unknown device type");
	T_EQ(nl_parse_error(nlh, &code, ext, sizeof(ext)), 0, "uncapped error with TLVs parses");
	T_STREQ(ext, "Unknown device type", "the message after the echoed request is found");

	me->msg.nlmsg_len = 4000;               /* echo longer than the message */
	T_EQ(nl_parse_error(nlh, &code, ext, sizeof(ext)), -EBADMSG, "a lying echo length is rejected");

	nlh->nlmsg_len = NLMSG_HDRLEN + 2;
	T_EQ(nl_parse_error(nlh, &code, ext, sizeof(ext)), -EBADMSG, "a truncated error is rejected");
}

static void test_batch_framing(void)
{
	struct nl_msg m;
	struct nlmsghdr *b, *t, *end;
	const struct nfgenmsg *g;
	const struct nlattr *tb[NFTA_TABLE_MAX + 1];
	const char *s = NULL;

	nl_msg_init(&m, buf, sizeof(buf));
	b = nl_batch_begin(&m, NFNL_SUBSYS_NFTABLES);
	t = nl_nfmsg_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWTABLE,
			   NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);
	nl_put_str(&m, NFTA_TABLE_NAME, "berth_test");
	end = nl_batch_end(&m, NFNL_SUBSYS_NFTABLES);
	T_EQ(nl_msg_error(&m), 0, "batch fits");
	T_EQ(m.count, 3, "begin, one message, end");
	T_OK(nl_msg_at(&m, 0) == b && nl_msg_at(&m, 1) == t && nl_msg_at(&m, 2) == end,
	     "messages are contiguous and found by index");
	T_OK(nl_msg_at(&m, 3) == NULL, "no fourth message");
	T_EQ(b->nlmsg_type, NFNL_MSG_BATCH_BEGIN, "first is BATCH_BEGIN");
	T_EQ(end->nlmsg_type, NFNL_MSG_BATCH_END, "last is BATCH_END");
	T_EQ(b->nlmsg_flags, NLM_F_REQUEST, "begin asks for no ACK");
	g = NLMSG_DATA(b);
	T_EQ(g->res_id, htons(NFNL_SUBSYS_NFTABLES), "begin res_id is the subsystem, big-endian");
	T_EQ(g->version, NFNETLINK_V0, "nfgenmsg version 0");
	T_EQ(g->nfgen_family, AF_UNSPEC, "begin family is AF_UNSPEC");
	g = NLMSG_DATA(end);
	T_EQ(g->res_id, htons(NFNL_SUBSYS_NFTABLES), "end res_id is the subsystem");
	T_EQ(t->nlmsg_type, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE, "type is subsys << 8 | msg");
	g = NLMSG_DATA(t);
	T_EQ(g->nfgen_family, NFPROTO_INET, "table message carries the inet family");
	T_EQ(nl_msg_parse(t, sizeof(*g), tb, NFTA_TABLE_MAX), 0, "table message parses");
	T_OK(nl_attr_str(tb[NFTA_TABLE_NAME], &s) == 0 && !strcmp(s, "berth_test"), "table name reads back");
	T_EQ((size_t)((uint8_t *)end - buf) + end->nlmsg_len, m.len, "the buffer ends with the end message");
}

static const char *host(const char *c, const char *ifn)
{
	static char out[16];
	static struct err e;

	if (net_ifname_host(c, ifn, out, &e) < 0)
		return e.msg;
	return out;
}

static const char *name_err(const char *c)
{
	static struct err e;

	err_clear(&e);
	if (net_name_check(c, &e) == 0)
		return "(accepted)";
	return e.msg;
}

static void test_names(void)
{
	char a[16], b[16];

	T_STREQ(host("web", "eth0"), "bh-web", "eth0 of a short name is bh-NAME");
	T_STREQ(host("abcdefghijkl", "eth0"), "bh-abcdefghijkl", "12 characters still fit (15 in all)");
	T_EQ(strlen(host("abcdefghijklm", "eth0")), 15, "a longer name is hashed to exactly 15");
	T_OK(!strncmp(host("abcdefghijklm", "eth0"), "bh0-abcdef", 10), "hashed form keeps the name's start");
	T_OK(!strncmp(host("web", "eth1"), "bh1-web", 7), "eth1 uses the hashed form with its number");
	T_EQ(strlen(host("web", "eth1")), 12, "bh1-web + 5 hex digits");
	T_OK(!strncmp(host("web", "eth12"), "bh12-web", 8) && strlen(host("web", "eth12")) == 13,
	     "two-digit numbers fit too");
	net_ifname_host("frontend-1", "eth0", a, NULL);
	net_ifname_host("frontend-1", "eth0", b, NULL);
	T_STREQ(a, b, "the name is deterministic");
	net_ifname_host("frontend-service-a", "eth0", a, NULL);
	net_ifname_host("frontend-service-b", "eth0", b, NULL);
	T_OK(strcmp(a, b) != 0, "names sharing a long prefix get different host names");
	T_OK(strlen(a) <= 15 && strlen(b) <= 15, "and both fit in 15");
	net_ifname_host("a-1", "eth0", a, NULL);
	net_ifname_host("a", "eth1", b, NULL);
	T_OK(strcmp(a, b) != 0, "container a-1/eth0 and a/eth1 do not collide");
	T_STREQ(host("web", "eth100"), "interface 'eth100': the number ending it must be 0 to 99",
		"interface numbers above 99 are refused");

	T_STREQ(name_err("web-1.prod_a"), "(accepted)", "letters, digits, '-', '.', '_' are accepted");
	T_STREQ(name_err("a/b"), "container name 'a/b': only letters, digits, '_', '.', '-' are allowed",
		"a slash is refused with the reason");
	T_STREQ(name_err("-a"), "container name '-a': must start with a letter or a digit",
		"a leading dash is refused");
	T_STREQ(name_err(""), "container name is empty", "empty is refused");
	T_STREQ(name_err("0123456789012345678901234567890123456789012345678901234567890123"),
		"container name '01234567890123456789...': at most 63 characters (it has 64)",
		"64 characters are refused");
	T_STREQ(name_err("012345678901234567890123456789012345678901234567890123456789012"),
		"(accepted)", "63 characters are accepted");
	T_STREQ(name_err("bad name"), "container name 'bad name': only letters, digits, '_', '.', "
		"'-' are allowed", "a space is refused");
}

int main(void)
{
	test_build_parse();
	test_bounds();
	test_malformed();
	test_error_ext_ack();
	test_batch_framing();
	test_names();
	return t_done();
}
