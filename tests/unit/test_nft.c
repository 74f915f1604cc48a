/* test_nft.c - net/nft: build -> parse -> compare for tables, chains, sets, rules
 * with every expression kind, elements (split over messages); overflow and
 * malformed input; net/nat's host-port conflict check (real sockets of the
 * calling process on loopback, read back through sock_diag and through the
 * /proc/net fallback). No root. */
#include "net/nat.h"
#include "net/nft.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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
	       !memcmp(a->xor, b->xor, sizeof(a->xor)) && !strcmp(a->name, b->name) &&
	       a->modulus == b->modulus && a->timeout_ms == b->timeout_ms;
}

/* The services' expressions (net/svc): numgen, reject, dynset, nat with flags. */
static void test_rules_svc(void)
{
	struct nft_expr in[] = {
		NFT_NUMGEN(NFT_NG_RANDOM, 3, 0, NFT_REG_1),
		NFT_NUMGEN(NFT_NG_INCREMENTAL, 1024, 7, NFT_REG32_12),
		NFT_REJECT(NFT_REJECT_TCP_RST, 0),
		NFT_REJECT(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH),
		NFT_DYNSET(NFT_DYNSET_OP_UPDATE, "svca-1-4", NFT_REG_3, NFT_REG_1, 10800000),
		NFT_DYNSET(NFT_DYNSET_OP_ADD, "svca-1-6", NFT_REG_3, NFT_REG_1, 0),
		NFT_DYNSET(NFT_DYNSET_OP_ADD, "a_set", NFT_REG_1, 0, 60000),
		NFT_NAT(NFT_NAT_DNAT, NFPROTO_IPV4, NFT_REG_1, NFT_REG_2),
	};
	struct nft_expr out[NFT_RULE_MAX];
	struct nft_batch b;
	size_t n = 0;
	bool all = true;

	in[7].flags = 2;                    /* NF_NAT_RANGE_PROTO_SPECIFIED */
	nft_batch_init(&b, 8192);
	nft_put_rule(&b, NFPROTO_INET, "berth", "svc-1-0-4", in, ARRAY_SIZE(in));
	T_OK(nft_parse_rule(msg_at(&b, 1), out, ARRAY_SIZE(out), &n) == 0 && n == ARRAY_SIZE(in),
	     "a rule with numgen, reject, dynset and nat flags parses back whole");
	for (size_t i = 0; i < n && i < ARRAY_SIZE(in); i++)
		if (!expr_eq(&in[i], &out[i])) {
			printf("#   expression %zu (kind %u) differs\n", i, in[i].kind);
			all = false;
		}
	T_OK(all, "numgen (type, modulus, offset), reject (type, code), dynset (op, set, key and "
	     "data registers, timeout) and nat flags equal what was built");
	nft_batch_free(&b);

	/* DESTROYSETELEM: the message type and its elements */
	{
		struct nft_elem el = { .key = { 10, 88, 0, 2 }, .key_len = 4 };
		struct nft_head h;

		nft_batch_init(&b, 4096);
		nft_put_destroy_elems(&b, NFPROTO_INET, "berth", "svca-1-4", &el, 1);
		T_OK(nft_parse_head(msg_at(&b, 1), &h) == 0 && h.msg == NFT_MSG_DESTROYSETELEM_ &&
		     !strcmp(h.name, "svca-1-4") && (msg_at(&b, 1)->nlmsg_flags & NLM_F_ACK),
		     "nft_put_destroy_elems writes a DESTROYSETELEM of the set, with its ACK");
		nft_batch_free(&b);
	}
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

/* CNI CHECK's lookup: one GETSETELEM that is a request, not a dump, and
 * carries the one key (a dump would list the whole map). */
static void test_get_elem(void)
{
	uint8_t buf[512] __attribute__((aligned(8)));
	struct nft_elem key = { .key_len = 8, .key = { IPPROTO_TCP, 0, 0, 0, 0x1f, 0x90 } }, got[2];
	struct collect c = { got, 0, 2 };
	struct nft_head h;
	struct nl_msg m;
	const struct nlmsghdr *nlh;

	nl_msg_init(&m, buf, sizeof(buf));
	nft_put_get_elem(&m, NFPROTO_INET, "berth", "ports4", &key);
	nlh = nl_msg_at(&m, 0);
	T_OK(nl_msg_error(&m) == 0 && m.count == 1, "one message");
	T_OK(nft_parse_head(nlh, &h) == 0 && h.msg == NFT_MSG_GETSETELEM &&
	     !strcmp(h.table, "berth") && !strcmp(h.name, "ports4") && h.family == NFPROTO_INET,
	     "a GETSETELEM of set ports4 in table inet berth");
	T_OK(!(nlh->nlmsg_flags & NLM_F_DUMP) && (nlh->nlmsg_flags & NLM_F_ACK),
	     "asking for the one element (no dump) and its ACK");
	T_OK(nft_parse_elems(nlh, collect_elem, &c) == 0 && c.n == 1 && elem_eq(&key, &got[0]),
	     "it carries the key 'tcp . 8080' and nothing else");
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

/* A socket of the given kind bound to addr:0 (listening if TCP); its port in
 * *port. -1 when the machine cannot (no IPv6). */
static int bound(int family, int type, const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = family == AF_INET6 ? sizeof(*s6) : sizeof(*s4);
	int fd = socket(family, type | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET6) {
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
	} else {
		inet_pton(AF_INET, addr, &s4->sin_addr);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 4) < 0) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET6 ? s6->sin6_port : s4->sin_port);
	return fd;
}

static struct nat_port busy_port(uint8_t proto, uint16_t port, const char *host_ip)
{
	struct nat_port p = { .proto = proto, .host_port = port, .container_port = 80 };

	if (host_ip)
		ip_parse(host_ip, &p.host_ip, NULL);
	return p;
}

/* The refusal for a port this process holds, word for word. */
static void want_refused(const struct nat_busy *busy, struct nat_port p, const char *what)
{
	struct err e = { 0 };
	char want[160], name[IP_STRLEN + 3] = "", a[IP_STRLEN];

	if (p.host_ip.family == AF_INET6)
		snprintf(name, sizeof(name), "[%s]:", ip_format(&p.host_ip, a));
	else if (p.host_ip.family)
		snprintf(name, sizeof(name), "%s:", ip_format(&p.host_ip, a));
	snprintf(want, sizeof(want), "port %s%u/%s is in use on the host by test_nft (pid %d)", name,
		 p.host_port, p.proto == IPPROTO_UDP ? "udp" : "tcp", (int)getpid());
	T_EQ(nat_busy_check(busy, &p, &e), -EADDRINUSE, "%s", what);
	T_STREQ(e.msg, want, "... and the error names the port and the process");
}

/* The cases, against one snapshot; via says which way it was read. */
static void busy_cases(const char *via)
{
	uint16_t tcp4, tcp6, udp4, udp6, lo6, conn_port, udpc_port;
	int fd_tcp4 = bound(AF_INET, SOCK_STREAM, "127.0.0.1", &tcp4);
	int fd_tcp6 = bound(AF_INET6, SOCK_STREAM, "::", &tcp6);
	int fd_udp4 = bound(AF_INET, SOCK_DGRAM, "0.0.0.0", &udp4);
	int fd_udp6 = bound(AF_INET6, SOCK_DGRAM, "::", &udp6);
	int fd_lo6 = bound(AF_INET6, SOCK_STREAM, "::1", &lo6);
	int fd_udpc = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", &udpc_port);
	int fd_conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fd_acc = -1;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(tcp4),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	struct nat_busy *busy = NULL;
	struct err e = { 0 };
	bool v6 = fd_tcp6 >= 0 && fd_udp6 >= 0 && fd_lo6 >= 0;
	struct nat_port p;

	printf("# host ports in use, read %s\n", via);
	if (fd_tcp4 < 0 || fd_udp4 < 0 || fd_udpc < 0 || fd_conn < 0 ||
	    connect(fd_conn, (struct sockaddr *)&to, sizeof(to)) < 0 ||
	    (fd_acc = accept4(fd_tcp4, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
	    getsockname(fd_conn, (struct sockaddr *)&me, &len) < 0 ||
	    connect(fd_udpc, (struct sockaddr *)&to, sizeof(to)) < 0) {
		T_OK(0, "sockets for the conflict check (%s)", strerror(errno));
		goto out;
	}
	conn_port = ntohs(me.sin_port);
	T_OK(nat_busy_load(&busy, &e) == 0, "the host's sockets are read (%s)%s%s", via,
	     e.code ? ": " : "", e.msg);

	/* TCP on 127.0.0.1 */
	want_refused(busy, busy_port(IPPROTO_TCP, tcp4, NULL),
		     "publishing a port a process listens on is refused");
	want_refused(busy, busy_port(IPPROTO_TCP, tcp4, "127.0.0.1"), "also on the same address only");
	p = busy_port(IPPROTO_TCP, tcp4, "192.0.2.7");
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "another address of the same port is free");
	p = busy_port(IPPROTO_UDP, tcp4, NULL);
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "the same number over UDP is free");

	/* sockets that listen on nothing */
	p = busy_port(IPPROTO_TCP, conn_port, NULL);
	T_EQ(nat_busy_check(busy, &p, NULL), 0,
	     "the local port of an established TCP connection is free (only listeners count)");
	p = busy_port(IPPROTO_UDP, udpc_port, NULL);
	T_EQ(nat_busy_check(busy, &p, NULL), 0,
	     "a connected UDP socket's port is free (only unconnected ones receive from anyone)");

	/* UDP bound to 0.0.0.0 */
	want_refused(busy, busy_port(IPPROTO_UDP, udp4, NULL), "a UDP port a process is bound to is refused");
	want_refused(busy, busy_port(IPPROTO_UDP, udp4, "192.0.2.7"),
		     "on any address: the process is bound to all of them");
	p = busy_port(IPPROTO_TCP, udp4, NULL);
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "the same number over TCP is free");

	if (!v6) {
		T_OK(1, "IPv6 listeners # SKIP no IPv6 on this machine");
		goto out;
	}
	/* IPv6 */
	want_refused(busy, busy_port(IPPROTO_TCP, tcp6, NULL),
		     "a port a process listens on at [::] is refused");
	want_refused(busy, busy_port(IPPROTO_TCP, tcp6, "2001:db8::7"),
		     "also on one IPv6 address: [::] covers it");
	p = busy_port(IPPROTO_UDP, tcp6, NULL);
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "the same number over UDP is free");
	want_refused(busy, busy_port(IPPROTO_UDP, udp6, NULL), "a UDP port bound on [::] is refused");
	want_refused(busy, busy_port(IPPROTO_TCP, lo6, NULL),
		     "a port a process listens on at [::1] is refused on every address");
	p = busy_port(IPPROTO_TCP, lo6, "2001:db8::7");
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "but another IPv6 address of it is free");
	p = busy_port(IPPROTO_TCP, lo6, "192.0.2.7");
	T_EQ(nat_busy_check(busy, &p, NULL), 0, "and so is an IPv4 address of it");
out:
	nat_busy_free(busy);
	for (int fd, i = 0; i < 8; i++)
		if ((fd = (int[]){ fd_tcp4, fd_tcp6, fd_udp4, fd_udp6, fd_lo6, fd_udpc, fd_conn,
				   fd_acc }[i]) >= 0)
			close(fd);
}

/*
 * A kernel without sock_diag (inet_diag is optional, and off in some
 * embedded kernels): a seccomp filter makes socket(AF_NETLINK, ...,
 * NETLINK_SOCK_DIAG) fail as such a kernel does, and the same cases must hold
 * through /proc/net. The filter stays for the rest of the process: run last.
 */
static bool without_sock_diag(void)
{
#if defined(__x86_64__)
	const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
	const uint32_t arch = AUDIT_ARCH_AARCH64;
#else
	const uint32_t arch = 0;
#endif
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NETLINK_SOCK_DIAG, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPROTONOSUPPORT),
	};
	struct sock_fprog prog = { .len = ARRAY_SIZE(f), .filter = f };
	int fd;

	if (!arch || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return false;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == EPROTONOSUPPORT;
}

static void test_busy(void)
{
	busy_cases("through sock_diag");
	if (without_sock_diag())
		busy_cases("from /proc/net, as on a kernel without sock_diag");
	else
		T_OK(1, "host ports without sock_diag # SKIP no seccomp filter here");
}

int main(void)
{
	test_table_and_framing();
	test_chains();
	test_sets();
	test_rules();
	test_rules_svc();
	test_elems();
	test_get_elem();
	test_overflow();
	test_busy();
	return t_done();
}
