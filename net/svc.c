/* svc.c - services' virtual IPs in table inet berth (layout in svc.h). */
#include "net/svc.h"
#include "net/nat.h"
#include "net/nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define FAM NFPROTO_INET
#define PRIO_DSTNAT (-100)          /* with nat.c's dnat_pre/dnat_out */
#define PRIO_REJECT (-10)           /* before the firewall's filter chains (0) */
#define R(n) (NFT_REG32_00 + (n))
#define SMALL_BATCH 16384

/*
 * Per service ID, per family F (4 or 6) that has ready backends:
 *   svcb-ID-F    map mark : ipv4_addr/ipv6_addr, index -> backend
 *   svca-ID-F    map addr : addr, dynamic, timeout: client -> backend
 *                (with affinity only; its elements carry their timeout, so
 *                a new affinity timeout does not change the set)
 *   svc-ID-P-F   the chain of port index P
 * The service's elements live in the shared maps: svc4/svc6 (its VIP's
 * ports with backends), svc_empty4/6 (those without), svcp4/6 and
 * svcp4_ip/6_ip (published ports).
 */

struct svc_ent {
	struct svc_ent *next;
	uint32_t id;
	char name[SVC_NAME_MAX];
	struct ip_addr vip4, vip6;
	struct svc_port ports[SVC_PORTS_MAX];
	size_t n_ports;
	struct ip_addr *be[2];      /* [0] IPv4, [1] IPv6: sorted, no duplicates */
	size_t n_be[2];
	enum svc_pick pick;
	uint32_t affinity_s;
	struct svc_publish *pub;
	size_t n_pub;
};

struct svc {
	struct nat *nat;
	struct nat_part part;
	struct svc_ent *list;
	size_t n;
	uint32_t next_id;
	bool no_destroy;            /* the kernel lacks DESTROYSETELEM (before 6.3) */
};

static const int fams[2] = { AF_INET, AF_INET6 };

static size_t alen(int v6)
{
	return v6 ? 16 : 4;
}

/* ---- names ---------------------------------------------------------------- */

static void chain_name(const struct svc_ent *s, size_t p, int v6, char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "svc-%u-%zu-%d", s->id, p, v6 ? 6 : 4);
}

static void be_map(const struct svc_ent *s, int v6, char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "svcb-%u-%d", s->id, v6 ? 6 : 4);
}

static void aff_map(const struct svc_ent *s, int v6, char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "svca-%u-%d", s->id, v6 ? 6 : 4);
}

/* The chain that records a new connection's backend in the affinity map. */
static void rec_chain(const struct svc_ent *s, int v6, char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "svcr-%u-%d", s->id, v6 ? 6 : 4);
}

/* The family has chains: it has ready backends. */
static bool active(const struct svc_ent *s, int v6)
{
	return s && s->n_be[v6] > 0;
}

static bool has_aff(const struct svc_ent *s, int v6)
{
	return active(s, v6) && s->affinity_s > 0;
}

/* ---- the fixed part ------------------------------------------------------- */

static void put_base(struct nft_batch *b)
{
	static const uint32_t app4[] = { NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
	static const uint32_t app6[] = { NFT_TYPE_IP6ADDR, NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
	static const uint32_t pp[] = { NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE };
	static const struct nft_chain chains[] = {
		{ "svc_pre", "nat", NF_INET_PRE_ROUTING, PRIO_DSTNAT, NF_ACCEPT },
		{ "svc_out", "nat", NF_INET_LOCAL_OUT, PRIO_DSTNAT, NF_ACCEPT },
		{ "svc_pub", "", -1, 0, 0 },
		{ "svc_rej_fwd", "filter", NF_INET_FORWARD, PRIO_REJECT, NF_ACCEPT },
		{ "svc_rej_out", "filter", NF_INET_LOCAL_OUT, PRIO_REJECT, NF_ACCEPT },
		{ "svc_aff_fwd", "filter", NF_INET_FORWARD, PRIO_REJECT, NF_ACCEPT },
		{ "svc_aff_out", "filter", NF_INET_LOCAL_OUT, PRIO_REJECT, NF_ACCEPT },
	};
#define SET(n, f, kt, kl, ...) { .name = n, .flags = (f), .key_type = (kt), .key_len = (kl), __VA_ARGS__ }
#define F2(a, b) .fields = { a, b }, .n_fields = 2
#define F3(a, b, c) .fields = { a, b, c }, .n_fields = 3
#define VMAP NFT_SET_MAP | NFT_SET_CONCAT
	struct nft_set s[] = {
		SET("svc4", VMAP, nft_type_concat(app4, 3), 12, F3(4, 1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svc6", VMAP, nft_type_concat(app6, 3), 24, F3(16, 1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svc_empty4", NFT_SET_CONCAT, nft_type_concat(app4, 3), 12, F3(4, 1, 2)),
		SET("svc_empty6", NFT_SET_CONCAT, nft_type_concat(app6, 3), 24, F3(16, 1, 2)),
		SET("svcp4", VMAP, nft_type_concat(pp, 2), 8, F2(1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcp6", VMAP, nft_type_concat(pp, 2), 8, F2(1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcp4_ip", VMAP, nft_type_concat(app4, 3), 12, F3(4, 1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcp6_ip", VMAP, nft_type_concat(app6, 3), 24, F3(16, 1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcaff4", VMAP, nft_type_concat(app4, 3), 12, F3(4, 1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcaff6", VMAP, nft_type_concat(app6, 3), 24, F3(16, 1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcaffp4", VMAP, nft_type_concat(pp, 2), 8, F2(1, 2), .data_type = NFT_DATA_VERDICT),
		SET("svcaffp6", VMAP, nft_type_concat(pp, 2), 8, F2(1, 2), .data_type = NFT_DATA_VERDICT),
	};
#undef SET
#undef F2
#undef F3
#undef VMAP
	union { uint32_t u; uint8_t b[4]; } local = { RTN_LOCAL }, dnat = { 0x20 /* IPS_DST_NAT */ },
		new = { NF_CT_STATE_BIT(IP_CT_NEW) };
	struct nft_expr is_local = NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 4, { 0 });
	struct nft_expr ct_status = NFT_CT(NFT_CT_STATUS, NFT_CT_DIR_NONE, NFT_REG_1);
	struct nft_expr ct_state = NFT_CT(NFT_CT_STATE, NFT_CT_DIR_NONE, NFT_REG_1);
	struct nft_expr m_dnat = NFT_BITWISE(NFT_REG_1, NFT_REG_1, 4);
	struct nft_expr m_new = NFT_BITWISE(NFT_REG_1, NFT_REG_1, 4);
	struct nft_expr nonzero = NFT_CMP(NFT_CMP_NEQ, NFT_REG_1, 4, { 0 });

	memcpy(is_local.data, local.b, 4);
	memcpy(m_dnat.data, dnat.b, 4);
	memcpy(m_new.data, new.b, 4);
	for (size_t i = 0; i < ARRAY_SIZE(s); i++)
		nft_put_set(b, FAM, NAT_TABLE, &s[i]);
	for (size_t i = 0; i < ARRAY_SIZE(chains); i++)
		nft_put_chain(b, FAM, NAT_TABLE, &chains[i]);

#define RULE(chain, ...) do {							\
		const struct nft_expr r_[] = { __VA_ARGS__ };			\
		nft_put_rule(b, FAM, NAT_TABLE, chain, r_, ARRAY_SIZE(r_));	\
	} while (0)
#define DADDR4(r) NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, r)
#define DADDR6(r) NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, 24, 16, r)
	/* one lookup per family whatever the number of services */
	for (int out = 0; out < 2; out++) {
		const char *c = out ? "svc_out" : "svc_pre";

		RULE(c, NFT_NFPROTO_IS(NFPROTO_IPV4), DADDR4(R(0)), NFT_L4PROTO(R(1)), NFT_TH_DPORT(R(2)),
		     NFT_VMAP("svc4", R(0)));
		RULE(c, NFT_NFPROTO_IS(NFPROTO_IPV6), DADDR6(R(0)), NFT_L4PROTO(R(4)), NFT_TH_DPORT(R(5)),
		     NFT_VMAP("svc6", R(0)));
		RULE(c, NFT_FIB(NFT_FIB_RESULT_ADDRTYPE, NFTA_FIB_F_DADDR, NFT_REG_1), is_local,
		     NFT_VERDICT(NFT_JUMP, "svc_pub"));
	}
	/* published: the connection is marked as nat.c's published ports mark
	 * theirs (the firewall judges it as from world, and svc_aff_* tells
	 * it from a VIP's), then address-specific ports first */
	struct nft_expr mark[3];
	struct nft_expr mark_bit = NFT_BITWISE(NFT_REG_1, NFT_REG_1, 4);
	struct nft_expr ct_mark = NFT_CT(NFT_CT_MARK, NFT_CT_DIR_NONE, NFT_REG_1);
	uint32_t bit = NAT_CT_PUBLISHED;

	memcpy(mark_bit.data, &bit, 4);
	nat_mark_published(mark);
	RULE("svc_pub", mark[0], mark[1], mark[2]);
	RULE("svc_pub", NFT_NFPROTO_IS(NFPROTO_IPV4), DADDR4(R(0)), NFT_L4PROTO(R(1)), NFT_TH_DPORT(R(2)),
	     NFT_VMAP("svcp4_ip", R(0)));
	RULE("svc_pub", NFT_NFPROTO_IS(NFPROTO_IPV4), NFT_L4PROTO(R(0)), NFT_TH_DPORT(R(1)), NFT_VMAP("svcp4", R(0)));
	RULE("svc_pub", NFT_NFPROTO_IS(NFPROTO_IPV6), DADDR6(R(0)), NFT_L4PROTO(R(4)), NFT_TH_DPORT(R(5)),
	     NFT_VMAP("svcp6_ip", R(0)));
	RULE("svc_pub", NFT_NFPROTO_IS(NFPROTO_IPV6), NFT_L4PROTO(R(0)), NFT_TH_DPORT(R(1)), NFT_VMAP("svcp6", R(0)));
	/* services with no ready backend: refused at once */
	for (int out = 0; out < 2; out++) {
		const char *c = out ? "svc_rej_out" : "svc_rej_fwd";

		RULE(c, NFT_NFPROTO_IS(NFPROTO_IPV4), DADDR4(R(0)), NFT_L4PROTO(R(1)), NFT_TH_DPORT(R(2)),
		     NFT_LOOKUP("svc_empty4", R(0), 0, 0), NFT_CMP(NFT_CMP_EQ, R(1), 1, { IPPROTO_TCP }),
		     NFT_REJECT(NFT_REJECT_TCP_RST, 0));
		RULE(c, NFT_NFPROTO_IS(NFPROTO_IPV4), DADDR4(R(0)), NFT_L4PROTO(R(1)), NFT_TH_DPORT(R(2)),
		     NFT_LOOKUP("svc_empty4", R(0), 0, 0),
		     NFT_REJECT(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH));
		RULE(c, NFT_NFPROTO_IS(NFPROTO_IPV6), DADDR6(R(0)), NFT_L4PROTO(R(4)), NFT_TH_DPORT(R(5)),
		     NFT_LOOKUP("svc_empty6", R(0), 0, 0), NFT_CMP(NFT_CMP_EQ, R(4), 1, { IPPROTO_TCP }),
		     NFT_REJECT(NFT_REJECT_TCP_RST, 0));
		RULE(c, NFT_NFPROTO_IS(NFPROTO_IPV6), DADDR6(R(0)), NFT_L4PROTO(R(4)), NFT_TH_DPORT(R(5)),
		     NFT_LOOKUP("svc_empty6", R(0), 0, 0),
		     NFT_REJECT(NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH));
	}
	/* affinity: a new DNATed connection of a service with affinity
	 * records its backend (the destination, after DNAT) for its client,
	 * keyed by where it was going (one lookup per new connection) */
	for (int out = 0; out < 2; out++) {
		const char *c = out ? "svc_aff_out" : "svc_aff_fwd";

		RULE(c, ct_state, m_new, nonzero, ct_status, m_dnat, nonzero, NFT_NFPROTO_IS(NFPROTO_IPV4),
		     NFT_CT(NFT_CT_DST_IP, IP_CT_DIR_ORIGINAL, R(0)), NFT_L4PROTO(R(1)),
		     NFT_CT(NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, R(2)), NFT_VMAP("svcaff4", R(0)));
		RULE(c, ct_state, m_new, nonzero, ct_status, m_dnat, nonzero, NFT_NFPROTO_IS(NFPROTO_IPV6),
		     NFT_CT(NFT_CT_DST_IP6, IP_CT_DIR_ORIGINAL, R(0)), NFT_L4PROTO(R(4)),
		     NFT_CT(NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, R(5)), NFT_VMAP("svcaff6", R(0)));
		/* a port published on every address: its original destination
		 * was a local address (the mark svc_pub gave it), any of them */
		RULE(c, ct_state, m_new, nonzero, ct_status, m_dnat, nonzero, ct_mark, mark_bit,
		     nonzero, NFT_NFPROTO_IS(NFPROTO_IPV4), NFT_L4PROTO(R(0)),
		     NFT_CT(NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, R(1)), NFT_VMAP("svcaffp4", R(0)));
		RULE(c, ct_state, m_new, nonzero, ct_status, m_dnat, nonzero, ct_mark, mark_bit,
		     nonzero, NFT_NFPROTO_IS(NFPROTO_IPV6), NFT_L4PROTO(R(0)),
		     NFT_CT(NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, R(1)), NFT_VMAP("svcaffp6", R(0)));
	}
#undef RULE
}

/* ---- a service's objects ------------------------------------------------- */

static void put_svc_sets(struct nft_batch *b, const struct svc_ent *s, int v6)
{
	uint32_t at = v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR, l = (uint32_t)alen(v6);
	struct nft_set be = { .flags = NFT_SET_MAP, .key_type = NFT_TYPE_MARK, .key_len = 4,
			      .data_type = at, .data_len = l, .key_byteorder = NFT_BYTEORDER_HOST };
	struct nft_set aff = { .flags = NFT_SET_MAP | NFT_SET_EVAL | NFT_SET_TIMEOUT, .key_type = at,
			       .key_len = l, .data_type = at, .data_len = l };

	be_map(s, v6, be.name);
	nft_put_set(b, FAM, NAT_TABLE, &be);
	if (has_aff(s, v6)) {
		struct nft_chain c = { .hook = -1 };
		uint8_t nfp = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
		const struct nft_expr r[] = {
			NFT_META(NFT_META_NFPROTO, NFT_REG_1), NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { nfp }),
			NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, (uint8_t)l, NFT_REG_1),
			NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, (uint8_t)l, NFT_REG_2),
			NFT_DYNSET(NFT_DYNSET_OP_UPDATE, "", NFT_REG_1, NFT_REG_2,
				   (uint64_t)s->affinity_s * 1000),
		};
		struct nft_expr *up = (struct nft_expr *)&r[4];

		aff_map(s, v6, aff.name);
		nft_put_set(b, FAM, NAT_TABLE, &aff);
		/* update: adds the client, or refreshes its timeout */
		aff_map(s, v6, up->name);
		rec_chain(s, v6, c.name);
		nft_put_chain(b, FAM, NAT_TABLE, &c);
		nft_put_flush_chain(b, FAM, NAT_TABLE, c.name);
		nft_put_rule(b, FAM, NAT_TABLE, c.name, r, ARRAY_SIZE(r));
	}
}

static void put_be_elems(struct nft_batch *b, const struct svc_ent *s, int v6, bool del)
{
	struct nft_elems_writer w;
	char name[NFT_NAME_MAX];

	be_map(s, v6, name);
	nft_elems_begin(&w, b, FAM, NAT_TABLE, name, del);
	for (size_t i = 0; i < s->n_be[v6]; i++) {
		struct nft_elem el = { .key_len = 4, .data_len = (uint8_t)alen(v6) };
		uint32_t k = (uint32_t)i;   /* host order, as numgen leaves it */

		memcpy(el.key, &k, 4);
		memcpy(el.data, s->be[v6][i].b, alen(v6));
		nft_elems_add(&w, &el);
	}
	nft_elems_end(&w);
}

/* The rules of svc-ID-P-F: the affinity map's choice, else numgen. The
 * registers are nft's own layout (address in 1, port in 2, "meta l4proto"
 * before a port mapping), so that `nft list ruleset` prints the chain. */
static void put_svc_chain(struct nft_batch *b, const struct svc_ent *s, size_t p, int v6)
{
	char chain[NFT_NAME_MAX];
	struct nft_chain c = { .hook = -1 };
	uint8_t nfp = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
	uint32_t saddr = v6 ? 8 : 12;
	uint16_t target = htons(s->ports[p].target);
	struct nft_expr l4 = NFT_META(NFT_META_L4PROTO, NFT_REG_1);
	struct nft_expr is_l4 = NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { s->ports[p].proto });
	struct nft_expr port = { .kind = NFT_X_IMMEDIATE, .dreg = NFT_REG_2, .len = 2 };
	struct nft_expr ng = NFT_NUMGEN(s->pick == SVC_PICK_ROUND_ROBIN ? NFT_NG_INCREMENTAL : NFT_NG_RANDOM,
					(uint32_t)s->n_be[v6], 0, NFT_REG_1);
	struct nft_expr pick = NFT_LOOKUP("", NFT_REG_1, NFT_REG_1, 0);
	struct nft_expr dnat = NFT_NAT(NFT_NAT_DNAT, nfp, NFT_REG_1, NFT_REG_2);
	struct nft_expr src = NFT_PAYLOAD(NFT_PAYLOAD_NETWORK_HEADER, saddr, (uint8_t)alen(v6), NFT_REG_1);
	struct nft_expr known = NFT_LOOKUP("", NFT_REG_1, NFT_REG_1, 0);

	dnat.flags = NF_NAT_RANGE_PROTO_SPECIFIED;
	memcpy(port.data, &target, 2);
	chain_name(s, p, v6, chain);
	snprintf(c.name, sizeof(c.name), "%s", chain);
	nft_put_chain(b, FAM, NAT_TABLE, &c);
	be_map(s, v6, pick.name);
	aff_map(s, v6, known.name);
	if (has_aff(s, v6)) {
		/* the client's backend, recorded by svcr-ID-F (svc_aff_*) */
		struct nft_expr fam = NFT_META(NFT_META_NFPROTO, NFT_REG_1);
		struct nft_expr is_fam = NFT_CMP(NFT_CMP_EQ, NFT_REG_1, 1, { nfp });
		const struct nft_expr r1[] = { l4, is_l4, fam, is_fam, src, known, port, dnat };

		nft_put_rule(b, FAM, NAT_TABLE, chain, r1, ARRAY_SIZE(r1));
	}
	{
		const struct nft_expr r[] = { l4, is_l4, ng, pick, port, dnat };

		nft_put_rule(b, FAM, NAT_TABLE, chain, r, ARRAY_SIZE(r));
	}
}

/* proto . port after an address (or alone), as nat.c keys them */
static size_t put_proto_port(uint8_t *k, uint8_t proto, uint16_t port)
{
	memset(k, 0, 8);
	k[0] = proto;
	k[4] = (uint8_t)(port >> 8);
	k[5] = (uint8_t)port;
	return 8;
}

static ssize_t port_index(const struct svc_ent *s, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < s->n_ports; i++)
		if (s->ports[i].proto == proto && s->ports[i].port == port)
			return (ssize_t)i;
	return -1;
}

/* Every element s has in the shared maps, one call of fn per element. */
typedef void shared_fn(void *ctx, const char *set, const struct nft_elem *el);

static void shared_elems(const struct svc_ent *s, shared_fn *fn, void *ctx)
{
	for (int v6 = 0; v6 < 2; v6++) {
		const struct ip_addr *vip = v6 ? &s->vip6 : &s->vip4;

		if (!vip->family)
			continue;
		for (size_t p = 0; p < s->n_ports; p++) {
			struct nft_elem el = { 0 };

			memcpy(el.key, vip->b, alen(v6));
			el.key_len = (uint8_t)(alen(v6) + put_proto_port(el.key + alen(v6), s->ports[p].proto,
									    s->ports[p].port));
			if (active(s, v6)) {
				el.has_verdict = true;
				el.verdict = NFT_GOTO;
				chain_name(s, p, v6, el.chain);
				fn(ctx, v6 ? "svc6" : "svc4", &el);
				if (has_aff(s, v6)) {
					rec_chain(s, v6, el.chain);
					fn(ctx, v6 ? "svcaff6" : "svcaff4", &el);
				}
			} else {
				fn(ctx, v6 ? "svc_empty6" : "svc_empty4", &el);
			}
		}
	}
	for (size_t i = 0; i < s->n_pub; i++) {
		const struct svc_publish *pb = &s->pub[i];
		ssize_t p = port_index(s, pb->proto, pb->port);

		for (int v6 = 0; v6 < 2 && p >= 0; v6++) {
			struct nft_elem el = { .has_verdict = true, .verdict = NFT_GOTO };
			size_t off = 0;

			if (!active(s, v6) || (pb->host_ip.family && pb->host_ip.family != fams[v6]))
				continue;
			if (pb->host_ip.family) {
				memcpy(el.key, pb->host_ip.b, alen(v6));
				off = alen(v6);
			}
			el.key_len = (uint8_t)(off + put_proto_port(el.key + off, pb->proto, pb->host_port));
			chain_name(s, (size_t)p, v6, el.chain);
			fn(ctx, pb->host_ip.family ? (v6 ? "svcp6_ip" : "svcp4_ip") : (v6 ? "svcp6" : "svcp4"),
			   &el);
			/* its connections record affinity too: on one host
			 * address keyed like a VIP's, on every address by
			 * protocol and port (svc_aff_fwd) */
			if (has_aff(s, v6)) {
				rec_chain(s, v6, el.chain);
				fn(ctx, pb->host_ip.family ? (v6 ? "svcaff6" : "svcaff4") :
				   (v6 ? "svcaffp6" : "svcaffp4"), &el);
			}
		}
	}
}

static void put_one_elem(void *ctx, const char *set, const struct nft_elem *el)
{
	struct nft_batch *b = ((void **)ctx)[0];
	bool del = ((void **)ctx)[1] != NULL;

	nft_put_elems(b, FAM, NAT_TABLE, set, del, el, 1);
}

static void put_shared(struct nft_batch *b, const struct svc_ent *s, bool del)
{
	void *ctx[2] = { b, del ? (void *)1 : NULL };

	shared_elems(s, put_one_elem, ctx);
}

/* Everything of s, into a table that has the base part already. */
static void put_svc(struct nft_batch *b, const struct svc_ent *s)
{
	for (int v6 = 0; v6 < 2; v6++) {
		if (!active(s, v6))
			continue;
		put_svc_sets(b, s, v6);
		put_be_elems(b, s, v6, false);
		for (size_t p = 0; p < s->n_ports; p++)
			put_svc_chain(b, s, p, v6);
	}
	put_shared(b, s, false);
}

static void svc_build(struct nft_batch *b, void *ctx)
{
	struct svc *sv = ctx;

	put_base(b);
	for (struct svc_ent *s = sv->list; s; s = s->next)
		put_svc(b, s);
}

void svc_put_all(struct svc *s, struct nft_batch *b)
{
	svc_build(b, s);
}

/* ---- changes -------------------------------------------------------------- */

struct stale {
	const struct svc_ent *n;    /* the new definition */
	int v6;
	ARRAY(struct nft_elem) del;
};

static bool has_backend(const struct svc_ent *s, int v6, const uint8_t *addr)
{
	for (size_t i = 0; i < s->n_be[v6]; i++)
		if (!memcmp(s->be[v6][i].b, addr, alen(v6)))
			return true;
	return false;
}

/* An affinity element that leads to a backend n no longer has. */
static int stale_elem(void *ctx, const struct nft_elem *el)
{
	struct stale *st = ctx;
	struct nft_elem *d;

	if (el->data_len != alen(st->v6) || has_backend(st->n, st->v6, el->data))
		return 0;
	if (!(d = array_push(&st->del)))
		return -ENOMEM;
	d->key_len = el->key_len;
	memcpy(d->key, el->key, el->key_len);
	return 0;
}

/* Clients of a backend n no longer has choose again (their elements in
 * the affinity map go); the others keep theirs. */
static int put_stale(struct svc *sv, struct nft_batch *b, const struct svc_ent *n, int v6,
		     struct err *e)
{
	struct stale st = { .n = n, .v6 = v6 };
	char name[NFT_NAME_MAX];
	int ret;

	aff_map(n, v6, name);
	ret = nat_elems_dump(sv->nat, FAM, name, stale_elem, &st, e);
	if (ret == 0 && st.del.n && !sv->no_destroy) {
		nft_put_destroy_elems(b, FAM, NAT_TABLE, name, st.del.v, st.del.n);
	} else if (ret == 0 && st.del.n) {
		/* an older kernel: one DELSETELEM batch per element, after the
		 * change, where one that timed out meanwhile fails alone */
		for (size_t i = 0; i < st.del.n; i++) {
			struct nft_batch one;

			if (nft_batch_init(&one, 1024) < 0)
				break;
			nft_put_elems(&one, FAM, NAT_TABLE, name, true, &st.del.v[i], 1);
			(void)nat_batch_try(sv->nat, &one, NULL);
			nft_batch_free(&one);
		}
	}
	free(st.del.v);
	return ret < 0 ? ret : (int)(st.del.n > 0 && !sv->no_destroy);
}

/* Some backend of o is not one of n's. */
static bool lost_backend(const struct svc_ent *o, const struct svc_ent *n, int v6)
{
	for (size_t i = 0; i < o->n_be[v6]; i++)
		if (!has_backend(n, v6, o->be[v6][i].b))
			return true;
	return false;
}

/* After the change: a connection DNATed to a removed backend between the
 * dump and the commit may have recorded it again; one more sweep. */
static void sweep_stale(struct svc *sv, const struct svc_ent *o, const struct svc_ent *n)
{
	for (int v6 = 0; v6 < 2; v6++) {
		struct nft_batch b;

		if (!has_aff(o, v6) || !has_aff(n, v6) || !lost_backend(o, n, v6) ||
		    nft_batch_init(&b, SMALL_BATCH) < 0)
			continue;
		if (put_stale(sv, &b, n, v6, NULL) > 0 && !b.m.overflow)
			(void)nat_batch_send(sv->nat, &b, NULL);
		nft_batch_free(&b);
	}
}

/* The batch turning o (NULL: none) into n (NULL: none), same ID. */
static int put_change(struct svc *sv, struct nft_batch *b, const struct svc_ent *o,
		      const struct svc_ent *n, struct err *e)
{
	char name[NFT_NAME_MAX];

	if (o)
		put_shared(b, o, true);
	for (int v6 = 0; v6 < 2; v6++) {
		/* the old chains: emptied (they are rewritten, their numgen
		 * modulus follows N), or gone with their family or port */
		for (size_t p = 0; active(o, v6) && p < o->n_ports; p++) {
			chain_name(o, p, v6, name);
			nft_put_flush_chain(b, FAM, NAT_TABLE, name);
			if (!active(n, v6) || p >= n->n_ports)
				nft_put_del_chain(b, FAM, NAT_TABLE, name);
		}
		if (active(o, v6)) {
			if (active(n, v6)) {
				put_be_elems(b, o, v6, true);
			} else {
				be_map(o, v6, name);
				nft_put_del_set(b, FAM, NAT_TABLE, name);
			}
		}
		if (has_aff(o, v6) && !has_aff(n, v6)) {
			rec_chain(o, v6, name);
			nft_put_flush_chain(b, FAM, NAT_TABLE, name);
			nft_put_del_chain(b, FAM, NAT_TABLE, name);
			aff_map(o, v6, name);
			nft_put_del_set(b, FAM, NAT_TABLE, name);
		} else if (has_aff(o, v6) && lost_backend(o, n, v6)) {
			int ret = put_stale(sv, b, n, v6, e);

			if (ret < 0)
				return ret;
		}
		if (!active(n, v6))
			continue;
		put_svc_sets(b, n, v6);
		put_be_elems(b, n, v6, false);
		for (size_t p = 0; p < n->n_ports; p++)
			put_svc_chain(b, n, p, v6);
	}
	if (n)
		put_shared(b, n, false);
	return 0;
}

static bool has_destroy(const struct nft_batch *b)
{
	for (unsigned i = 1; i < b->m.count; i++) {
		struct nft_head h;

		if (nft_parse_head(nl_msg_at(&b->m, i), &h) == 0 && h.msg == NFT_MSG_DESTROYSETELEM_)
			return true;
	}
	return false;
}

static int send_change(struct svc *sv, const struct svc_ent *o, const struct svc_ent *n,
		       struct err *e)
{
	size_t cap = SMALL_BATCH;
	int ret;

	if (!nat_live(sv->nat))
		return 0;
	for (;;) {
		struct nft_batch b;

		if (nft_batch_init(&b, cap) < 0)
			return err_set(e, ENOMEM, "services: out of memory");
		ret = put_change(sv, &b, o, n, e);
		if (ret == 0)
			ret = nat_batch_send(sv->nat, &b, e);
		if (ret == -EINVAL && !sv->no_destroy && has_destroy(&b)) {
			/* DESTROYSETELEM is Linux 6.3: before it, the batch is
			 * refused whole; again without, deleting one by one */
			sv->no_destroy = true;
			nft_batch_free(&b);
			continue;
		}
		if (ret != -EMSGSIZE || !b.m.overflow) {
			nft_batch_free(&b);
			break;
		}
		nft_batch_free(&b);
		cap *= 2;
	}
	if (ret == 0)
		sweep_stale(sv, o, n);
	return ret;
}

/* ---- definitions ---------------------------------------------------------- */

static int addr_cmp(const void *a, const void *b)
{
	return ip_cmp(a, b);
}

static void ent_free(struct svc_ent *s)
{
	if (!s)
		return;
	free(s->be[0]);
	free(s->be[1]);
	free(s->pub);
	free(s);
}

static bool proto_ok(uint8_t p)
{
	return p == IPPROTO_TCP || p == IPPROTO_UDP || p == IPPROTO_SCTP;
}

/* d, checked, as an entry with sorted backends. */
static int ent_make(const struct svc_def *d, struct svc_ent **out, struct err *e)
{
	const struct ip_addr *bl[2] = { d->backends4, d->backends6 };
	size_t nb[2] = { d->n_backends4, d->n_backends6 };
	struct svc_ent *s;

	*out = NULL;
	if (!d->name[0] || strnlen(d->name, SVC_NAME_MAX) >= SVC_NAME_MAX)
		return err_set(e, EINVAL, "service: a name of 1 to %d characters is needed",
			       SVC_NAME_MAX - 1);
	if (d->n_ports == 0 || d->n_ports > SVC_PORTS_MAX)
		return err_set(e, EINVAL, "service %s: %zu ports (1 to %d)", d->name, d->n_ports,
			       SVC_PORTS_MAX);
	if ((d->vip4.family && d->vip4.family != AF_INET) || (d->vip6.family && d->vip6.family != AF_INET6))
		return err_set(e, EINVAL, "service %s: a VIP of the wrong family", d->name);
	for (int v6 = 0; v6 < 2; v6++) {
		const struct ip_addr *vip = v6 ? &d->vip6 : &d->vip4, *other = v6 ? &d->vip4 : &d->vip6;

		if (nb[v6] > SVC_BACKENDS_MAX)
			return err_set(e, EINVAL, "service %s: %zu backends (at most %d)", d->name,
				       nb[v6], SVC_BACKENDS_MAX);
		for (size_t i = 0; i < nb[v6]; i++)
			if (bl[v6][i].family != fams[v6])
				return err_set(e, EINVAL, "service %s: an IPv%d backend in the IPv%d list",
					       d->name, v6 ? 4 : 6, v6 ? 6 : 4);
		/* an IPv4 VIP whose only backends are IPv6 ones cannot reach them */
		if (vip->family && !other->family && nb[v6] == 0 && nb[!v6] > 0)
			return err_set(e, EINVAL, "service %s: an IPv%d VIP with IPv%d backends only",
				       d->name, v6 ? 6 : 4, v6 ? 4 : 6);
	}
	for (size_t i = 0; i < d->n_ports; i++) {
		if (!proto_ok(d->ports[i].proto) || !d->ports[i].port || !d->ports[i].target)
			return err_set(e, EINVAL, "service %s: port %u/%s", d->name, d->ports[i].port,
				       ip_proto_name(d->ports[i].proto));
		for (size_t j = 0; j < i; j++)
			if (d->ports[j].proto == d->ports[i].proto && d->ports[j].port == d->ports[i].port)
				return err_set(e, EINVAL, "service %s: port %u/%s twice", d->name,
					       d->ports[i].port, ip_proto_name(d->ports[i].proto));
	}
	if (!(s = calloc(1, sizeof(*s))))
		return err_set(e, ENOMEM, "service %s: out of memory", d->name);
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	s->vip4 = d->vip4;
	s->vip6 = d->vip6;
	memcpy(s->ports, d->ports, d->n_ports * sizeof(*d->ports));
	s->n_ports = d->n_ports;
	s->pick = d->pick;
	s->affinity_s = d->affinity_s;
	for (int v6 = 0; v6 < 2; v6++) {
		size_t k = 0;

		if (!nb[v6])
			continue;
		if (!(s->be[v6] = calloc(nb[v6], sizeof(struct ip_addr))))
			goto nomem;
		memcpy(s->be[v6], bl[v6], nb[v6] * sizeof(struct ip_addr));
		qsort(s->be[v6], nb[v6], sizeof(struct ip_addr), addr_cmp);
		for (size_t i = 0; i < nb[v6]; i++)
			if (k == 0 || ip_cmp(&s->be[v6][k - 1], &s->be[v6][i]))
				s->be[v6][k++] = s->be[v6][i];
		s->n_be[v6] = k;
	}
	if (d->n_publish) {
		if (!(s->pub = calloc(d->n_publish, sizeof(*s->pub))))
			goto nomem;
		for (size_t i = 0; i < d->n_publish; i++) {
			const struct svc_publish *pb = &d->publish[i];

			if (port_index(s, pb->proto, pb->port) < 0 || !pb->host_port ||
			    (pb->host_ip.family && pb->host_ip.family != AF_INET &&
			     pb->host_ip.family != AF_INET6)) {
				ent_free(s);
				return err_set(e, EINVAL, "service %s: publish %u/%s leads to no port of"
					       " the service", d->name, pb->host_port, ip_proto_name(pb->proto));
			}
			s->pub[i] = *pb;
		}
		s->n_pub = d->n_publish;
	}
	*out = s;
	return 0;
nomem:
	ent_free(s);
	return err_set(e, ENOMEM, "service %s: out of memory", d->name);
}

static bool ent_same(const struct svc_ent *a, const struct svc_ent *b)
{
	if (strcmp(a->name, b->name) || ip_cmp(&a->vip4, &b->vip4) || ip_cmp(&a->vip6, &b->vip6) ||
	    a->n_ports != b->n_ports || a->pick != b->pick || a->affinity_s != b->affinity_s ||
	    a->n_pub != b->n_pub)
		return false;
	for (size_t i = 0; i < a->n_ports; i++)
		if (a->ports[i].proto != b->ports[i].proto || a->ports[i].port != b->ports[i].port ||
		    a->ports[i].target != b->ports[i].target)
			return false;
	for (int v6 = 0; v6 < 2; v6++) {
		if (a->n_be[v6] != b->n_be[v6])
			return false;
		for (size_t i = 0; i < a->n_be[v6]; i++)
			if (ip_cmp(&a->be[v6][i], &b->be[v6][i]))
				return false;
	}
	for (size_t i = 0; i < a->n_pub; i++)
		if (ip_cmp(&a->pub[i].host_ip, &b->pub[i].host_ip) ||
		    a->pub[i].host_port != b->pub[i].host_port || a->pub[i].proto != b->pub[i].proto ||
		    a->pub[i].port != b->pub[i].port)
			return false;
	return true;
}

/* Two published ports overlap: same proto and host port, and addresses
 * that meet (a wildcard meets every address). */
static bool pub_overlap(const struct svc_publish *a, const struct svc_publish *b)
{
	return a->proto == b->proto && a->host_port == b->host_port &&
	       (!a->host_ip.family || !b->host_ip.family || ip_equal(&a->host_ip, &b->host_ip));
}

static int conflicts(const struct svc *sv, const struct svc_ent *n, struct err *e)
{
	for (const struct svc_ent *s = sv->list; s; s = s->next) {
		if (!strcmp(s->name, n->name))
			continue;
		for (int v6 = 0; v6 < 2; v6++) {
			const struct ip_addr *a = v6 ? &s->vip6 : &s->vip4, *b = v6 ? &n->vip6 : &n->vip4;

			if (!a->family || !b->family || !ip_equal(a, b))
				continue;
			for (size_t i = 0; i < n->n_ports; i++)
				if (port_index(s, n->ports[i].proto, n->ports[i].port) >= 0) {
					char buf[64];

					return err_set(e, EADDRINUSE, "service %s: %s port %u/%s is service %s's",
						       n->name, ip_format(b, buf), n->ports[i].port,
						       ip_proto_name(n->ports[i].proto), s->name);
				}
		}
		for (size_t i = 0; i < n->n_pub; i++)
			for (size_t j = 0; j < s->n_pub; j++)
				if (pub_overlap(&n->pub[i], &s->pub[j]))
					return err_set(e, EADDRINUSE, "service %s: host port %u/%s is published"
						       " by service %s", n->name, n->pub[i].host_port,
						       ip_proto_name(n->pub[i].proto), s->name);
	}
	return 0;
}

/* ---- API ------------------------------------------------------------------ */

int svc_open(struct svc **out, struct nat *t, struct err *e)
{
	struct svc *sv = calloc(1, sizeof(*sv));

	*out = NULL;
	if (!sv)
		return err_set(e, ENOMEM, "services: out of memory");
	sv->nat = t;
	sv->next_id = 1;
	sv->part.build = svc_build;
	sv->part.ctx = sv;
	nat_add_part(t, &sv->part);
	*out = sv;
	return 0;
}

/* The part stays registered with its nat: close s after the nat. */
void svc_close(struct svc *s)
{
	if (!s)
		return;
	while (s->list) {
		struct svc_ent *x = s->list;

		s->list = x->next;
		ent_free(x);
	}
	free(s);
}

static struct svc_ent **find(struct svc *sv, const char *name)
{
	struct svc_ent **p = &sv->list;

	while (*p && strcmp((*p)->name, name))
		p = &(*p)->next;
	return p;
}

int svc_set(struct svc *sv, const struct svc_def *d, struct err *e)
{
	struct svc_ent *n, **slot, *o;
	int ret;

	if ((ret = ent_make(d, &n, e)) < 0)
		return ret;
	slot = find(sv, n->name);
	o = *slot;
	if (o && ent_same(o, n)) {
		ent_free(n);
		return 0;
	}
	if ((ret = conflicts(sv, n, e)) < 0) {
		ent_free(n);
		return ret;
	}
	n->id = o ? o->id : sv->next_id++;
	/* memory first: a restore during the send already has n */
	n->next = o ? o->next : NULL;
	*slot = n;
	if (!o)
		sv->n++;
	ret = send_change(sv, o, n, e);
	if (ret < 0) {
		if (o) {
			*slot = o;
		} else {
			*slot = NULL;
			sv->n--;
		}
		ent_free(n);
		return err_wrap(e, "service %s", d->name);
	}
	ent_free(o);
	return 0;
}

int svc_del(struct svc *sv, const char *name, struct err *e)
{
	struct svc_ent **slot = find(sv, name), *o = *slot;
	int ret;

	if (!o)
		return 0;
	*slot = o->next;
	sv->n--;
	ret = send_change(sv, o, NULL, e);
	if (ret < 0) {
		o->next = *slot;
		*slot = o;
		sv->n++;
		return err_wrap(e, "remove service %s", name);
	}
	ent_free(o);
	return 0;
}

size_t svc_count(const struct svc *s)
{
	return s->n;
}
