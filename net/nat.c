/* nat.c - table inet berth: masquerade, port maps, counters, self-healing (layout in nat.h). */
#include "net/nat.h"
#include "net/nft.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAM NFPROTO_INET
#define HEAL_DELAY_MS 100           /* a burst of foreign changes restores once */
#define SMALL_BATCH 8192            /* one port or network: a few elements */

/* 32-bit registers: a concatenation takes consecutive ones, 4 bytes per field. */
#define R(n) (NFT_REG32_00 + (n))
#define PRIO_RAW (-300)            /* NF_IP_PRI_RAW: before conntrack */
#define PRIO_DSTNAT (-100)          /* NF_IP_PRI_NAT_DST */
#define PRIO_SRCNAT 100             /* NF_IP_PRI_NAT_SRC */
#define CT_ORIGINAL 0               /* IP_CT_DIR_ORIGINAL */

/* A published port as nat keeps it, one per port of every container:
 * packed (the container's IPv4 address in 4 bytes, the families as flags)
 * and followed by its owner's name, exactly sized: ~72 bytes, not the 144
 * of a struct nat_port with its fixed owner buffer. */
struct port_ent {
	struct port_ent *next;
	struct nat_stats st;
	uint16_t host_port, container_port;
	uint8_t proto;
	uint8_t has;                /* HAS_ADDR4 | HAS_ADDR6 */
	struct ip_addr host_ip;     /* family 0: every local address */
	uint8_t addr4[4], addr6[16];
	char owner[];               /* the container, for messages */
};
#define HAS_ADDR4 1
#define HAS_ADDR6 2
/* Chains of about two entries: a bucket costs 4 bytes per port. */
#define PORTS_PER_BUCKET 2

/* The entry as the struct nat_port it was made from, but for its owner. */
static void ent_port(const struct port_ent *ent, struct nat_port *p)
{
	memset(p, 0, offsetof(struct nat_port, owner));
	p->owner[0] = '\0';
	p->host_ip = ent->host_ip;
	p->host_port = ent->host_port;
	p->container_port = ent->container_port;
	p->proto = ent->proto;
	if (ent->has & HAS_ADDR4)
		ip_from_bytes(&p->addr4, AF_INET, ent->addr4);
	if (ent->has & HAS_ADDR6)
		ip_from_bytes(&p->addr6, AF_INET6, ent->addr6);
}

/* Set the entry's target (what a new address of its container changes). */
static void ent_set_target(struct port_ent *ent, const struct nat_port *p)
{
	ent->container_port = p->container_port;
	ent->has = 0;
	memset(ent->addr4, 0, sizeof(ent->addr4));
	memset(ent->addr6, 0, sizeof(ent->addr6));
	if (p->addr4.family == AF_INET) {
		ent->has |= HAS_ADDR4;
		memcpy(ent->addr4, p->addr4.b, sizeof(ent->addr4));
	}
	if (p->addr6.family == AF_INET6) {
		ent->has |= HAS_ADDR6;
		memcpy(ent->addr6, p->addr6.b, sizeof(ent->addr6));
	}
}

struct net_ent {
	char bridge[16];
	struct ip_prefix s4, s6;
	bool masq;
};

struct nat {
	struct nl_sock sock;        /* requests, kept open (DESIGN §5 costs) */
	struct nl_sock ev;          /* NFNLGRP_NFTABLES; fd -1 without a loop */
	struct loop *loop;
	struct loop_fd ev_fd;
	struct loop_timer heal;
	nat_log_fn *log;
	void *log_ctx;
	bool live;                  /* the table is in the kernel (nat_sync ran) */
	uint32_t foreign;           /* port id of the last foreign change */
	bool seen_foreign;          /* ... since the heal timer was armed */
	uint64_t restores;
	ARRAY(struct net_ent) nets;
	struct port_ent **bucket;
	size_t n_bucket, n_ports;
	struct nat_part *parts;
};

static void say(struct nat *t, enum nat_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct nat *t, enum nat_log_level lvl, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX + 128];
	va_list ap;

	if (!t->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->log(t->log_ctx, lvl, msg);
}

/* ---- keys and values ----------------------------------------------------- */

static size_t addr_len(const struct ip_addr *a)
{
	return a->family == AF_INET6 ? 16 : 4;
}

/* proto . port, each field padded to 4 bytes (the registers' layout). */
static size_t put_proto_port(uint8_t *p, uint8_t proto, uint16_t port)
{
	memset(p, 0, 8);
	p[0] = proto;
	p[4] = (uint8_t)(port >> 8);
	p[5] = (uint8_t)port;
	return 8;
}

static size_t put_addr(uint8_t *p, const struct ip_addr *a)
{
	memcpy(p, a->b, addr_len(a));
	return addr_len(a);
}

static size_t put_addr_port(uint8_t *p, const struct ip_addr *a, uint16_t port)
{
	size_t n = put_addr(p, a);

	memset(p + n, 0, 4);
	p[n] = (uint8_t)(port >> 8);
	p[n + 1] = (uint8_t)port;
	return n + 4;
}

/* The elements of one port: map (or maps) and counter set, with names. */
struct port_elems {
	const char *map[2];
	struct nft_elem me[2];
	unsigned n_map;
	const char *cset;
	struct nft_elem ce;
};

static int port_elems(const struct nat_port *p, struct port_elems *pe, struct err *e)
{
	const struct ip_addr *to;

	memset(pe, 0, sizeof(*pe));
	if (!p->host_ip.family) {
		pe->ce.key_len = (uint8_t)put_proto_port(pe->ce.key, p->proto, p->host_port);
		pe->cset = "count";
		if (p->addr4.family) {
			struct nft_elem *m = &pe->me[pe->n_map];

			m->key_len = (uint8_t)put_proto_port(m->key, p->proto, p->host_port);
			m->data_len = (uint8_t)put_addr_port(m->data, &p->addr4, p->container_port);
			pe->map[pe->n_map++] = "ports4";
		}
		if (p->addr6.family) {
			struct nft_elem *m = &pe->me[pe->n_map];

			m->key_len = (uint8_t)put_proto_port(m->key, p->proto, p->host_port);
			m->data_len = (uint8_t)put_addr_port(m->data, &p->addr6, p->container_port);
			pe->map[pe->n_map++] = "ports6";
		}
		if (!pe->n_map)
			return err_set(e, EINVAL, "port %u/%s: the container has no address",
				       p->host_port, ip_proto_name(p->proto));
		return 0;
	}
	to = p->host_ip.family == AF_INET ? &p->addr4 : &p->addr6;
	if (!to->family) {
		char a[IP_STRLEN];

		return err_set(e, EINVAL, "port %s%s%s:%u/%s: the container has no %s address",
			       p->host_ip.family == AF_INET6 ? "[" : "", ip_format(&p->host_ip, a),
			       p->host_ip.family == AF_INET6 ? "]" : "", p->host_port,
			       ip_proto_name(p->proto), p->host_ip.family == AF_INET6 ? "IPv6" : "IPv4");
	}
	pe->me[0].key_len = (uint8_t)put_addr(pe->me[0].key, &p->host_ip);
	pe->me[0].key_len += (uint8_t)put_proto_port(pe->me[0].key + pe->me[0].key_len, p->proto,
						     p->host_port);
	pe->me[0].data_len = (uint8_t)put_addr_port(pe->me[0].data, to, p->container_port);
	pe->map[0] = p->host_ip.family == AF_INET ? "ports4_ip" : "ports6_ip";
	pe->n_map = 1;
	pe->ce.key_len = pe->me[0].key_len;
	memcpy(pe->ce.key, pe->me[0].key, pe->ce.key_len);
	pe->cset = p->host_ip.family == AF_INET ? "count4_ip" : "count6_ip";
	return 0;
}

static void put_port(struct nft_batch *b, const struct port_elems *pe, bool del, bool counter)
{
	for (unsigned i = 0; i < pe->n_map; i++)
		nft_put_elems(b, FAM, NAT_TABLE, pe->map[i], del, &pe->me[i], 1);
	if (counter)
		nft_put_elems(b, FAM, NAT_TABLE, pe->cset, del, &pe->ce, 1);
}

/* An interval [first, last] of a subnet as a start and an end element
 * (end = last + 1, flagged); n = 1 when the subnet reaches the top. */
static size_t subnet_elems(const struct ip_prefix *s, struct nft_elem el[2])
{
	struct ip_addr end;

	memset(el, 0, 2 * sizeof(*el));
	el[0].key_len = (uint8_t)put_addr(el[0].key, &s->addr);
	ip_prefix_last(s, &end);
	if (ip_add(&end, 1) < 0)
		return 1;
	el[1].key_len = (uint8_t)put_addr(el[1].key, &end);
	el[1].flags = NFT_SET_ELEM_INTERVAL_END;
	return 2;
}

static void put_network(struct nft_batch *b, const struct net_ent *n, bool del)
{
	struct nft_elem el[2], br = { .key_len = 16 };
	size_t k;

	memcpy(br.key, n->bridge, strnlen(n->bridge, sizeof(n->bridge)));
	nft_put_elems(b, FAM, NAT_TABLE, "bridges", del, &br, 1);
	if (n->s4.addr.family) {
		k = subnet_elems(&n->s4, el);
		nft_put_elems(b, FAM, NAT_TABLE, "subnets4", del, el, k);
		if (n->masq)
			nft_put_elems(b, FAM, NAT_TABLE, "masq4", del, el, k);
	}
	if (n->s6.addr.family) {
		k = subnet_elems(&n->s6, el);
		nft_put_elems(b, FAM, NAT_TABLE, "subnets6", del, el, k);
		if (n->masq)
			nft_put_elems(b, FAM, NAT_TABLE, "masq6", del, el, k);
	}
}

/* ---- the table ----------------------------------------------------------- */

static const struct nft_chain chains[] = {
	{ "guard_pre", "filter", NF_INET_PRE_ROUTING, PRIO_RAW, NF_ACCEPT },
	{ "dnat_pre", "nat", NF_INET_PRE_ROUTING, PRIO_DSTNAT, NF_ACCEPT },
	{ "dnat_out", "nat", NF_INET_LOCAL_OUT, PRIO_DSTNAT, NF_ACCEPT },
	{ "published", "", -1, 0, 0 },
	{ "snat_post", "nat", NF_INET_POST_ROUTING, PRIO_SRCNAT, NF_ACCEPT },
	{ "acct", "", -1, 0, 0 },
	{ "acct_in", "filter", NF_INET_LOCAL_IN, 300, NF_ACCEPT },
	{ "acct_post", "filter", NF_INET_POST_ROUTING, 300, NF_ACCEPT },
};

static void put_sets(struct nft_batch *b)
{
	static const uint32_t pp[] = { NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
	static const uint32_t ap4[] = { NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE };
	static const uint32_t ap6[] = { NFT_TYPE_IP6ADDR, NFT_TYPE_INET_SERVICE };
	static const uint32_t app4[] = { NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
	static const uint32_t app6[] = { NFT_TYPE_IP6ADDR, NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
#define SET(n, f, kt, kl, ...) { .name = n, .flags = (f), .key_type = (kt), .key_len = (kl), __VA_ARGS__ }
#define F2(a, b) .fields = { a, b }, .n_fields = 2
#define F3(a, b, c) .fields = { a, b, c }, .n_fields = 3
	struct nft_set s[] = {
		SET("bridges", 0, NFT_TYPE_IFNAME, 16, .key_byteorder = NFT_BYTEORDER_HOST),
		SET("subnets4", NFT_SET_INTERVAL, NFT_TYPE_IPADDR, 4),
		SET("subnets6", NFT_SET_INTERVAL, NFT_TYPE_IP6ADDR, 16),
		SET("masq4", NFT_SET_INTERVAL, NFT_TYPE_IPADDR, 4),
		SET("masq6", NFT_SET_INTERVAL, NFT_TYPE_IP6ADDR, 16),
		SET("ports4", NFT_SET_MAP | NFT_SET_CONCAT, nft_type_concat(pp, 2), 8, F2(1, 2),
		    .data_type = nft_type_concat(ap4, 2), .data_len = 8),
		SET("ports6", NFT_SET_MAP | NFT_SET_CONCAT, nft_type_concat(pp, 2), 8, F2(1, 2),
		    .data_type = nft_type_concat(ap6, 2), .data_len = 20),
		SET("ports4_ip", NFT_SET_MAP | NFT_SET_CONCAT, nft_type_concat(app4, 3), 12, F3(4, 1, 2),
		    .data_type = nft_type_concat(ap4, 2), .data_len = 8),
		SET("ports6_ip", NFT_SET_MAP | NFT_SET_CONCAT, nft_type_concat(app6, 3), 24, F3(16, 1, 2),
		    .data_type = nft_type_concat(ap6, 2), .data_len = 20),
		SET("count", NFT_SET_CONCAT, nft_type_concat(pp, 2), 8, F2(1, 2), .counter = true),
		SET("count4_ip", NFT_SET_CONCAT, nft_type_concat(app4, 3), 12, F3(4, 1, 2), .counter = true),
		SET("count6_ip", NFT_SET_CONCAT, nft_type_concat(app6, 3), 24, F3(16, 1, 2), .counter = true),
	};
#undef SET
#undef F2
#undef F3

	for (size_t i = 0; i < ARRAY_SIZE(s); i++)
		nft_put_set(b, FAM, NAT_TABLE, &s[i]);
}

#define RULE(chain, ...) do {							\
		const struct nft_expr r_[] = { __VA_ARGS__ };			\
		nft_put_rule(b, FAM, NAT_TABLE, chain, r_, ARRAY_SIZE(r_));	\
	} while (0)


void nat_mark_published(struct nft_expr *x)
{
	const struct nft_expr get = NFT_CT(NFT_CT_MARK, NFT_CT_DIR_NONE, NFT_REG32_00 + 8),
			      or = NFT_BITWISE(NFT_REG32_00 + 8, NFT_REG32_00 + 8, 4),
			      set = NFT_CT_SET(NFT_CT_MARK, NFT_REG32_00 + 8);
	uint32_t keep = ~NAT_CT_PUBLISHED, bit = NAT_CT_PUBLISHED;

	x[0] = get, x[1] = or, x[2] = set;
	memcpy(x[1].data, &keep, 4);        /* (mark & ~bit) ^ bit: mark | bit */
	memcpy(x[1].xor, &bit, 4);
}

static void put_rules(struct nft_batch *b)
{
	/* Host-order u32 constants, as the kernel keeps them in registers. */
	union { uint32_t u; uint8_t b[4]; } local = { RTN_LOCAL }, dnat = { 0x20 /* IPS_DST_NAT */ };
	struct nft_expr fib = NFT_FIB(NFT_FIB_RESULT_ADDRTYPE, NFTA_FIB_F_DADDR, NFT_REG_1);
	struct nft_expr is_local = NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 4, { 0 });
	struct nft_expr ct_status = NFT_CT(NFT_CT_STATUS, NFT_CT_DIR_NONE, NFT_REG_1);
	struct nft_expr mask = NFT_BITWISE(NFT_REG_1, NFT_REG_1, 4);
	struct nft_expr nonzero = NFT_CMP(NFT_CMP_NEQ, NFT_REG_1, 4, { 0 });

	memcpy(is_local.data, local.b, 4);
	memcpy(mask.data, dnat.b, 4);

	/* guard_pre: see nat.h on route_localnet */
	RULE("guard_pre", NFT_NFPROTO_IS(NFPROTO_IPV4), NFT_META(NFT_META_IIFNAME, NFT_REG_1),
	     NFT_CMP(NFT_CMP_NEQ, NFT_REG_1, 16, "lo"),
	     NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 16, 1, NFT_REG_1),
	     NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { 127 }), NFT_COUNTER(), NFT_VERDICT(NF_DROP, ""));
	RULE("guard_pre", NFT_NFPROTO_IS(NFPROTO_IPV4), NFT_META(NFT_META_IIFNAME, NFT_REG_1),
	     NFT_LOOKUP("bridges", NFT_REG_1, 0, 0),
	     NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 12, 1, NFT_REG_1),
	     NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { 127 }), NFT_COUNTER(), NFT_VERDICT(NF_DROP, ""));

	RULE("dnat_pre", fib, is_local, NFT_VERDICT(NFT_JUMP, "published"));
	RULE("dnat_out", fib, is_local, NFT_VERDICT(NFT_JUMP, "published"));

	/* published: address-specific ports first, then every-address ones;
	 * each marks its connection (ct mark |= NAT_CT_PUBLISHED, in a
	 * register the DNAT does not use) before the DNAT */
	struct nft_expr mark[3];

	nat_mark_published(mark);
	RULE("published", NFT_NFPROTO_IS(NFPROTO_IPV4),
	     NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, R(0)), NFT_L4PROTO(R(1)), NFT_TH_DPORT(R(2)),
	     NFT_LOOKUP("ports4_ip", R(0), NFT_REG_1, 0), mark[0], mark[1], mark[2],
	     NFT_NAT(NFT_NAT_DNAT, NFPROTO_IPV4, R(0), R(1)));
	RULE("published", NFT_NFPROTO_IS(NFPROTO_IPV4), NFT_L4PROTO(R(0)), NFT_TH_DPORT(R(1)),
	     NFT_LOOKUP("ports4", R(0), NFT_REG_1, 0), mark[0], mark[1], mark[2],
	     NFT_NAT(NFT_NAT_DNAT, NFPROTO_IPV4, R(0), R(1)));
	RULE("published", NFT_NFPROTO_IS(NFPROTO_IPV6),
	     NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, R(0)), NFT_L4PROTO(R(4)), NFT_TH_DPORT(R(5)),
	     NFT_LOOKUP("ports6_ip", R(0), NFT_REG_1, 0), mark[0], mark[1], mark[2],
	     NFT_NAT(NFT_NAT_DNAT, NFPROTO_IPV6, R(0), R(4)));
	RULE("published", NFT_NFPROTO_IS(NFPROTO_IPV6), NFT_L4PROTO(R(0)), NFT_TH_DPORT(R(1)),
	     NFT_LOOKUP("ports6", R(0), NFT_REG_1, 0), mark[0], mark[1], mark[2],
	     NFT_NAT(NFT_NAT_DNAT, NFPROTO_IPV6, R(0), R(4)));

	/* snat_post: hairpin, loopback sources, then outbound masquerade */
	for (int v6 = 0; v6 < 2; v6++) {
		uint8_t f = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
		uint32_t off = v6 ? 8 : 12, len = v6 ? 16 : 4;

		struct nft_expr in_subnets = NFT_LOOKUP("subnets4", NFT_REG_1, 0, 0);

		if (v6)
			snprintf(in_subnets.name, sizeof(in_subnets.name), "subnets6");
		RULE("snat_post", ct_status, mask, nonzero, NFT_NFPROTO_IS(f),
		     NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG_1), in_subnets,
		     NFT_META(NFT_META_OIFNAME, NFT_REG_1), NFT_LOOKUP("bridges", NFT_REG_1, 0, 0),
		     NFT_MASQ());
	}
	RULE("snat_post", ct_status, mask, nonzero, NFT_NFPROTO_IS(NFPROTO_IPV4),
	     NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 12, 1, NFT_REG_1),
	     NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { 127 }),
	     NFT_META(NFT_META_OIFNAME, NFT_REG_1), NFT_LOOKUP("bridges", NFT_REG_1, 0, 0),
	     NFT_MASQ());
	for (int v6 = 0; v6 < 2; v6++) {
		uint8_t f = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
		uint32_t off = v6 ? 8 : 12, len = v6 ? 16 : 4;
		struct nft_expr in_masq = NFT_LOOKUP("masq4", NFT_REG_1, 0, 0);

		if (v6)
			snprintf(in_masq.name, sizeof(in_masq.name), "masq6");
		RULE("snat_post", NFT_NFPROTO_IS(f), NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG_1),
		     in_masq,
		     NFT_META(NFT_META_OIFNAME, NFT_REG_1),
		     NFT_LOOKUP("bridges", NFT_REG_1, 0, NFT_LOOKUP_F_INV), NFT_MASQ());
	}

	/* accounting: every packet of a DNATed connection, at its original
	 * destination's element */
	RULE("acct_in", ct_status, mask, nonzero, NFT_VERDICT(NFT_JUMP, "acct"));
	RULE("acct_post", ct_status, mask, nonzero, NFT_VERDICT(NFT_JUMP, "acct"));
	RULE("acct", NFT_L4PROTO(R(0)), NFT_CT(NFT_CT_PROTO_DST, CT_ORIGINAL, R(1)),
	     NFT_LOOKUP("count", R(0), 0, 0));
	RULE("acct", NFT_NFPROTO_IS(NFPROTO_IPV4), NFT_CT(NFT_CT_DST_IP, CT_ORIGINAL, R(0)),
	     NFT_L4PROTO(R(1)), NFT_CT(NFT_CT_PROTO_DST, CT_ORIGINAL, R(2)),
	     NFT_LOOKUP("count4_ip", R(0), 0, 0));
	RULE("acct", NFT_NFPROTO_IS(NFPROTO_IPV6), NFT_CT(NFT_CT_DST_IP6, CT_ORIGINAL, R(0)),
	     NFT_L4PROTO(R(4)), NFT_CT(NFT_CT_PROTO_DST, CT_ORIGINAL, R(5)),
	     NFT_LOOKUP("count6_ip", R(0), 0, 0));
}

static const char *const port_sets[] = {
	"ports4", "ports6", "ports4_ip", "ports6_ip", "count", "count4_ip", "count6_ip",
};

/* The whole table into b: create (so that delete cannot fail), delete,
 * create again with everything. */
static void put_table(struct nat *t, struct nft_batch *b)
{
	nft_put_table(b, FAM, NAT_TABLE, 0);
	nft_put_del_table(b, FAM, NAT_TABLE);
	nft_put_table(b, FAM, NAT_TABLE, 0);
	for (size_t i = 0; i < ARRAY_SIZE(chains); i++)
		nft_put_chain(b, FAM, NAT_TABLE, &chains[i]);
	put_sets(b);
	put_rules(b);
	for (size_t i = 0; i < t->nets.n; i++)
		put_network(b, &t->nets.v[i], false);
	/* one stream of messages per set: 10,000 ports are ~40 messages */
	for (size_t s = 0; s < ARRAY_SIZE(port_sets); s++) {
		struct nft_elems_writer w;

		nft_elems_begin(&w, b, FAM, NAT_TABLE, port_sets[s], false);
		for (size_t i = 0; i < t->n_bucket; i++)
			for (struct port_ent *p = t->bucket[i]; p; p = p->next) {
				struct port_elems pe;
				struct nat_port np;

				ent_port(p, &np);
				if (port_elems(&np, &pe, NULL) < 0)
					continue;
				for (unsigned k = 0; k < pe.n_map; k++)
					if (!strcmp(pe.map[k], port_sets[s]))
						nft_elems_add(&w, &pe.me[k]);
				if (!strcmp(pe.cset, port_sets[s]))
					nft_elems_add(&w, &pe.ce);
			}
		nft_elems_end(&w);
	}
	for (struct nat_part *p = t->parts; p; p = p->next)
		p->build(b, p->ctx);
}

int nat_sync(struct nat *t, struct err *e)
{
	size_t cap = 65536 + t->n_ports * 512 + t->nets.n * 512;
	struct nft_batch b;
	int ret;

	for (;;) {
		if (nft_batch_init(&b, cap) < 0)
			return err_sys(e, ENOMEM, "nf_tables batch of %zu bytes", cap);
		put_table(t, &b);
		ret = nft_batch_send(&t->sock, &b, NULL, NULL, e);
		nft_batch_free(&b);
		if (ret != -EMSGSIZE || !b.m.overflow)
			break;
		cap *= 2;
	}
	if (ret < 0)
		return err_wrap(e, "create table inet %s", NAT_TABLE);
	t->live = true;
	return 0;
}

/* Send a small batch; a table that vanished (flushed by someone) is
 * restored from memory, which already holds the change. */
static int send_or_restore(struct nat *t, struct nft_batch *b, const char *what, struct err *e)
{
	int ret = nft_batch_send(&t->sock, b, NULL, NULL, e);

	if (ret == -ENOENT) {
		say(t, NAT_LOG_WARN, "nf_tables table inet %s is missing (%s): restoring it",
		      NAT_TABLE, e ? e->msg : "");
		t->restores++;
		return nat_sync(t, e);
	}
	return ret < 0 ? err_wrap(e, "%s", what) : 0;
}

int nat_batch_try(struct nat *t, struct nft_batch *b, struct err *e)
{
	return nft_batch_send(&t->sock, b, NULL, NULL, e);
}

bool nat_live(const struct nat *t)
{
	return t->live;
}

int nat_batch_send(struct nat *t, struct nft_batch *b, struct err *e)
{
	return send_or_restore(t, b, "nf_tables", e);
}

/* ---- networks ------------------------------------------------------------ */

static int write_localnet(const char *bridge, struct err *e)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/route_localnet", bridge);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, errno, "open %s", path);
	if (write(fd, "1\n", 2) != 2)
		ret = err_sys(e, errno, "write 1 to %s", path);
	close(fd);
	return ret;
}

static struct net_ent *net_find(struct nat *t, const char *bridge)
{
	for (size_t i = 0; i < t->nets.n; i++)
		if (!strcmp(t->nets.v[i].bridge, bridge))
			return &t->nets.v[i];
	return NULL;
}

int nat_network_set(struct nat *t, const struct nat_network *n, struct err *e)
{
	struct net_ent ne = { .masq = n->masquerade }, *old;
	struct nft_batch b;
	int ret;

	if (strlen(n->bridge) >= sizeof(ne.bridge))
		return err_set(e, EINVAL, "bridge name %s is too long", n->bridge);
	snprintf(ne.bridge, sizeof(ne.bridge), "%s", n->bridge);
	ne.s4 = n->subnet4;
	ne.s6 = n->subnet6;
	old = net_find(t, n->bridge);
	/* unchanged: the sysctl is not written again (a lookup in
	 * /proc/sys/net/ipv4/conf costs a step per network namespace) */
	if (old && !memcmp(old, &ne, sizeof(ne)) && !n->fresh)
		return 0;
	if (ne.s4.addr.family && (ret = write_localnet(n->bridge, e)) < 0)
		return err_wrap(e, "network on %s", n->bridge);
	if (old && !memcmp(old, &ne, sizeof(ne)))
		return 0;
	/* room first: once the kernel has the change, memory must take it too */
	if (!old && array_reserve(&t->nets, t->nets.n + 1) < 0)
		return err_sys(e, ENOMEM, "network %s", n->bridge);
	if (t->live) {
		if (nft_batch_init(&b, SMALL_BATCH) < 0)
			return err_sys(e, ENOMEM, "network %s", n->bridge);
		if (old)
			put_network(&b, old, true);
		put_network(&b, &ne, false);
		ret = nft_batch_send(&t->sock, &b, NULL, NULL, e);
		nft_batch_free(&b);
		if (ret == -ENOENT) {
			/* the table is gone: take the change and restore */
			if (old)
				*old = ne;
			else
				t->nets.v[t->nets.n++] = ne;
			t->restores++;
			say(t, NAT_LOG_WARN, "nf_tables table inet %s is missing: restoring it",
			      NAT_TABLE);
			return nat_sync(t, e);
		}
		if (ret < 0)
			return err_wrap(e, "masquerade and bridge set elements for %s", n->bridge);
	}
	if (old)
		*old = ne;
	else
		t->nets.v[t->nets.n++] = ne;
	return 0;
}

int nat_network_del(struct nat *t, const char *bridge, struct err *e)
{
	struct net_ent *old = net_find(t, bridge);
	struct nft_batch b;
	int ret = 0;

	if (!old)
		return 0;
	if (t->live) {
		if (nft_batch_init(&b, SMALL_BATCH) < 0)
			return err_sys(e, ENOMEM, "network %s", bridge);
		put_network(&b, old, true);
		ret = nft_batch_send(&t->sock, &b, NULL, NULL, e);
		nft_batch_free(&b);
	}
	*old = t->nets.v[--t->nets.n];
	if (ret == -ENOENT) {
		t->restores++;
		return nat_sync(t, e);
	}
	return ret < 0 ? err_wrap(e, "remove the elements of network %s", bridge) : 0;
}

/* ---- ports --------------------------------------------------------------- */

static size_t port_hash(const struct nat *t, const struct nat_port *p)
{
	uint32_t h = 2166136261u;
	uint8_t k[20] = { p->host_ip.family, p->proto, (uint8_t)(p->host_port >> 8),
			  (uint8_t)p->host_port };

	memcpy(k + 4, p->host_ip.b, 16);
	for (size_t i = 0; i < sizeof(k); i++)
		h = (h ^ k[i]) * 16777619u;
	return h & (t->n_bucket - 1);
}

static bool same_key(const struct port_ent *a, const struct nat_port *b)
{
	return a->proto == b->proto && a->host_port == b->host_port &&
	       a->host_ip.family == b->host_ip.family &&
	       (!a->host_ip.family || ip_equal(&a->host_ip, &b->host_ip));
}

static struct port_ent **port_slot(const struct nat *t, const struct nat_port *p)
{
	struct port_ent **pp;

	if (!t->n_bucket)
		return NULL;
	for (pp = &t->bucket[port_hash(t, p)]; *pp; pp = &(*pp)->next)
		if (same_key(*pp, p))
			return pp;
	return pp;
}

static int grow(struct nat *t)
{
	size_t n = t->n_bucket ? 2 * t->n_bucket : 256, old_n = t->n_bucket;
	struct port_ent **old = t->bucket, **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	t->bucket = nb;
	t->n_bucket = n;
	for (size_t i = 0; i < old_n; i++)
		for (struct port_ent *p = old[i], *next; p; p = next) {
			struct nat_port key;
			size_t h;

			ent_port(p, &key);
			h = port_hash(t, &key);

			next = p->next;
			p->next = nb[h];
			nb[h] = p;
		}
	free(old);
	return 0;
}

static bool same_target(const struct port_ent *ent, const struct nat_port *p)
{
	struct nat_port a;

	ent_port(ent, &a);
	return a.container_port == p->container_port && ip_cmp(&a.addr4, &p->addr4) == 0 &&
	       ip_cmp(&a.addr6, &p->addr6) == 0;
}

static const char *port_name(const struct nat_port *p, char *buf, size_t size)
{
	char a[IP_STRLEN];

	if (!p->host_ip.family)
		snprintf(buf, size, "%u/%s", p->host_port, ip_proto_name(p->proto));
	else
		snprintf(buf, size, "%s%s%s:%u/%s", p->host_ip.family == AF_INET6 ? "[" : "",
			 ip_format(&p->host_ip, a), p->host_ip.family == AF_INET6 ? "]" : "",
			 p->host_port, ip_proto_name(p->proto));
	return buf;
}

static const struct ip_addr v6_loopback = { AF_INET6, { [15] = 1 } };

int nat_port_add(struct nat *t, const struct nat_port *p, struct err *e)
{
	struct port_elems pe, old_pe;
	struct port_ent **slot, *ent;
	struct nat_port old;
	struct nft_batch b;
	char name[80];
	size_t owner_len = strnlen(p->owner, sizeof(p->owner) - 1);
	int ret;

	if (!p->host_port || !p->container_port)
		return err_set(e, EINVAL, "port 0 cannot be published");
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_SCTP)
		return err_set(e, EINVAL, "protocol %u: must be tcp, udp or sctp", p->proto);
	if (p->host_ip.family == AF_INET6 && ip_equal(&p->host_ip, &v6_loopback))
		return err_set(e, EINVAL, "port %s: IPv6 has no route_localnet, so a port "
			       "published on [::1] could never be reached; use 127.0.0.1",
			       port_name(p, name, sizeof(name)));
	if ((ret = port_elems(p, &pe, e)) < 0)
		return ret;
	if ((t->n_ports + 1 > PORTS_PER_BUCKET * t->n_bucket) && grow(t) < 0)
		return err_sys(e, ENOMEM, "publish %s", port_name(p, name, sizeof(name)));
	slot = port_slot(t, p);
	ent = *slot;
	if (ent && (strlen(ent->owner) != owner_len || memcmp(ent->owner, p->owner, owner_len)))
		return err_set(e, EADDRINUSE, "%s is already published by %s",
			       port_name(p, name, sizeof(name)), ent->owner);
	if (ent && same_target(ent, p))
		return 0;
	if (t->live) {
		if (nft_batch_init(&b, SMALL_BATCH) < 0)
			return err_sys(e, ENOMEM, "publish %s", port_name(p, name, sizeof(name)));
		if (ent)
			ent_port(ent, &old);
		if (ent && port_elems(&old, &old_pe, NULL) == 0)
			put_port(&b, &old_pe, true, false);     /* the counter stays */
		put_port(&b, &pe, false, !ent);
		ret = nft_batch_send(&t->sock, &b, NULL, NULL, e);
		nft_batch_free(&b);
		if (ret < 0 && ret != -ENOENT)
			return err_wrap(e, "publish %s", port_name(p, name, sizeof(name)));
	} else {
		ret = 0;
	}
	if (!ent) {
		ent = calloc(1, offsetof(struct port_ent, owner) + owner_len + 1);
		if (!ent)
			return err_sys(e, ENOMEM, "publish %s", port_name(p, name, sizeof(name)));
		ent->host_ip = p->host_ip;
		ent->host_port = p->host_port;
		ent->proto = p->proto;
		memcpy(ent->owner, p->owner, owner_len);
		*slot = ent;
		t->n_ports++;
	}
	ent_set_target(ent, p);
	if (ret == -ENOENT) {
		t->restores++;
		say(t, NAT_LOG_WARN, "nf_tables table inet %s is missing: restoring it", NAT_TABLE);
		return nat_sync(t, e);
	}
	return 0;
}

int nat_port_del(struct nat *t, const struct nat_port *p, struct err *e)
{
	struct port_ent **slot = port_slot(t, p), *ent;
	struct port_elems pe;
	struct nat_port cur;
	struct nft_batch b;
	char name[80];
	int ret = 0;

	if (!slot || !*slot)
		return 0;
	ent = *slot;
	ent_port(ent, &cur);
	if (t->live && port_elems(&cur, &pe, NULL) == 0) {
		if (nft_batch_init(&b, SMALL_BATCH) < 0)
			return err_sys(e, ENOMEM, "unpublish %s", port_name(p, name, sizeof(name)));
		put_port(&b, &pe, true, true);
		ret = nft_batch_send(&t->sock, &b, NULL, NULL, e);
		nft_batch_free(&b);
		if (ret < 0 && ret != -ENOENT)
			return err_wrap(e, "unpublish %s", port_name(p, name, sizeof(name)));
	}
	*slot = ent->next;
	free(ent);
	t->n_ports--;
	if (ret == -ENOENT) {
		/* the table or the element is gone: make the kernel match memory */
		t->restores++;
		if ((ret = nat_sync(t, e)) < 0)
			return ret;
	}
	return 1;
}

size_t nat_port_count(const struct nat *t)
{
	return t->n_ports;
}

uint64_t nat_restores(const struct nat *t)
{
	return t->restores;
}

/* ---- counters ------------------------------------------------------------ */

struct read_ctx {
	struct nat *t;
	int family;                 /* of the set's host address; 0: wildcard set */
};

static int counter_elem(void *ctx, const struct nft_elem *el)
{
	struct read_ctx *rc = ctx;
	struct nat_port k = { 0 };
	struct port_ent **slot;
	size_t off = 0;

	if (rc->family) {
		size_t n = rc->family == AF_INET6 ? 16 : 4;

		if (el->key_len != n + 8)
			return 0;
		ip_from_bytes(&k.host_ip, rc->family, el->key);
		off = n;
	} else if (el->key_len != 8) {
		return 0;
	}
	k.proto = el->key[off];
	k.host_port = (uint16_t)(el->key[off + 4] << 8 | el->key[off + 5]);
	slot = port_slot(rc->t, &k);
	if (slot && *slot) {
		(*slot)->st.packets = el->packets;
		(*slot)->st.bytes = el->bytes;
	}
	return 0;
}

static int counter_msg(const struct nlmsghdr *nlh, void *ctx)
{
	return nft_parse_elems(nlh, counter_elem, ctx);
}

int nat_counters_read(struct nat *t, struct err *e)
{
	static const struct { const char *set; int family; } sets[] = {
		{ "count", 0 }, { "count4_ip", AF_INET }, { "count6_ip", AF_INET6 },
	};
	uint8_t buf[512] __attribute__((aligned(8)));
	struct nl_msg m;

	if (!t->live)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		struct read_ctx rc = { t, sets[i].family };
		struct nl_handlers h = { .on_data = counter_msg, .ctx = &rc };

		nl_msg_init(&m, buf, sizeof(buf));
		nft_put_get_elems(&m, FAM, NAT_TABLE, sets[i].set);
		if (nl_talk(&t->sock, &m, &h, e) < 0)
			return err_wrap(e, "read the counters of set %s", sets[i].set);
	}
	return 0;
}

struct dump_ctx {
	nft_elem_fn *fn;
	void *ctx;
};

static int dump_msg(const struct nlmsghdr *nlh, void *ctx)
{
	struct dump_ctx *d = ctx;

	return nft_parse_elems(nlh, d->fn, d->ctx);
}

static int dump_missing_ok(unsigned index, int code, const char *ext, void *ctx)
{
	(void)index, (void)ext, (void)ctx;
	return code == ENOENT ? 0 : -code;
}

int nat_elems_dump(struct nat *t, uint8_t family, const char *set,
		   int (*fn)(void *ctx, const struct nft_elem *el), void *ctx, struct err *e)
{
	uint8_t buf[512] __attribute__((aligned(8)));
	struct dump_ctx d = { fn, ctx };
	struct nl_handlers h = { .on_data = dump_msg, .on_error = dump_missing_ok, .ctx = &d };
	struct nl_msg m;

	if (!t->live)
		return 0;
	nl_msg_init(&m, buf, sizeof(buf));
	nft_put_get_elems(&m, family, NAT_TABLE, set);
	if (nl_talk(&t->sock, &m, &h, e) < 0)
		return err_wrap(e, "read the elements of set %s", set);
	return 0;
}

int nat_port_stats(const struct nat *t, const struct nat_port *p, struct nat_stats *out)
{
	struct port_ent **slot = port_slot(t, p);

	if (!slot || !*slot)
		return -ENOENT;
	*out = (*slot)->st;
	return 0;
}

/* ---- self-healing -------------------------------------------------------- */

/* 1 if table inet berth exists, 0 if not, -errno. */
static int table_exists(struct nat *t)
{
	uint8_t buf[256] __attribute__((aligned(8)));
	struct nl_msg m;
	int ret;

	nl_msg_init(&m, buf, sizeof(buf));
	nl_nfmsg_start(&m, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_ACK, FAM);
	nl_put_str(&m, NFTA_TABLE_NAME, NAT_TABLE);
	ret = nl_talk(&t->sock, &m, NULL, NULL);
	return ret == -ENOENT ? 0 : ret < 0 ? ret : 1;
}

static void on_heal(struct loop_timer *tm)
{
	struct nat *t = container_of(tm, struct nat, heal);
	struct err e = { 0 };

	/* Lost events only (our own big batches can overflow the event
	 * socket): restore only if the table is gone, or we would loop. */
	if (!t->seen_foreign && table_exists(t) != 0)
		return;
	t->seen_foreign = false;
	t->restores++;
	if (nat_sync(t, &e) < 0) {
		say(t, NAT_LOG_ERROR, "restoring nf_tables table inet %s: %s", NAT_TABLE, e.msg);
		loop_timer_set(t->loop, &t->heal, 1000);    /* try again */
		return;
	}
	say(t, NAT_LOG_WARN, "nf_tables table inet %s was changed by another program "
	      "(netlink port id %u): restored it (%zu networks, %zu ports)", NAT_TABLE,
	      t->foreign, t->nets.n, t->n_ports);
}

static bool is_change(uint16_t msg)
{
	switch (msg) {
	case NFT_MSG_NEWTABLE: case NFT_MSG_DELTABLE:
	case NFT_MSG_NEWCHAIN: case NFT_MSG_DELCHAIN:
	case NFT_MSG_NEWRULE: case NFT_MSG_DELRULE:
	case NFT_MSG_NEWSET: case NFT_MSG_DELSET:
	case NFT_MSG_NEWSETELEM: case NFT_MSG_DELSETELEM:
	case NFT_MSG_NEWOBJ: case NFT_MSG_DELOBJ:
		return true;
	}
	return false;
}

static void on_event(struct loop_fd *f, uint32_t events)
{
	struct nat *t = container_of(f, struct nat, ev_fd);
	uint8_t buf[NL_RECV_BUF] __attribute__((aligned(8)));
	bool foreign = false, lost = false;

	(void)events;
	for (;;) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT);
		const struct nlmsghdr *nlh = (const void *)buf;
		size_t left;

		if (n < 0) {
			if (errno == ENOBUFS) {
				/* events were lost: check that the table is there */
				lost = true;
				continue;
			}
			break;
		}
		for (left = (size_t)n; nl_msg_ok(nlh, left);) {
			struct nft_head h;
			size_t step = NLMSG_ALIGN(nlh->nlmsg_len);

			if (nft_parse_head(nlh, &h) == 0 && h.family == FAM &&
			    !strcmp(h.table, NAT_TABLE) && is_change(h.msg) &&
			    nlh->nlmsg_pid != t->sock.portid) {
				foreign = true;
				t->foreign = nlh->nlmsg_pid;
			}
			if (step >= left)
				break;
			left -= step;
			nlh = (const void *)((const uint8_t *)nlh + step);
		}
	}
	if (foreign)
		t->seen_foreign = true;
	if ((foreign || lost) && t->live && !t->heal.pending)
		loop_timer_set(t->loop, &t->heal, HEAL_DELAY_MS);
}

/* ---- checks (CNI CHECK) --------------------------------------------------- */

/* These ask the kernel, never nat's memory: what CHECK must find out is
 * whether someone removed an element behind berth's back (a restore may
 * not have run yet, or may have failed). */

struct get_ctx {
	struct nft_elem *out;
	bool found;
};

static int got_elem(void *ctx, const struct nft_elem *el)
{
	struct get_ctx *g = ctx;

	if (!g->found)
		*g->out = *el;
	g->found = true;
	return 0;
}

static int got_msg(const struct nlmsghdr *nlh, void *ctx)
{
	return nft_parse_elems(nlh, got_elem, ctx);
}

int nat_elem_get(struct nat *t, uint8_t family, const char *set, const struct nft_elem *key,
		 struct nft_elem *out, struct err *e)
{
	uint8_t buf[512] __attribute__((aligned(8)));
	struct get_ctx g = { out, false };
	struct nl_handlers h = { .on_data = got_msg, .ctx = &g };
	struct nl_msg m;
	int ret;

	memset(out, 0, sizeof(*out));
	nl_msg_init(&m, buf, sizeof(buf));
	nft_put_get_elem(&m, family, NAT_TABLE, set, key);
	ret = nl_talk(&t->sock, &m, &h, e);
	if (ret == -ENOENT) {
		err_clear(e);
		return 0;
	}
	if (ret < 0)
		return err_wrap(e, "look up an element of set %s in table %s %s", set,
				family == NFPROTO_BRIDGE ? "bridge" : "inet", NAT_TABLE);
	if (!g.found)
		return err_set(e, EBADMSG, "set %s: the kernel acknowledged the lookup of an "
			       "element without sending it", set);
	return 1;
}

int nat_table_check(struct nat *t, struct err *e)
{
	int ret = table_exists(t);

	if (ret < 0)
		return err_sys(e, -ret, "look up table inet %s", NAT_TABLE);
	if (!ret)
		return err_set(e, ENOENT, "table inet %s is missing from the kernel", NAT_TABLE);
	return 0;
}

/* "10.88.0.2:80" or "[fd88::2]:80" from a map value (address . port). */
static const char *target_name(const uint8_t *d, size_t len, char *buf, size_t size)
{
	size_t n = len == 20 ? 16 : 4;
	char a[IP_STRLEN];
	struct ip_addr ip;

	if (len != 8 && len != 20) {
		snprintf(buf, size, "a value of %zu bytes", len);
		return buf;
	}
	ip_from_bytes(&ip, n == 16 ? AF_INET6 : AF_INET, d);
	snprintf(buf, size, "%s%s%s:%u", n == 16 ? "[" : "", ip_format(&ip, a), n == 16 ? "]" : "",
		 (unsigned)(d[n] << 8 | d[n + 1]));
	return buf;
}

int nat_port_check(struct nat *t, const struct nat_port *p, struct err *e)
{
	char name[80], want[IP_STRLEN + 16], have[IP_STRLEN + 16];
	struct port_elems pe;
	struct nft_elem got;
	struct err why = { 0 };
	int ret;

	port_name(p, name, sizeof(name));
	if (port_elems(p, &pe, &why) < 0)
		return err_set(e, EIO, "published port %s: berth has no element for it (%s)", name,
			       why.msg);
	for (unsigned i = 0; i < pe.n_map; i++) {
		if ((ret = nat_elem_get(t, FAM, pe.map[i], &pe.me[i], &got, e)) < 0)
			return err_wrap(e, "published port %s", name);
		if (!ret)
			return err_set(e, ENOENT, "published port %s: its element in %s is missing "
				       "from table inet %s", name, pe.map[i], NAT_TABLE);
		if (got.has_verdict || got.data_len != pe.me[i].data_len ||
		    memcmp(got.data, pe.me[i].data, got.data_len))
			return err_set(e, EIO, "published port %s: its element in %s leads to %s, "
				       "not to %s (container %s)", name, pe.map[i],
				       target_name(got.data, got.data_len, have, sizeof(have)),
				       target_name(pe.me[i].data, pe.me[i].data_len, want, sizeof(want)),
				       p->owner);
	}
	if ((ret = nat_elem_get(t, FAM, pe.cset, &pe.ce, &got, e)) < 0)
		return err_wrap(e, "published port %s", name);
	if (!ret)
		return err_set(e, ENOENT, "published port %s: its counter element in %s is missing "
			       "from table inet %s", name, pe.cset, NAT_TABLE);
	return 0;
}

/* ---- open / close -------------------------------------------------------- */

int nat_open(struct nat **out, struct loop *l, nat_log_fn *log, void *log_ctx, struct err *e)
{
	unsigned group = NFNLGRP_NFTABLES;
	struct nat *t;
	int ret;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return err_sys(e, ENOMEM, "nat_open");
	t->sock.fd = t->ev.fd = t->ev_fd.fd = -1;
	t->log = log;
	t->log_ctx = log_ctx;
	if ((ret = nl_open(&t->sock, NETLINK_NETFILTER, e)) < 0)
		goto err;
	if (l) {
		t->loop = l;
		if ((ret = nl_open(&t->ev, NETLINK_NETFILTER, e)) < 0)
			goto err;
		if (setsockopt(t->ev.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
			       sizeof(group)) < 0) {
			ret = err_sys(e, errno, "join the nf_tables event group");
			goto err;
		}
		if (fcntl(t->ev.fd, F_SETFL, fcntl(t->ev.fd, F_GETFL) | O_NONBLOCK) < 0) {
			ret = err_sys(e, errno, "nf_tables event socket");
			goto err;
		}
		t->ev_fd.fd = t->ev.fd;
		t->ev_fd.cb = on_event;
		t->heal.cb = on_heal;
		if ((ret = loop_fd_add(l, &t->ev_fd, EPOLLIN, e)) < 0)
			goto err;
	}
	*out = t;
	return 0;
err:
	nl_close(&t->ev);
	nl_close(&t->sock);
	free(t);
	return ret;
}

void nat_add_part(struct nat *t, struct nat_part *p)
{
	p->next = t->parts;
	t->parts = p;
}

void nat_close(struct nat *t, bool keep_table)
{
	struct nft_batch b;

	if (!t)
		return;
	if (t->loop) {
		loop_timer_cancel(t->loop, &t->heal);
		if (t->ev_fd.registered)
			loop_fd_del(t->loop, &t->ev_fd);
	}
	if (t->live && !keep_table && nft_batch_init(&b, 1024) == 0) {
		nft_put_table(&b, FAM, NAT_TABLE, 0);   /* so that the delete cannot fail */
		nft_put_del_table(&b, FAM, NAT_TABLE);
		(void)nft_batch_send(&t->sock, &b, NULL, NULL, NULL);
		nft_batch_free(&b);
	}
	nl_close(&t->ev);
	nl_close(&t->sock);
	for (size_t i = 0; i < t->n_bucket; i++)
		for (struct port_ent *p = t->bucket[i], *next; p; p = next) {
			next = p->next;
			free(p);
		}
	free(t->bucket);
	array_free(&t->nets);
	free(t);
}

/* ---- host ports in use --------------------------------------------------- */

struct sock_ent {
	uint8_t proto;
	uint16_t port;
	struct ip_addr addr;        /* family 0: any (sctp) */
	unsigned long inode;
};

struct nat_busy {
	struct sock_ent *v;
	size_t n, cap;
};

static int busy_push(struct nat_busy *b, const struct sock_ent *s)
{
	struct sock_ent *slot = array_push(b);

	if (!slot)
		return -ENOMEM;
	*slot = *s;
	return 0;
}

/* "0100007F:1F90" (v4) or 32 hex digits (v6): each group of 8 is one u32 as
 * the kernel printed it from memory, so it goes back into memory as is. */
static bool parse_hex_addr(const char *s, int family, struct ip_addr *a, uint16_t *port)
{
	size_t n = family == AF_INET6 ? 4 : 1;
	uint8_t bytes[16];
	char grp[9];
	unsigned long v;
	char *end;

	for (size_t i = 0; i < n; i++) {
		uint32_t u;

		memcpy(grp, s + 8 * i, 8);
		grp[8] = '\0';
		v = strtoul(grp, &end, 16);
		if (*end)
			return false;
		u = (uint32_t)v;
		memcpy(bytes + 4 * i, &u, 4);
	}
	if (s[8 * n] != ':')
		return false;
	v = strtoul(s + 8 * n + 1, &end, 16);
	if (v > 65535)
		return false;
	ip_from_bytes(a, family, bytes);
	*port = (uint16_t)v;
	return true;
}

/* The fallback for a kernel without inet_diag: the text tables. */
static int load_inet_proc(struct nat_busy *b, const char *path, uint8_t proto, int family)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int ret = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (!fgets(line, sizeof(line), f)) {       /* the header */
		fclose(f);
		return 0;
	}
	while (ret == 0 && fgets(line, sizeof(line), f)) {
		char local[64], remote[64];
		unsigned st, uid, timeout;
		unsigned long inode;
		struct sock_ent s = { .proto = proto };

		if (sscanf(line, " %*s %63s %63s %x %*s %*s %*s %u %u %lu", local, remote, &st, &uid,
			   &timeout, &inode) != 6)
			continue;
		if (proto == IPPROTO_TCP && st != 0x0A)        /* TCP_LISTEN */
			continue;
		if (proto == IPPROTO_UDP && st != 0x07)        /* unconnected */
			continue;
		if (!parse_hex_addr(local, family, &s.addr, &s.port))
			continue;
		s.inode = inode;
		ret = busy_push(b, &s);
	}
	fclose(f);
	return ret;
}

/*
 * The same sockets through NETLINK_SOCK_DIAG (what `ss -tl` uses), because
 * /proc/net/tcp walks the whole established hash, sized by the machine's
 * memory rather than by its sockets, and formats every connection as text:
 * milliseconds of kernel time per read on a large host. A dump with
 * idiag_states = TCP_LISTEN walks only the listening hash; UDP asks for
 * TCP_CLOSE, the unconnected sockets (state 07 in /proc/net/udp). The socket
 * sees the netns of the thread that opens it, as /proc/net does.
 */
struct diag_dump {
	struct nat_busy *b;
	uint8_t proto;
	int family;
};

static int diag_sock(const struct nlmsghdr *nlh, void *ctx)
{
	struct diag_dump *d = ctx;
	const struct inet_diag_msg *m = NLMSG_DATA(nlh);
	struct sock_ent s = { .proto = d->proto };

	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return 0;
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EBADMSG;
	if (m->idiag_family != d->family)
		return 0;
	ip_from_bytes(&s.addr, d->family, m->id.idiag_src);
	s.port = ntohs(m->id.idiag_sport);
	s.inode = m->idiag_inode;
	return busy_push(d->b, &s);
}

static int load_inet_diag(struct nat_busy *b, struct nl_sock *sk, uint8_t proto, int family,
			  struct err *e)
{
	struct diag_dump d = { .b = b, .proto = proto, .family = family };
	struct nl_handlers h = { .on_data = diag_sock, .ctx = &d };
	struct inet_diag_req_v2 *req;
	uint8_t buf[128] __attribute__((aligned(8)));
	struct nl_msg m;

	nl_msg_init(&m, buf, sizeof(buf));
	nl_msg_start(&m, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP);
	req = nl_msg_put_header(&m, sizeof(*req));
	if (req) {
		req->sdiag_family = (uint8_t)family;
		req->sdiag_protocol = proto;
		req->idiag_states = proto == IPPROTO_TCP ? 1u << TCP_LISTEN : 1u << TCP_CLOSE;
	}
	return nl_talk(sk, &m, &h, e);
}

static int load_sctp(struct nat_busy *b)
{
	FILE *f = fopen("/proc/net/sctp/eps", "re");
	char line[512];
	int ret = 0;

	if (!f)
		return 0;                   /* no sctp module: nothing listens */
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	while (ret == 0 && fgets(line, sizeof(line), f)) {
		struct sock_ent s = { .proto = IPPROTO_SCTP };
		unsigned port, uid;
		unsigned long inode;

		/* ENDPT SOCK STY SST HBKT LPORT UID INODE LADDRS */
		if (sscanf(line, " %*s %*s %*s %*s %*s %u %u %lu", &port, &uid, &inode) != 3 ||
		    port > 65535)
			continue;
		s.port = (uint16_t)port;
		s.inode = inode;
		ret = busy_push(b, &s);
	}
	fclose(f);
	return ret;
}

int nat_busy_load(struct nat_busy **out, struct err *e)
{
	static const struct { const char *path; uint8_t proto; int family; } tables[] = {
		{ "/proc/net/tcp", IPPROTO_TCP, AF_INET }, { "/proc/net/tcp6", IPPROTO_TCP, AF_INET6 },
		{ "/proc/net/udp", IPPROTO_UDP, AF_INET }, { "/proc/net/udp6", IPPROTO_UDP, AF_INET6 },
	};
	/* A kernel without inet_diag (or its tcp or udp part) answers ENOENT,
	 * after trying to load the module; remembered so that each check does
	 * not start modprobe again. */
	static bool no_diag[ARRAY_SIZE(tables)];
	struct nl_sock sk = { .fd = -1 };
	struct nat_busy *b = calloc(1, sizeof(*b));
	struct err de = { 0 };
	int ret = 0;

	*out = NULL;
	if (!b)
		return err_sys(e, ENOMEM, "host sockets");
	if (nl_open(&sk, NETLINK_SOCK_DIAG, &de) < 0) {
		if (de.code != EPROTONOSUPPORT) {
			ret = err_set(e, de.code, "host sockets: %s", de.msg);
			goto out;
		}
		for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
			no_diag[i] = true;
	}
	for (size_t i = 0; ret == 0 && i < ARRAY_SIZE(tables); i++) {
		if (!no_diag[i]) {
			size_t n = b->n;

			ret = load_inet_diag(b, &sk, tables[i].proto, tables[i].family, &de);
			if (ret == -ENOENT) {
				b->n = n;
				no_diag[i] = true;
				ret = 0;
			} else if (ret < 0) {
				err_set(e, de.code, "list %s sockets (sock_diag): %s",
					tables[i].path + strlen("/proc/net/"), de.msg);
				break;
			}
		}
		if (no_diag[i] &&
		    (ret = load_inet_proc(b, tables[i].path, tables[i].proto, tables[i].family)) < 0)
			err_sys(e, -ret, "read %s", tables[i].path);
	}
	if (ret == 0 && (ret = load_sctp(b)) < 0)
		err_sys(e, -ret, "read /proc/net/sctp/eps");
out:
	nl_close(&sk);
	if (ret < 0) {
		nat_busy_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

void nat_busy_free(struct nat_busy *b)
{
	if (!b)
		return;
	free(b->v);
	free(b);
}

static bool overlaps(const struct sock_ent *s, const struct nat_port *p)
{
	if (s->proto != p->proto || s->port != p->host_port)
		return false;
	if (!p->host_ip.family || !s->addr.family || ip_is_zero(&s->addr))
		return true;
	return ip_equal(&s->addr, &p->host_ip);
}

/* Which process holds socket inode: "nginx (pid 412)", or a fallback. */
static void socket_owner(unsigned long inode, char *out, size_t size)
{
	char want[64], path[640], link[64];
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *pd, *fd;

	snprintf(out, size, "a process (socket inode %lu)", inode);
	if (!proc)
		return;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while ((pd = readdir(proc))) {
		if (pd->d_name[0] < '1' || pd->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pd->d_name);
		if (!(fds = opendir(path)))
			continue;
		while ((fd = readdir(fds))) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", pd->d_name, fd->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want))
				continue;
			char comm[64] = "?";
			FILE *f;

			snprintf(path, sizeof(path), "/proc/%s/comm", pd->d_name);
			if ((f = fopen(path, "re"))) {
				if (fgets(comm, sizeof(comm), f))
					comm[strcspn(comm, "\n")] = '\0';
				fclose(f);
			}
			snprintf(out, size, "%.63s (pid %.20s)", comm, pd->d_name);
			closedir(fds);
			closedir(proc);
			return;
		}
		closedir(fds);
	}
	closedir(proc);
}

int nat_busy_check(const struct nat_busy *b, const struct nat_port *p, struct err *e)
{
	char name[80], who[128];

	for (size_t i = 0; b && i < b->n; i++) {
		if (!overlaps(&b->v[i], p))
			continue;
		socket_owner(b->v[i].inode, who, sizeof(who));
		return err_set(e, EADDRINUSE, "port %s is in use on the host by %s",
			       port_name(p, name, sizeof(name)), who);
	}
	return 0;
}
