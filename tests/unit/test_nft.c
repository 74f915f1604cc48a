/* test_nft.c - net/nft: build -> parse -> compare for tables, chains, sets, rules
 * with every expression kind, elements (split over messages); overflow and
 * malformed input; net/nat's host-port conflict check. No root, no kernel. */
#include "net/nat.h"
#include "net/nft.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

/* The messages of a batch, framing included. */
static unsigned count_msgs(const struct nft_batch *b)
{
	return b->m.count;
}

static const struct nlmsghdr *msg_at(const struct nft_batch *b, unsigned i)
{
	return nl_msg_at(&b->m, i);
}

static void test_table_and_framing(void)
{
	struct nft_batch b;
	struct nft_head h;
	const struct nlmsghdr *nlh;
	const struct nfgenmsg *g;

	T_OK(nft_batch_init(&b, 4096) == 0, "a batch buffer is allocated");
	nft_put_table(&b, NFPROTO_INET, "berth", 0);
	nft_put_del_table(&b, NFPROTO_INET, "berth");
	nl_batch_end(&b.m, NFNL_SUBSYS_NFTABLES);
	T_EQ(count_msgs(&b), 4, "begin, new table, delete table, end");
	nlh = msg_at(&b, 0);
	g = NLMSG_DATA(nlh);
	T_OK(nlh->nlmsg_type == NFNL_MSG_BATCH_BEGIN && ntohs(g->res_id) == NFNL_SUBSYS_NFTABLES,
	     "the batch begins with BATCH_BEGIN for the nf_tables subsystem");
	T_OK(msg_at(&b, 3)->nlmsg_type == NFNL_MSG_BATCH_END, "and ends with BATCH_END");
	T_OK(nft_parse_head(msg_at(&b, 1), &h) == 0 && h.msg == NFT_MSG_NEWTABLE &&
	     h.family == NFPROTO_INET && !strcmp(h.table, "berth"), "NEWTABLE inet berth parses back");
	T_OK(msg_at(&b, 1)->nlmsg_flags & NLM_F_CREATE, "table creation does not fail on an existing table");
	T_OK(nft_parse_head(msg_at(&b, 2), &h) == 0 && h.msg == NFT_MSG_DELTABLE &&
	     !strcmp(h.table, "berth"), "DELTABLE inet berth parses back");
	T_OK(msg_at(&b, 2)->nlmsg_flags & NLM_F_ACK, "every message asks for its ACK");
	nft_batch_free(&b);
}

static void test_chains(void)
{
	const struct nft_chain in[] = {
		{ "dnat_pre", "nat", NF_INET_PRE_ROUTING, -100, NF_ACCEPT },
		{ "fw_fwd", "filter", NF_INET_FORWARD, 0, NF_DROP },
		{ "published", "", -1, 0, 0 },
	};
	struct nft_batch b;
	struct nft_chain out;
	struct nft_head h;

	nft_batch_init(&b, 4096);
	for (size_t i = 0; i < ARRAY_SIZE(in); i++)
		nft_put_chain(&b, NFPROTO_INET, "berth", &in[i]);
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		const struct nlmsghdr *nlh = msg_at(&b, 1 + (unsigned)i);

		T_OK(nft_parse_head(nlh, &h) == 0 && h.msg == NFT_MSG_NEWCHAIN &&
		     !strcmp(h.table, "berth") && !strcmp(h.name, in[i].name),
		     "chain %s: head parses (table, name)", in[i].name);
		T_OK(nft_parse_chain(nlh, &out) == 0, "chain %s parses", in[i].name);
		T_OK(!strcmp(out.name, in[i].name) && !strcmp(out.type, in[i].type) &&
		     out.hook == in[i].hook && out.prio == in[i].prio &&
		     (in[i].hook < 0 || out.policy == in[i].policy),
		     "chain %s: hook %d, priority %d, type '%s', policy round-trip", in[i].name,
		     in[i].hook, in[i].prio, in[i].type);
	}
	nft_batch_free(&b);
}

static bool set_eq(const struct nft_set *a, const struct nft_set *b)
{
	return !strcmp(a->name, b->name) && a->flags == b->flags && a->key_type == b->key_type &&
	       a->key_len == b->key_len && a->n_fields == b->n_fields &&
	       !memcmp(a->fields, b->fields, a->n_fields) &&
	       (!(a->flags & NFT_SET_MAP) || (a->data_type == b->data_type &&
					      a->data_len == b->data_len)) &&
	       a->counter == b->counter && a->timeout_ms == b->timeout_ms &&
	       a->key_byteorder == b->key_byteorder && a->id == b->id;
}

static void test_sets(void)
{
	static const uint32_t pp[] = { NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
	struct nft_set in[] = {
		{ .name = "ports6", .flags = NFT_SET_MAP | NFT_SET_CONCAT,
		  .key_type = nft_type_concat(pp, 2), .key_len = 8, .fields = { 1, 2 }, .n_fields = 2,
		  .data_type = NFT_TYPE_IP6ADDR << 6 | NFT_TYPE_INET_SERVICE, .data_len = 20 },
		{ .name = "count", .flags = NFT_SET_CONCAT, .key_type = nft_type_concat(pp, 2),
		  .key_len = 8, .fields = { 1, 2 }, .n_fields = 2, .counter = true },
		{ .name = "peers", .flags = NFT_SET_INTERVAL | NFT_SET_TIMEOUT,
		  .key_type = NFT_TYPE_IPADDR, .key_len = 4, .timeout_ms = 30000 },
		{ .name = "verdicts", .flags = NFT_SET_MAP, .key_type = NFT_TYPE_IPADDR, .key_len = 4,
		  .data_type = NFT_DATA_VERDICT },
		{ .name = "bridges", .key_type = NFT_TYPE_IFNAME, .key_len = 16,
		  .key_byteorder = NFT_BYTEORDER_HOST },
	};
	struct nft_batch b;
	struct nft_set out;

	T_EQ(nft_type_concat(pp, 2), 12 << 6 | 13, "inet_proto . inet_service is nft's type 781");
	nft_batch_init(&b, 8192);
	for (size_t i = 0; i < ARRAY_SIZE(in); i++)
		nft_put_set(&b, NFPROTO_INET, "berth", &in[i]);
	T_OK(in[0].id && in[1].id && in[0].id != in[1].id, "each set gets its own batch id");
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		T_OK(nft_parse_set(msg_at(&b, 1 + (unsigned)i), &out) == 0 && set_eq(&in[i], &out),
		     "set %s round-trips (flags, key and data types, concat fields, counter, timeout)",
		     in[i].name);
	}
	nft_batch_free(&b);
}

static bool expr_eq(const struct nft_expr *a, const struct nft_expr *b)
{
	return a->kind == b->kind && a->op == b->op && a->dir == b->dir && a->len == b->len &&
	       a->key == b->key && a->off == b->off && a->flags == b->flags &&
	       a->sreg == b->sreg && a->dreg == b->dreg && a->sreg2 == b->sreg2 &&
	       a->verdict == b->verdict && !memcmp(a->data, b->data, sizeof(a->data)) &&
	       !memcmp(a->xor, b->xor, sizeof(a->xor)) && !strcmp(a->name, b->name);
}

static void test_rules(void)
{
	/* one of each expression berth uses, as a single (nonsense) rule */
	const struct nft_expr in[] = {
		NFT_META(NFT_META_NFPROTO, NFT_REG_1),
		NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { NFPROTO_IPV4 }),
		NFT_META(NFT_META_IIFNAME, NFT_REG_1),
		NFT_CMP(NFT_CMP_NEQ, NFT_REG_1, 16, "lo"),
		NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG32_00),
		NFT_PAYLOAD(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_02),
		{ .kind = NFT_X_BITWISE, .sreg = NFT_REG_1, .dreg = NFT_REG_1, .len = 4,
		  .data = { 0xff, 0xff, 0, 0 }, .xor = { 0, 0, 0, 1 } },
		NFT_LOOKUP("ports4", NFT_REG32_00, NFT_REG_1, 0),
		NFT_LOOKUP("bridges", NFT_REG_1, 0, NFT_LOOKUP_F_INV),
		NFT_VMAP("fw_in4", NFT_REG32_00),
		NFT_CT(NFT_CT_STATUS, NFT_CT_DIR_NONE, NFT_REG_1),
		NFT_CT(NFT_CT_PROTO_DST, 0, NFT_REG32_01),
		NFT_FIB(NFT_FIB_RESULT_ADDRTYPE, NFTA_FIB_F_DADDR, NFT_REG_1),
		NFT_NAT(NFT_NAT_DNAT, NFPROTO_IPV6, NFT_REG32_00, NFT_REG32_04),
		NFT_MASQ(),
		NFT_COUNTER(),
		{ .kind = NFT_X_IMMEDIATE, .dreg = NFT_REG_2, .len = 4, .data = { 10, 88, 0, 1 } },
		NFT_VERDICT(NFT_JUMP, "published"),
		NFT_VERDICT(NF_DROP, ""),
	};
	struct nft_expr out[NFT_RULE_MAX];
	struct nft_batch b;
	struct nft_head h;
	size_t n = 0;
	bool all = true;

	nft_batch_init(&b, 8192);
	nft_put_rule(&b, NFPROTO_INET, "berth", "published", in, ARRAY_SIZE(in));
	T_OK(nft_parse_head(msg_at(&b, 1), &h) == 0 && h.msg == NFT_MSG_NEWRULE &&
	     !strcmp(h.name, "published"), "a rule's head names its table and chain");
	T_OK(nft_parse_rule(msg_at(&b, 1), out, ARRAY_SIZE(out), &n) == 0, "the rule parses");
	T_EQ(n, ARRAY_SIZE(in), "every expression comes back");
	for (size_t i = 0; i < n && i < ARRAY_SIZE(in); i++)
		if (!expr_eq(&in[i], &out[i])) {
			printf("#   expression %zu (kind %u) differs\n", i, in[i].kind);
			all = false;
		}
	T_OK(all, "each expression equals what was built (meta, cmp, payload, bitwise, lookup, "
	     "ct, fib, nat, masq, counter, immediate, verdicts)");
	T_OK(nft_parse_rule(msg_at(&b, 1), out, 3, &n) == -EBADMSG,
	     "a rule with more expressions than the caller's room is refused, not overrun");
	nft_batch_free(&b);

	/* an expression the decoder does not know */
	{
		struct nl_msg m;
		uint8_t buf[512] __attribute__((aligned(8)));
		struct nlattr *ex, *el;

		nl_msg_init(&m, buf, sizeof(buf));
		nl_nfmsg_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWRULE, NLM_F_REQUEST, NFPROTO_INET);
		nl_put_str(&m, NFTA_RULE_TABLE, "t");
		nl_put_str(&m, NFTA_RULE_CHAIN, "c");
		ex = nl_nest_start(&m, NFTA_RULE_EXPRESSIONS);
		el = nl_nest_start(&m, NFTA_LIST_ELEM);
		nl_put_str(&m, NFTA_EXPR_NAME, "quota");
		nl_nest_end(&m, el);
		nl_nest_end(&m, ex);
		T_EQ(nft_parse_rule(nl_msg_at(&m, 0), out, ARRAY_SIZE(out), &n), -ENOTSUP,
		     "an unknown expression is -ENOTSUP");
		/* cut the message inside its expressions: never read past the end */
		nl_msg_at(&m, 0)->nlmsg_len -= 12;
		T_EQ(nft_parse_rule(nl_msg_at(&m, 0), out, ARRAY_SIZE(out), &n), -EBADMSG,
		     "a truncated rule is -EBADMSG");
	}
}

struct collect {
	struct nft_elem *v;
	size_t n, cap;
};

static int collect_elem(void *ctx, const struct nft_elem *el)
{
	struct collect *c = ctx;

	if (c->n < c->cap)
		c->v[c->n] = *el;
	c->n++;
	return 0;
}

static bool elem_eq(const struct nft_elem *a, const struct nft_elem *b)
{
	return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len) &&
	       a->data_len == b->data_len && !memcmp(a->data, b->data, a->data_len) &&
	       a->has_verdict == b->has_verdict &&
	       (!a->has_verdict || (a->verdict == b->verdict && !strcmp(a->chain, b->chain))) &&
	       a->flags == b->flags && a->timeout_ms == b->timeout_ms;
}

static void test_elems(void)
{
	enum { N = 3000 };
	static struct nft_elem in[N], got[N];
	struct collect c = { got, 0, N };
	struct nft_batch b;
	struct nft_head h;
	unsigned msgs;
	bool all = true;

	for (int i = 0; i < N; i++) {
		struct nft_elem *e = &in[i];

		memset(e, 0, sizeof(*e));
		e->key_len = 8;
		e->key[0] = IPPROTO_TCP;
		e->key[4] = (uint8_t)(i >> 8);
		e->key[5] = (uint8_t)i;
		if (i % 3 == 0) {
			e->data_len = 8;
			e->data[0] = 10, e->data[1] = 88, e->data[2] = (uint8_t)(i >> 8), e->data[3] = (uint8_t)i;
			e->data[5] = 80;
		} else if (i % 3 == 1) {
			e->has_verdict = true;
			e->verdict = NFT_JUMP;
			snprintf(e->chain, sizeof(e->chain), "ctr_%d", i);
		} else {
			e->flags = NFT_SET_ELEM_INTERVAL_END;
			e->timeout_ms = 1000u * (unsigned)i;
		}
	}
	nft_batch_init(&b, 1 << 20);
	nft_put_elems(&b, NFPROTO_INET, "berth", "ports4", false, in, N);
	msgs = count_msgs(&b) - 1;
	T_OK(msgs > 1, "%d elements are split over several messages (%u), each under 64 KiB", N, msgs);
	for (unsigned i = 1; i <= msgs; i++) {
		const struct nlmsghdr *nlh = msg_at(&b, i);

		if (nlh->nlmsg_len > 65535 || nft_parse_head(nlh, &h) < 0 ||
		    h.msg != NFT_MSG_NEWSETELEM || strcmp(h.name, "ports4") ||
		    nft_parse_elems(nlh, collect_elem, &c) < 0)
			all = false;
	}
	T_OK(all, "every message is a NEWSETELEM of set ports4 that parses");
	T_EQ(c.n, N, "every element comes back");
	for (int i = 0; i < N && all; i++)
		if (!elem_eq(&in[i], &got[i])) {
			printf("#   element %d differs\n", i);
			all = false;
		}
	T_OK(all, "in order, with keys, values, verdicts, interval-end flags and timeouts");
	nft_batch_free(&b);

	nft_batch_init(&b, 4096);
	nft_put_elems(&b, NFPROTO_INET, "berth", "ports4", true, in, 2);
	c.n = 0;
	T_OK(nft_parse_head(msg_at(&b, 1), &h) == 0 && h.msg == NFT_MSG_DELSETELEM &&
	     nft_parse_elems(msg_at(&b, 1), collect_elem, &c) == 0 && c.n == 2 &&
	     got[0].data_len == 0 && !got[1].has_verdict,
	     "a delete carries the keys only");
	nft_batch_free(&b);
}

static void test_overflow(void)
{
	struct nl_sock s = { .fd = -1 };
	struct nft_batch b;
	struct err e = { 0 };
	struct nft_elem el = { .key_len = 8 };

	nft_batch_init(&b, 256);
	for (int i = 0; i < 20; i++)
		nft_put_elems(&b, NFPROTO_INET, "berth", "ports4", false, &el, 1);
	T_EQ(nft_batch_send(&s, &b, NULL, NULL, &e), -EMSGSIZE,
	     "a batch that does not fit its buffer is never sent: -EMSGSIZE");
	T_OK(strstr(e.msg, "256-byte") != NULL, "and the message says how big the buffer was (%s)", e.msg);
	nft_batch_free(&b);
}

static void test_busy(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	struct nat_busy *busy = NULL;
	struct nat_port p = { .proto = IPPROTO_TCP, .container_port = 80 };
	struct err e = { 0 };
	char want[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		T_OK(0, "a listening socket for the conflict check");
		return;
	}
	p.host_port = ntohs(sa.sin_port);
	T_OK(nat_busy_load(&busy, &e) == 0, "the host's sockets are read from /proc/net");
	snprintf(want, sizeof(want), "port %u/tcp is in use on the host by test_nft (pid %d)",
		 p.host_port, (int)getpid());
	T_EQ(nat_busy_check(busy, &p, &e), -EADDRINUSE, "publishing a port a process listens on is refused");
	T_STREQ(e.msg, want, "the error names the port and the process");
	ip_parse("127.0.0.1", &p.host_ip, NULL);
	T_EQ(nat_busy_check(busy, &p, &e), -EADDRINUSE, "also on the same address only");
	ip_parse("192.0.2.7", &p.host_ip, NULL);
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "another address of the same port is free");
	memset(&p.host_ip, 0, sizeof(p.host_ip));
	p.proto = IPPROTO_UDP;
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "the same number over UDP is free");
	nat_busy_free(busy);
	close(fd);
}

int main(void)
{
	test_table_and_framing();
	test_chains();
	test_sets();
	test_rules();
	test_elems();
	test_overflow();
	test_busy();
	return t_done();
}
