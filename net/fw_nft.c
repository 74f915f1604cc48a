/* fw_nft.c - the firewall model (fw.h) as nf_tables objects: sets of
 * addresses that change per container, chains that change per policy. */
#include <arpa/inet.h>               /* before the kernel's headers nft.h pulls in */
#include <netinet/in.h>

#include "net/fw.h"
#include "net/fw_nft.h"
#include "net/nat.h"
#include "net/nft.h"

#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter_bridge.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout, in table inet berth (NAT's chains live beside these):
 *
 *   (every base chain first accepts established/related packets and IPv6
 *   neighbour discovery, which is to IPv6 what ARP is to IPv4)
 *   fw_fwd_out   forward, filter + 0    established -> accept; two berth
 *                                       bridges, no DNAT -> drop; jump fw_egress
 *   fw_fwd_in    forward, filter + 10   established -> accept; jump fw_ingress
 *   fw_input     input,   filter + 0    established -> accept; jump fw_egress
 *   fw_output    output,  filter + 0    established -> accept; jump fw_ingress
 *   fw_egress    sender not a container -> return; self, DNS to own
 *                gateway -> accept; per policy with egress rules:
 *                saddr @fw_s_<sel> jump fw_p_<policy>_o; saddr @fw_isoout -> drop
 *   fw_ingress   receiver not a container -> return; self -> accept; per
 *                policy: daddr @fw_s_<sel> jump fw_p_<policy>_i;
 *                daddr @fw_isoin -> drop; both ends on one isolate=yes
 *                bridge, no DNAT -> drop
 *   fw_p_*       one accept rule per peer x port of the policy's rules; a
 *                CIDR with excepts jumps to its own chain fw_p_*_<rule>_<peer>
 *
 * An accept in one base chain hands the packet to the next base chain of
 * the hook, so egress (priority 0) and ingress (priority 10) are both judged.
 * Bridged traffic between containers reaches these hooks through
 * br_netfilter (bridge-nf-call-iptables), which shows the bridge as both
 * iifname and oifname; the bridge port (a container's veth) is only visible
 * in the bridge family, so anti-spoofing lives in table bridge berth:
 *
 *   fw_spoof     prerouting, -300       from a container's port, the source
 *                address must be one of its own (IPv6 link-local and :: for
 *                neighbour discovery excepted)
 */

#define FW_TABLE "berth"
#define ETH_TYPE_IP 0x0800        /* <linux/if_ether.h> clashes with musl's */
#define ETH_TYPE_IPV6 0x86dd
#define PRIO_FILTER 0
#define PRIO_RAW -300

enum { R0 = NFT_REG32_00, R1 = NFT_REG32_01, R4 = NFT_REG32_00 + 4 };

/* ---- names --------------------------------------------------------------- */

static uint32_t fnv32(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static void set_name(const struct fw_set *s, int family, char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "fw_s_%08x_%d", fnv32(s->what), family == AF_INET6 ? 6 : 4);
}

/* fw_p_NAME_i / _o, or a hashed form for long names (chains: 31 bytes). */
static void policy_chain(const struct fw_policy *p, int dir, char out[NFT_NAME_MAX])
{
	char d = dir == FW_INGRESS ? 'i' : 'o';

	if (strlen(p->name) <= 20)
		snprintf(out, NFT_NAME_MAX, "fw_p_%s_%c", p->name, d);
	else
		snprintf(out, NFT_NAME_MAX, "fw_p_%.10s%08x_%c", p->name, fnv32(p->name), d);
}

static void peer_chain(const char *policy_chain_name, size_t rule, size_t peer,
		       char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "fw_c_%08x_%u_%u", fnv32(policy_chain_name),
		 (unsigned)(rule % 10000), (unsigned)(peer % 10000));
}

/* ---- expressions --------------------------------------------------------- */

struct rule_buf {
	struct nft_expr x[NFT_RULE_MAX];
	size_t n;
};

static struct nft_expr *add(struct rule_buf *r)
{
	struct nft_expr *x = &r->x[r->n++];

	memset(x, 0, sizeof(*x));
	return x;
}

static void x_meta(struct rule_buf *r, uint32_t key, uint32_t dreg)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_META;
	x->key = key;
	x->dreg = dreg;
}

static void x_cmp(struct rule_buf *r, uint8_t op, uint32_t sreg, const void *data, uint8_t len)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_CMP;
	x->op = op;
	x->sreg = sreg;
	x->len = len;
	memcpy(x->data, data, len);
}

static void x_payload(struct rule_buf *r, uint32_t base, uint32_t off, uint8_t len, uint32_t dreg)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_PAYLOAD;
	x->key = base;
	x->off = off;
	x->len = len;
	x->dreg = dreg;
}

static void x_bitwise(struct rule_buf *r, uint32_t reg, const void *mask, uint8_t len)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_BITWISE;
	x->sreg = reg;
	x->dreg = reg;
	x->len = len;
	memcpy(x->data, mask, len);
}

static void x_lookup(struct rule_buf *r, const char *set, uint32_t sreg, bool inv)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_LOOKUP;
	snprintf(x->name, sizeof(x->name), "%s", set);
	x->sreg = sreg;
	x->flags = inv ? NFT_LOOKUP_F_INV : 0;
}

static void x_verdict(struct rule_buf *r, int32_t v, const char *chain)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_VERDICT;
	x->verdict = v;
	if (chain)
		snprintf(x->name, sizeof(x->name), "%s", chain);
}

static void x_counter(struct rule_buf *r)
{
	add(r)->kind = NFT_X_COUNTER;
}

/* meta nfproto ipv4|ipv6 (inet), or meta protocol ip|ip6 (bridge). */
static void m_family(struct rule_buf *r, uint8_t table_family, int family)
{
	if (table_family == NFPROTO_BRIDGE) {
		uint16_t proto = htons(family == AF_INET6 ? ETH_TYPE_IPV6 : ETH_TYPE_IP);

		x_meta(r, NFT_META_PROTOCOL, R0);
		x_cmp(r, NFT_CMP_EQ, R0, &proto, 2);
	} else {
		uint8_t nfp = family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;

		x_meta(r, NFT_META_NFPROTO, R0);
		x_cmp(r, NFT_CMP_EQ, R0, &nfp, 1);
	}
}

/* Load the source (src true) or destination address into reg. */
static void m_addr(struct rule_buf *r, int family, bool src, uint32_t reg)
{
	if (family == AF_INET6)
		x_payload(r, NFT_PAYLOAD_NETWORK_HEADER, src ? 8 : 24, 16, reg);
	else
		x_payload(r, NFT_PAYLOAD_NETWORK_HEADER, src ? 12 : 16, 4, reg);
}

static uint8_t addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

/* ct state established,related */
static void m_established(struct rule_buf *r)
{
	uint32_t mask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED);
	uint32_t zero = 0;
	struct nft_expr *x = add(r);

	x->kind = NFT_X_CT;
	x->key = NFT_CT_STATE;
	x->dir = NFT_CT_DIR_NONE;
	x->dreg = R0;
	x_bitwise(r, R0, &mask, 4);
	x_cmp(r, NFT_CMP_NEQ, R0, &zero, 4);
}

/* ct status dnat (via_port) or not */
static void m_dnat(struct rule_buf *r, bool via_port)
{
	uint32_t mask = IPS_DST_NAT, zero = 0;
	struct nft_expr *x = add(r);

	x->kind = NFT_X_CT;
	x->key = NFT_CT_STATUS;
	x->dir = NFT_CT_DIR_NONE;
	x->dreg = R0;
	x_bitwise(r, R0, &mask, 4);
	x_cmp(r, via_port ? NFT_CMP_NEQ : NFT_CMP_EQ, R0, &zero, 4);
}

/* fib saddr|daddr type local (or not) */
static void m_local(struct rule_buf *r, bool src, bool local)
{
	uint32_t type = RTN_LOCAL;
	struct nft_expr *x = add(r);

	x->kind = NFT_X_FIB;
	x->key = NFT_FIB_RESULT_ADDRTYPE;
	x->flags = src ? NFTA_FIB_F_SADDR : NFTA_FIB_F_DADDR;
	x->dreg = R0;
	x_cmp(r, local ? NFT_CMP_EQ : NFT_CMP_NEQ, R0, &type, 4);
}

/* addr in prefix */
static void m_prefix(struct rule_buf *r, const struct ip_prefix *p, bool src)
{
	uint8_t mask[16] = { 0 };
	uint8_t len = addr_len(p->addr.family);

	for (unsigned i = 0; i < p->len; i++)
		mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	m_addr(r, p->addr.family, src, R0);
	if (p->len < len * 8)
		x_bitwise(r, R0, mask, len);
	x_cmp(r, NFT_CMP_EQ, R0, p->addr.b, len);
}

/* meta l4proto P [th dport FIRST-LAST] */
static void m_port(struct rule_buf *r, const struct fw_port *pt)
{
	uint16_t first = htons(pt->first), last = htons(pt->last);

	x_meta(r, NFT_META_L4PROTO, R0);
	x_cmp(r, NFT_CMP_EQ, R0, &pt->proto, 1);
	if (pt->any_port)
		return;
	x_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R0);
	if (pt->first == pt->last) {
		x_cmp(r, NFT_CMP_EQ, R0, &first, 2);
	} else {
		x_cmp(r, NFT_CMP_GTE, R0, &first, 2);
		x_cmp(r, NFT_CMP_LTE, R0, &last, 2);
	}
}

/* ---- rules --------------------------------------------------------------- */

struct emit {
	struct nft_batch *b;
	const struct fw_model *m;
};

static void put(struct emit *em, const char *chain, struct rule_buf *r)
{
	nft_put_rule(em->b, NFPROTO_INET, FW_TABLE, chain, r->x, r->n);
}

/* One rule per port (or one with none) after the match prefix in base. */
static void put_ports(struct emit *em, const char *chain, const struct rule_buf *base,
		      const struct fw_rule *ru, int32_t verdict, const char *target)
{
	for (size_t k = 0; k < (ru->n_ports ? ru->n_ports : 1); k++) {
		struct rule_buf r = *base;

		if (ru->n_ports)
			m_port(&r, &ru->ports[k]);
		if (verdict == NF_ACCEPT)
			x_counter(&r);
		x_verdict(&r, verdict, target);
		put(em, chain, &r);
	}
}

static void put_peer(struct emit *em, const char *chain, const struct fw_rule *ru, size_t ri,
		     size_t pi)
{
	const struct fw_peer *pe = ru->n_peers ? &ru->peers[pi] : NULL;
	bool in = ru->dir == FW_INGRESS, src = in;
	struct rule_buf r = { .n = 0 };

	if (!pe || pe->kind == FW_PEER_ALL) {
		put_ports(em, chain, &r, ru, NF_ACCEPT, NULL);
		return;
	}
	switch (pe->kind) {
	case FW_PEER_SET:
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;
			char set[NFT_NAME_MAX];

			r.n = 0;
			if (in)
				m_dnat(&r, false);
			m_family(&r, NFPROTO_INET, family);
			m_addr(&r, family, src, R0);
			set_name(&em->m->sets[pe->set], family, set);
			x_lookup(&r, set, R0, false);
			put_ports(em, chain, &r, ru, NF_ACCEPT, NULL);
		}
		return;
	case FW_PEER_CIDR:
		if (in)
			m_dnat(&r, false);
		m_family(&r, NFPROTO_INET, pe->cidr.addr.family);
		m_prefix(&r, &pe->cidr, src);
		if (pe->n_except) {
			char sub[NFT_NAME_MAX];
			struct nft_chain c = { .hook = -1 };
			struct rule_buf j = r;

			peer_chain(chain, ri, pi, sub);
			snprintf(c.name, sizeof(c.name), "%s", sub);
			nft_put_chain(em->b, NFPROTO_INET, FW_TABLE, &c);
			nft_put_flush_chain(em->b, NFPROTO_INET, FW_TABLE, sub);
			for (size_t x = 0; x < pe->n_except; x++) {
				struct rule_buf ex = { .n = 0 };

				m_family(&ex, NFPROTO_INET, pe->except[x].addr.family);
				m_prefix(&ex, &pe->except[x], src);
				x_verdict(&ex, NFT_RETURN, NULL);
				put(em, sub, &ex);
			}
			r.n = 0;
			put_ports(em, sub, &r, ru, NF_ACCEPT, NULL);
			x_verdict(&j, NFT_JUMP, sub);
			put(em, chain, &j);
			return;
		}
		put_ports(em, chain, &r, ru, NF_ACCEPT, NULL);
		return;
	case FW_PEER_HOST:
		if (in)
			m_dnat(&r, false);
		m_local(&r, src, true);
		put_ports(em, chain, &r, ru, NF_ACCEPT, NULL);
		return;
	case FW_PEER_WORLD:
		if (in) {
			m_dnat(&r, true);
			put_ports(em, chain, &r, ru, NF_ACCEPT, NULL);
		}
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;

			r.n = 0;
			m_family(&r, NFPROTO_INET, family);
			m_local(&r, src, false);
			m_addr(&r, family, src, R0);
			x_lookup(&r, family == AF_INET6 ? "fw_ctr6" : "fw_ctr4", R0, true);
			put_ports(em, chain, &r, ru, NF_ACCEPT, NULL);
		}
		return;
	case FW_PEER_ALL:
		return;
	}
}

static void put_policy_chain(struct emit *em, const struct fw_policy *p, int dir)
{
	struct nft_chain c = { .hook = -1 };

	policy_chain(p, dir, c.name);
	nft_put_chain(em->b, NFPROTO_INET, FW_TABLE, &c);
	nft_put_flush_chain(em->b, NFPROTO_INET, FW_TABLE, c.name);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct fw_rule *ru = &p->rules[i];

		if (ru->dir != dir)
			continue;
		for (size_t k = 0; k < (ru->n_peers ? ru->n_peers : 1); k++)
			put_peer(em, c.name, ru, i, k);
	}
}

/* fw_egress or fw_ingress: the dispatch to the policies. */
static void put_direction_chain(struct emit *em, int dir)
{
	const char *name = dir == FW_INGRESS ? "fw_ingress" : "fw_egress";
	bool src = dir == FW_EGRESS;        /* the container's end of the packet */
	struct nft_chain c = { .hook = -1 };

	snprintf(c.name, sizeof(c.name), "%s", name);
	nft_put_chain(em->b, NFPROTO_INET, FW_TABLE, &c);
	nft_put_flush_chain(em->b, NFPROTO_INET, FW_TABLE, name);
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		bool v6 = family == AF_INET6;
		struct rule_buf r = { .n = 0 };

		m_family(&r, NFPROTO_INET, family);
		m_addr(&r, family, src, R0);
		x_lookup(&r, v6 ? "fw_ctr6" : "fw_ctr4", R0, true);
		x_verdict(&r, NFT_RETURN, NULL);
		put(em, name, &r);

		/* saddr . daddr: itself; and DNS to the gateway of its networks */
		r.n = 0;
		m_family(&r, NFPROTO_INET, family);
		m_addr(&r, family, true, R0);
		m_addr(&r, family, false, v6 ? R4 : R1);
		x_lookup(&r, v6 ? "fw_self6" : "fw_self4", R0, false);
		x_verdict(&r, NF_ACCEPT, NULL);
		put(em, name, &r);
		if (dir == FW_EGRESS) {
			static const uint8_t protos[] = { IPPROTO_UDP, IPPROTO_TCP };

			for (size_t p = 0; p < ARRAY_SIZE(protos); p++) {
				struct fw_port dns = { protos[p], false, 53, 53 };

				r.n = 0;
				m_family(&r, NFPROTO_INET, family);
				m_addr(&r, family, true, R0);
				m_addr(&r, family, false, v6 ? R4 : R1);
				x_lookup(&r, v6 ? "fw_dns6" : "fw_dns4", R0, false);
				m_port(&r, &dns);
				x_verdict(&r, NF_ACCEPT, NULL);
				put(em, name, &r);
			}
		}
	}
	for (size_t i = 0; i < em->m->n_policies; i++) {
		const struct fw_policy *p = &em->m->policies[i];
		char target[NFT_NAME_MAX];

		if (!(p->has_rules & dir))
			continue;
		policy_chain(p, dir, target);
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;
			char set[NFT_NAME_MAX];
			struct rule_buf r = { .n = 0 };

			set_name(&em->m->sets[p->select], family, set);
			m_family(&r, NFPROTO_INET, family);
			m_addr(&r, family, src, R0);
			x_lookup(&r, set, R0, false);
			x_verdict(&r, NFT_JUMP, target);
			put(em, name, &r);
		}
	}
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		struct rule_buf r = { .n = 0 };
		char set[NFT_NAME_MAX];

		snprintf(set, sizeof(set), "fw_iso%s%d", dir == FW_INGRESS ? "in" : "out",
			 family == AF_INET6 ? 6 : 4);
		m_family(&r, NFPROTO_INET, family);
		m_addr(&r, family, src, R0);
		x_lookup(&r, set, R0, false);
		x_counter(&r);
		x_verdict(&r, NF_DROP, NULL);
		put(em, name, &r);
	}
	if (dir == FW_INGRESS) {
		struct rule_buf r = { .n = 0 };

		m_dnat(&r, false);
		x_meta(&r, NFT_META_IIFNAME, R0);
		x_meta(&r, NFT_META_OIFNAME, R4);
		x_lookup(&r, "fw_isobr", R0, false);
		x_counter(&r);
		x_verdict(&r, NF_DROP, NULL);
		put(em, name, &r);
	}
}

static void put_base_chain(struct emit *em, const char *name, int hook, int prio,
			   const char *target, bool cross_net)
{
	struct nft_chain c = { .hook = hook, .prio = prio, .policy = NF_ACCEPT };
	struct rule_buf r = { .n = 0 };

	snprintf(c.name, sizeof(c.name), "%s", name);
	snprintf(c.type, sizeof(c.type), "filter");
	nft_put_chain(em->b, NFPROTO_INET, FW_TABLE, &c);
	nft_put_flush_chain(em->b, NFPROTO_INET, FW_TABLE, name);
	m_established(&r);
	x_verdict(&r, NF_ACCEPT, NULL);
	put(em, name, &r);
	/* IPv6 neighbour discovery (ICMPv6 133-137) is IPv6's ARP: policies
	 * judge connections, not whether two hosts may find each other */
	{
		uint8_t icmp6 = IPPROTO_ICMPV6, lo = 133, hi = 137;

		r.n = 0;
		m_family(&r, NFPROTO_INET, AF_INET6);
		x_meta(&r, NFT_META_L4PROTO, R0);
		x_cmp(&r, NFT_CMP_EQ, R0, &icmp6, 1);
		x_payload(&r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, R0);
		x_cmp(&r, NFT_CMP_GTE, R0, &lo, 1);
		x_cmp(&r, NFT_CMP_LTE, R0, &hi, 1);
		x_verdict(&r, NF_ACCEPT, NULL);
		put(em, name, &r);
	}
	if (cross_net) {
		r.n = 0;
		m_dnat(&r, false);
		x_meta(&r, NFT_META_IIFNAME, R0);
		x_meta(&r, NFT_META_OIFNAME, R4);
		x_lookup(&r, "fw_xnet", R0, false);
		x_counter(&r);
		x_verdict(&r, NF_DROP, NULL);
		put(em, name, &r);
	}
	r.n = 0;
	x_verdict(&r, NFT_JUMP, target);
	put(em, name, &r);
}

/* ---- sets and their elements --------------------------------------------- */

static void put_set(struct nft_batch *b, uint8_t family, const char *name, uint32_t type,
		    const uint8_t *fields, unsigned n_fields)
{
	struct nft_set s = { .n_fields = n_fields };
	uint32_t types[NFT_CONCAT_MAX];

	snprintf(s.name, sizeof(s.name), "%s", name);
	for (unsigned i = 0; i < n_fields; i++) {
		s.fields[i] = fields[i];
		s.key_len += nft_field_len(fields[i]);
		types[i] = type;
	}
	s.key_type = n_fields > 1 ? nft_type_concat(types, n_fields) : type;
	if (n_fields > 1)
		s.flags |= NFT_SET_CONCAT;
	nft_put_set(b, family, FW_TABLE, &s);
}

/* Every element each set should hold, as one list per set name. */
struct elem_list {
	char set[NFT_NAME_MAX];
	uint8_t family;             /* NFPROTO_INET or NFPROTO_BRIDGE */
	struct nft_elem *v;
	size_t n, cap;
};

struct elems {
	struct elem_list *l;
	size_t n, cap;
	size_t last;                /* the list list_for found last: runs of one set */
};

static struct elem_list *list_for(struct elems *es, uint8_t family, const char *set)
{
	if (es->last < es->n && es->l[es->last].family == family && !strcmp(es->l[es->last].set, set))
		return &es->l[es->last];
	for (size_t i = 0; i < es->n; i++)
		if (es->l[i].family == family && !strcmp(es->l[i].set, set))
			return &es->l[es->last = i];
	if (es->n == es->cap) {
		size_t cap = es->cap ? es->cap * 2 : 32;
		struct elem_list *l = realloc(es->l, cap * sizeof(*l));

		if (!l)
			abort();
		es->l = l;
		es->cap = cap;
	}
	memset(&es->l[es->n], 0, sizeof(es->l[0]));
	snprintf(es->l[es->n].set, NFT_NAME_MAX, "%s", set);
	es->l[es->n].family = family;
	return &es->l[es->n++];
}

static int elem_cmp(const void *a, const void *b)
{
	const struct nft_elem *x = a, *y = b;

	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return memcmp(x->key, y->key, x->key_len);
}

/* Lists are sorted and without duplicates once model_elems returns. */
static bool elem_in(const struct elem_list *l, const struct nft_elem *el)
{
	return l && l->n && bsearch(el, l->v, l->n, sizeof(*l->v), elem_cmp);
}

/* Add the key k1 (or the concatenation k1 . k2) to the set's list. */
static void elem_add(struct elems *es, uint8_t family, const char *set, const void *k1,
		     size_t l1, const void *k2, size_t l2)
{
	struct elem_list *l = list_for(es, family, set);
	struct nft_elem el = { 0 };

	memcpy(el.key, k1, l1);
	el.key_len = (uint8_t)nft_field_len((uint32_t)l1);
	if (l2) {
		memcpy(el.key + el.key_len, k2, l2);
		el.key_len = (uint8_t)(el.key_len + nft_field_len((uint32_t)l2));
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct nft_elem *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			abort();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = el;
}

static const char *fam_set(const char *base, int family, char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "%s%d", base, family == AF_INET6 ? 6 : 4);
	return out;
}

static void model_elems(const struct fw_model *m, struct elems *es)
{
	char set[NFT_NAME_MAX];

	/* every set exists even when empty: the rules name them */
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		static const char *const bases[] = { "fw_ctr", "fw_self", "fw_dns", "fw_isoin",
						     "fw_isoout" };

		for (size_t i = 0; i < ARRAY_SIZE(bases); i++)
			list_for(es, NFPROTO_INET, fam_set(bases[i], family, set));
		list_for(es, NFPROTO_BRIDGE, fam_set("fw_spoof", family, set));
		for (size_t i = 0; i < m->n_sets; i++) {
			set_name(&m->sets[i], family, set);
			list_for(es, NFPROTO_INET, set);
		}
	}
	list_for(es, NFPROTO_INET, "fw_xnet");
	list_for(es, NFPROTO_INET, "fw_isobr");
	list_for(es, NFPROTO_BRIDGE, "fw_ports");

	for (size_t i = 0; i < m->n_sets; i++)
		for (size_t k = 0; k < m->sets[i].n; k++) {
			const struct ip_addr *a = &m->sets[i].addrs[k];

			set_name(&m->sets[i], a->family, set);
			elem_add(es, NFPROTO_INET, set, a->b, addr_len(a->family), NULL, 0);
		}
	for (size_t i = 0; i < m->n_containers; i++) {
		const struct fw_container *c = &m->containers[i];

		for (size_t k = 0; k < c->n_ifs; k++) {
			const struct fw_iface *fi = &c->ifs[k];
			const struct fw_network *n = &m->networks[fi->network];
			char ifname[16] = { 0 };

			memcpy(ifname, fi->host_ifname, strnlen(fi->host_ifname, 15));
			elem_add(es, NFPROTO_BRIDGE, "fw_ports", ifname, 16, NULL, 0);
			for (size_t j = 0; j < fi->n_addrs; j++) {
				const struct ip_addr *a = &fi->addrs[j];
				uint8_t len = addr_len(a->family);

				elem_add(es, NFPROTO_INET, fam_set("fw_ctr", a->family, set), a->b, len, NULL, 0);
				elem_add(es, NFPROTO_INET, fam_set("fw_self", a->family, set), a->b, len, a->b, len);
				elem_add(es, NFPROTO_BRIDGE, fam_set("fw_spoof", a->family, set), ifname, 16,
					 a->b, len);
				if (c->isolated & FW_INGRESS)
					elem_add(es, NFPROTO_INET, fam_set("fw_isoin", a->family, set), a->b,
						 len, NULL, 0);
				if (c->isolated & FW_EGRESS)
					elem_add(es, NFPROTO_INET, fam_set("fw_isoout", a->family, set), a->b,
						 len, NULL, 0);
				for (size_t g = 0; g < n->n_gw; g++)
					if (n->gw[g].family == a->family)
						elem_add(es, NFPROTO_INET, fam_set("fw_dns", a->family, set), a->b,
							 len, n->gw[g].b, len);
			}
		}
	}
	for (size_t i = 0; i < m->n_networks; i++) {
		char a[16] = { 0 }, b[16] = { 0 };

		memcpy(a, m->networks[i].bridge, strnlen(m->networks[i].bridge, 15));
		if (m->networks[i].isolate)
			elem_add(es, NFPROTO_INET, "fw_isobr", a, 16, a, 16);
		for (size_t k = 0; k < m->n_networks; k++) {
			if (k == i)
				continue;
			memset(b, 0, sizeof(b));
			memcpy(b, m->networks[k].bridge, strnlen(m->networks[k].bridge, 15));
			elem_add(es, NFPROTO_INET, "fw_xnet", a, 16, b, 16);
		}
	}
	for (size_t i = 0; i < es->n; i++) {
		struct elem_list *l = &es->l[i];
		size_t k = 0;

		if (!l->n)
			continue;
		qsort(l->v, l->n, sizeof(*l->v), elem_cmp);
		for (size_t j = 1; j < l->n; j++)
			if (elem_cmp(&l->v[j], &l->v[k]))
				l->v[++k] = l->v[j];
		l->n = k + 1;
	}
}
static void elems_free(struct elems *es)
{
	for (size_t i = 0; i < es->n; i++)
		free(es->l[i].v);
	free(es->l);
}

/* The set's declaration, from its name. */
static void put_set_for(struct nft_batch *b, const struct elem_list *l)
{
	static const uint8_t a4[] = { 4 }, a6[] = { 16 }, a44[] = { 4, 4 }, a66[] = { 16, 16 },
		ifs[] = { 16 }, ifif[] = { 16, 16 }, if4[] = { 16, 4 }, if6[] = { 16, 16 };
	bool v6 = l->set[strlen(l->set) - 1] == '6';

	if (!strcmp(l->set, "fw_xnet") || !strcmp(l->set, "fw_isobr"))
		put_set(b, l->family, l->set, NFT_TYPE_IFNAME, ifif, 2);
	else if (!strcmp(l->set, "fw_ports"))
		put_set(b, l->family, l->set, NFT_TYPE_IFNAME, ifs, 1);
	else if (!strncmp(l->set, "fw_spoof", 8)) {
		uint32_t types[2] = { NFT_TYPE_IFNAME, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR };
		struct nft_set s = { .n_fields = 2, .flags = NFT_SET_CONCAT };

		snprintf(s.name, sizeof(s.name), "%s", l->set);
		memcpy(s.fields, v6 ? if6 : if4, 2);
		s.key_len = 16 + (v6 ? 16 : 4);
		s.key_type = nft_type_concat(types, 2);
		nft_put_set(b, l->family, FW_TABLE, &s);
	} else if (!strncmp(l->set, "fw_self", 7) || !strncmp(l->set, "fw_dns", 6))
		put_set(b, l->family, l->set, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR, v6 ? a66 : a44, 2);
	else
		put_set(b, l->family, l->set, v6 ? NFT_TYPE_IP6ADDR : NFT_TYPE_IPADDR, v6 ? a6 : a4, 1);
}

static const struct elem_list *find_list(const struct elems *es, const struct elem_list *like)
{
	for (size_t i = 0; i < es->n; i++)
		if (es->l[i].family == like->family && !strcmp(es->l[i].set, like->set))
			return &es->l[i];
	return NULL;
}

/* Sets: declare the new ones, add and remove elements. */
static void put_set_changes(struct nft_batch *b, const struct elems *old, const struct elems *cur)
{
	for (size_t i = 0; i < cur->n; i++) {
		const struct elem_list *l = &cur->l[i], *o = old ? find_list(old, l) : NULL;
		struct nft_elem *add_v = calloc(l->n + 1, sizeof(*add_v));
		size_t n_add = 0;

		if (!add_v)
			abort();
		if (!o)
			put_set_for(b, l);
		for (size_t k = 0; k < l->n; k++)
			if (!elem_in(o, &l->v[k]))
				add_v[n_add++] = l->v[k];
		if (n_add)
			nft_put_elems(b, l->family, FW_TABLE, l->set, false, add_v, n_add);
		free(add_v);
		if (o) {
			struct nft_elem *del_v = calloc(o->n + 1, sizeof(*del_v));
			size_t n_del = 0;

			if (!del_v)
				abort();
			for (size_t k = 0; k < o->n; k++)
				if (!elem_in(l, &o->v[k]))
					del_v[n_del++] = o->v[k];
			if (n_del)
				nft_put_elems(b, l->family, FW_TABLE, l->set, true, del_v, n_del);
			free(del_v);
		}
	}
}

static void put_spoof_rules(struct nft_batch *b);

/* ---- the whole, and changes ---------------------------------------------- */

/* A policy's chains are rewritten only when its compiled text changes. */
static void describe_policy(const struct fw_model *m, const struct fw_policy *p, int dir,
			    struct buf *out)
{
	char a[IP_PREFIX_STRLEN];

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct fw_rule *ru = &p->rules[i];

		if (ru->dir != dir)
			continue;
		buf_printf(out, "rule %zu:", i);
		for (size_t k = 0; k < ru->n_peers; k++) {
			const struct fw_peer *pe = &ru->peers[k];

			buf_printf(out, " peer %d", (int)pe->kind);
			if (pe->kind == FW_PEER_SET)
				buf_printf(out, " %08x", fnv32(m->sets[pe->set].what));
			if (pe->kind == FW_PEER_CIDR) {
				buf_printf(out, " %s", ip_prefix_format(&pe->cidr, a));
				for (size_t x = 0; x < pe->n_except; x++)
					buf_printf(out, " -%s", ip_prefix_format(&pe->except[x], a));
			}
		}
		for (size_t k = 0; k < ru->n_ports; k++)
			buf_printf(out, " port %u %d %u-%u", ru->ports[k].proto, ru->ports[k].any_port,
				   ru->ports[k].first, ru->ports[k].last);
		buf_puts(out, "\n");
	}
}

static const struct fw_policy *find_policy(const struct fw_model *m, const char *name)
{
	for (size_t i = 0; m && i < m->n_policies; i++)
		if (!strcmp(m->policies[i].name, name))
			return &m->policies[i];
	return NULL;
}

static bool policy_same(const struct fw_model *om, const struct fw_policy *op,
			const struct fw_model *m, const struct fw_policy *p, int dir)
{
	struct buf a, b;
	bool same;

	if (!op || !(op->has_rules & dir))
		return false;
	buf_init(&a);
	buf_init(&b);
	describe_policy(om, op, dir, &a);
	describe_policy(m, p, dir, &b);
	same = a.len == b.len && !memcmp(a.data, b.data, a.len);
	buf_free(&a);
	buf_free(&b);
	return same;
}

/* Empty a policy chain and drop the sub-chains of its CIDR peers (which
 * only the emptied chain jumped to). */
static void put_empty_policy_chain(struct nft_batch *b, const struct fw_policy *p, int dir)
{
	char name[NFT_NAME_MAX], sub[NFT_NAME_MAX];

	policy_chain(p, dir, name);
	nft_put_flush_chain(b, NFPROTO_INET, FW_TABLE, name);
	for (size_t i = 0; i < p->n_rules; i++)
		for (size_t k = 0; k < p->rules[i].n_peers; k++)
			if (p->rules[i].dir == dir && p->rules[i].peers[k].n_except) {
				peer_chain(name, i, k, sub);
				nft_put_flush_chain(b, NFPROTO_INET, FW_TABLE, sub);
				nft_put_del_chain(b, NFPROTO_INET, FW_TABLE, sub);
			}
}

/* Once nothing jumps to it any more. */
static void put_del_policy_chain(struct nft_batch *b, const struct fw_policy *p, int dir)
{
	char name[NFT_NAME_MAX];

	put_empty_policy_chain(b, p, dir);
	policy_chain(p, dir, name);
	nft_put_del_chain(b, NFPROTO_INET, FW_TABLE, name);
}

void fw_nft_put(struct nft_batch *b, const struct fw_model *old, const struct fw_model *m)
{
	struct emit em = { b, m };
	struct elems oe = { 0 }, ne = { 0 };
	bool policies_changed = !old || old->n_policies != m->n_policies;

	if (!old) {
		struct nft_chain c = { .hook = NF_BR_PRE_ROUTING, .prio = PRIO_RAW, .policy = NF_ACCEPT };

		/* table bridge berth: created, emptied and filled in this batch */
		nft_put_table(b, NFPROTO_BRIDGE, FW_TABLE, 0);
		nft_put_del_table(b, NFPROTO_BRIDGE, FW_TABLE);
		nft_put_table(b, NFPROTO_BRIDGE, FW_TABLE, 0);
		snprintf(c.name, sizeof(c.name), "fw_spoof");
		snprintf(c.type, sizeof(c.type), "filter");
		nft_put_chain(b, NFPROTO_BRIDGE, FW_TABLE, &c);
	} else {
		model_elems(old, &oe);
	}
	model_elems(m, &ne);
	put_set_changes(b, old ? &oe : NULL, &ne);

	/* policy chains: new or changed ones first, so the dispatch can jump */
	for (size_t i = 0; i < m->n_policies; i++) {
		const struct fw_policy *p = &m->policies[i], *op = find_policy(old, p->name);

		for (int dir = FW_INGRESS; dir <= FW_EGRESS; dir++) {
			if (!(p->has_rules & dir) || policy_same(old, op, m, p, dir))
				continue;
			policies_changed = true;
			if (op && (op->has_rules & dir))
				put_empty_policy_chain(b, op, dir);
			put_policy_chain(&em, p, dir);
		}
		if (!op || op->select != p->select || strcmp(old->sets[op->select].what,
							     m->sets[p->select].what))
			policies_changed = true;
	}
	if (policies_changed) {
		put_direction_chain(&em, FW_INGRESS);
		put_direction_chain(&em, FW_EGRESS);
	}
	for (size_t i = 0; old && i < old->n_policies; i++) {
		const struct fw_policy *op = &old->policies[i], *p = find_policy(m, op->name);

		for (int dir = FW_INGRESS; dir <= FW_EGRESS; dir++)
			if ((op->has_rules & dir) && (!p || !(p->has_rules & dir)))
				put_del_policy_chain(b, op, dir);
	}
	/* selector sets no rule names any more */
	for (size_t i = 0; old && i < oe.n; i++)
		if (!find_list(&ne, &oe.l[i]))
			nft_put_del_set(b, oe.l[i].family, FW_TABLE, oe.l[i].set);

	if (!old) {
		put_base_chain(&em, "fw_fwd_out", NF_INET_FORWARD, PRIO_FILTER, "fw_egress", true);
		put_base_chain(&em, "fw_fwd_in", NF_INET_FORWARD, PRIO_FILTER + 10, "fw_ingress", false);
		put_base_chain(&em, "fw_input", NF_INET_LOCAL_IN, PRIO_FILTER, "fw_egress", false);
		put_base_chain(&em, "fw_output", NF_INET_LOCAL_OUT, PRIO_FILTER, "fw_ingress", false);
		put_spoof_rules(b);
	}
	elems_free(&oe);
	elems_free(&ne);
}

static void put_spoof_rules(struct nft_batch *b)
{
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		bool v6 = family == AF_INET6;
		struct rule_buf r = { .n = 0 };

		/* not from a container's port: not ours to judge */
		if (!f) {
			x_meta(&r, NFT_META_IIFNAME, R0);
			x_lookup(&r, "fw_ports", R0, true);
			x_verdict(&r, NF_ACCEPT, NULL);
			nft_put_rule(b, NFPROTO_BRIDGE, FW_TABLE, "fw_spoof", r.x, r.n);
		}
		if (v6) {
			struct ip_prefix ll = { .addr = { .family = AF_INET6, .b = { 0xfe, 0x80 } }, .len = 10 };
			struct ip_prefix unspec = { .addr = { .family = AF_INET6 }, .len = 128 };
			const struct ip_prefix *ok[] = { &ll, &unspec };

			for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
				r.n = 0;
				m_family(&r, NFPROTO_BRIDGE, family);
				m_prefix(&r, ok[i], true);
				x_verdict(&r, NF_ACCEPT, NULL);
				nft_put_rule(b, NFPROTO_BRIDGE, FW_TABLE, "fw_spoof", r.x, r.n);
			}
		}
		r.n = 0;
		m_family(&r, NFPROTO_BRIDGE, family);
		x_meta(&r, NFT_META_IIFNAME, R0);
		m_addr(&r, family, true, R4);
		x_lookup(&r, v6 ? "fw_spoof6" : "fw_spoof4", R0, false);
		x_verdict(&r, NF_ACCEPT, NULL);
		nft_put_rule(b, NFPROTO_BRIDGE, FW_TABLE, "fw_spoof", r.x, r.n);
		r.n = 0;
		m_family(&r, NFPROTO_BRIDGE, family);
		x_counter(&r);
		x_verdict(&r, NF_DROP, NULL);
		nft_put_rule(b, NFPROTO_BRIDGE, FW_TABLE, "fw_spoof", r.x, r.n);
	}
}

/* ---- on berth's table ------------------------------------------------------ */

/* Bridged traffic between containers reaches the inet hooks only with
 * br_netfilter's bridge-nf-call-ip(6)tables, per network namespace. */
static int bridge_calls_inet(struct err *e)
{
	static const char *const knobs[] = { "/proc/sys/net/bridge/bridge-nf-call-iptables",
					     "/proc/sys/net/bridge/bridge-nf-call-ip6tables" };

	for (size_t i = 0; i < ARRAY_SIZE(knobs); i++) {
		FILE *f = fopen(knobs[i], "r+");
		int ok;

		if (!f)
			return err_sys(e, errno, "%s (is br_netfilter loaded? without it, policies"
				       " between containers of one network are not enforced)", knobs[i]);
		ok = fputs("1\n", f) >= 0;
		ok &= fclose(f) == 0;
		if (!ok)
			return err_sys(e, errno, "write %s", knobs[i]);
	}
	return 0;
}

static void fw_build(struct nft_batch *b, void *ctx)
{
	fw_nft_put(b, NULL, ctx);
}

void fw_attach(struct nat *t, struct nat_part *part, const struct fw_model *current)
{
	part->build = fw_build;
	part->ctx = (void *)current;
	nat_add_part(t, part);
}

int fw_apply(struct nat *t, const struct fw_model *old, const struct fw_model *m, struct err *e)
{
	size_t cap = 64 * 1024;
	int ret;

	if (bridge_calls_inet(e) < 0)
		return -e->code;
	for (;;) {
		struct nft_batch b;

		if (nft_batch_init(&b, cap) < 0)
			return err_set(e, ENOMEM, "firewall: out of memory");
		fw_nft_put(&b, old, m);
		ret = nat_batch_send(t, &b, e);
		if (ret != -EMSGSIZE || !b.m.overflow) {
			nft_batch_free(&b);
			break;
		}
		nft_batch_free(&b);
		cap *= 2;
	}
	return ret < 0 ? err_wrap(e, "firewall") : 0;
}

void fw_remove(struct nat *t)
{
	struct nft_batch b;

	if (nft_batch_init(&b, 4096) < 0)
		return;
	/* created first, so that deleting it is never an error */
	nft_put_table(&b, NFPROTO_BRIDGE, FW_TABLE, 0);
	nft_put_del_table(&b, NFPROTO_BRIDGE, FW_TABLE);
	(void)nat_batch_send(t, &b, NULL);
	nft_batch_free(&b);
}
