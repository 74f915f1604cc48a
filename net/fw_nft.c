/* fw_nft.c - the firewall model (fw.h) as nf_tables objects: sets and verdict
 * maps whose elements change per container, chains that change per policy. */
#include <arpa/inet.h>               /* before the kernel's headers nft.h pulls in */
#include <netinet/in.h>

#include "net/fw.h"
#include "net/fw_nft.h"
#include "net/nat.h"
#include "net/net.h"
#include "net/nft.h"

#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter_bridge.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
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
 *   fw_output    output,  filter + 0    established -> accept; untracked DNS
 *                                       answer to a container from its own
 *                                       gateway -> accept; jump fw_ingress
 *   fw_dns_pre   prerouting, raw (-300) UDP DNS from a container to its own
 *                                       gateway: notrack
 *   fw_dns_out   output,     raw (-300) and its answers: notrack
 *   fw_egress    sender not a container -> return; self, DNS to own
 *                gateway -> accept; saddr vmap @fw_out4/6
 *   fw_ingress   receiver not a container -> return; self -> accept;
 *                daddr vmap @fw_in4/6; both ends on one isolate=yes
 *                bridge, no DNAT -> drop
 *   fw_k_<id>_i/o one pair per identity (containers with the same labels,
 *                fw.h): jump to the chain of each policy selecting it, in
 *                model order, then drop if one of them isolates it
 *   fw_p_*       one accept rule per peer x port of the policy's rules; a
 *                CIDR with excepts jumps to its own chain fw_c_*
 *   fw_s_<h>_4/6 the addresses of a selector some rule names as a peer
 *
 * DNS over UDP between a container and its own gateway (berth's server) is
 * always allowed both ways (fw_egress accepts the query whatever the
 * policies), so conntrack has nothing to decide there: fw_dns_pre and
 * fw_dns_out take those datagrams out of it, which spares the kernel a
 * conntrack entry per query (30 s each, from a fresh source port per lookup
 * of most resolvers) and the conntrack and NAT hooks on both ways. The
 * answers, untracked, are accepted in fw_output as the established ones
 * were. Every other DNS (over TCP, to another address, from the host) stays
 * tracked.
 *
 * So a packet costs one map lookup however many policies and containers
 * there are. A container coming, going or changing labels changes its
 * addresses' elements in fw_in/fw_out; a policy change rewrites the chains
 * of the identities it selects.
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
 *
 * Changes are computed against the previous model in one pass over its
 * containers, sets and policies; only what differs is sent.
 */

#define FW_TABLE "berth"
#define ETH_TYPE_IP 0x0800        /* <linux/if_ether.h> clashes with musl's */
#define ETH_TYPE_IPV6 0x86dd
#define PRIO_FILTER 0
#define PRIO_RAW -300

enum { R0 = NFT_REG32_00, R1 = NFT_REG32_01, R4 = NFT_REG32_00 + 4 };

/* ---- names --------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	return hash64(HASH64_INIT, s, strlen(s));
}

/* NAME + 16 hex digits + _SUFFIX: 64 bits, so distinct selectors or
 * combinations never share a name in practice. */
static void hashed_name(const char *prefix, uint64_t h, const char *suffix,
			char out[NFT_NAME_MAX])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(prefix);

	memcpy(out, prefix, n);
	for (int i = 0; i < 16; i++)
		out[n++] = hex[(h >> (60 - 4 * i)) & 15];
	snprintf(out + n, NFT_NAME_MAX - n, "%s", suffix);
}

static void set_name(const struct fw_set *s, int family, char out[NFT_NAME_MAX])
{
	hashed_name("fw_s_", hash_str(s->what), family == AF_INET6 ? "_6" : "_4", out);
}

static void ident_chain(uint64_t id, int dir, char out[NFT_NAME_MAX])
{
	hashed_name("fw_k_", id, dir == FW_INGRESS ? "_i" : "_o", out);
}

/* fw_p_NAME_i / _o, or a hashed form for long names (chains: 31 bytes). */
static void policy_chain(const struct fw_policy *p, int dir, char out[NFT_NAME_MAX])
{
	char d = dir == FW_INGRESS ? 'i' : 'o';

	if (strlen(p->name) <= 20)
		snprintf(out, NFT_NAME_MAX, "fw_p_%s_%c", p->name, d);
	else
		snprintf(out, NFT_NAME_MAX, "fw_p_%.6s%016llx_%c", p->name,
			 (unsigned long long)hash_str(p->name), d);
}

static void peer_chain(const char *policy_chain_name, size_t rule, size_t peer,
		       char out[NFT_NAME_MAX])
{
	snprintf(out, NFT_NAME_MAX, "fw_c_%08x_%u_%u", (uint32_t)hash_str(policy_chain_name),
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

/* The map's verdict for the key in sreg; no element: the rule does nothing. */
static void x_vmap(struct rule_buf *r, const char *map, uint32_t sreg)
{
	struct nft_expr *x = add(r);

	x->kind = NFT_X_VMAP;
	snprintf(x->name, sizeof(x->name), "%s", map);
	x->sreg = sreg;
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

/* ct KEY & mask != 0 (any set: true), or == 0 (any set: false) */
static void m_ct_bits(struct rule_buf *r, uint32_t key, uint32_t mask, bool any_set)
{
	uint32_t zero = 0;
	struct nft_expr *x = add(r);

	x->kind = NFT_X_CT;
	x->key = key;
	x->dir = NFT_CT_DIR_NONE;
	x->dreg = R0;
	x_bitwise(r, R0, &mask, 4);
	x_cmp(r, any_set ? NFT_CMP_NEQ : NFT_CMP_EQ, R0, &zero, 4);
}

/* ct state established,related */
static void m_established(struct rule_buf *r)
{
	m_ct_bits(r, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
		  NF_CT_STATE_BIT(IP_CT_RELATED), true);
}

/* Through a published port (via_port) or not: the mark nat.c's published
 * chain gives such connections. Not "ct status dnat": a connection to a
 * service's VIP is DNATed too, and its peer is its client (svc.h). */
static void m_dnat(struct rule_buf *r, bool via_port)
{
	m_ct_bits(r, NFT_CT_MARK, NAT_CT_PUBLISHED, via_port);
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

/* th sport (answer) or th dport is 53, or not (eq false) */
static void m_dns_port(struct rule_buf *r, bool answer, bool eq)
{
	uint16_t dns = htons(53);

	x_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, answer ? 0 : 2, 2, R0);
	x_cmp(r, eq ? NFT_CMP_EQ : NFT_CMP_NEQ, R0, &dns, 2);
}

/* UDP between a container and its own gateway: the query (saddr . daddr)
 * or the answer (daddr . saddr) in fw_dns4/6; with_port: and port 53. */
static void m_dns_udp(struct rule_buf *r, int family, bool answer, bool with_port)
{
	uint8_t udp = IPPROTO_UDP;
	bool v6 = family == AF_INET6;

	m_family(r, NFPROTO_INET, family);
	x_meta(r, NFT_META_L4PROTO, R0);
	x_cmp(r, NFT_CMP_EQ, R0, &udp, 1);
	if (with_port)
		m_dns_port(r, answer, true);
	m_addr(r, family, !answer, R0);
	m_addr(r, family, answer, v6 ? R4 : R1);
	x_lookup(r, v6 ? "fw_dns6" : "fw_dns4", R0, false);
}

/* ct state untracked */
static void m_untracked(struct rule_buf *r)
{
	m_ct_bits(r, NFT_CT_STATE, NF_CT_STATE_UNTRACKED_BIT, true);
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

/* fw_egress or fw_ingress: what every container gets, then the dispatch to
 * the combination of policies selecting it. */
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

		/* to its identity's chain, which drops what it isolates and
		 * returns otherwise */
		r.n = 0;
		m_family(&r, NFPROTO_INET, family);
		m_addr(&r, family, src, R0);
		x_vmap(&r, dir == FW_INGRESS ? (v6 ? "fw_in6" : "fw_in4") : (v6 ? "fw_out6" : "fw_out4"),
		       R0);
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

/* fw_k_<id>_i/o, the dispatch of the containers of identity id (c is one
 * of them): jump to the chain of each policy selecting them, in model
 * order, then drop when one of them isolates. existed: rewrite it. */
static void put_ident_chain(struct emit *em, const struct fw_container *c, int dir, uint64_t id,
			    bool existed)
{
	struct nft_chain ch = { .hook = -1 };
	struct rule_buf r;

	ident_chain(id, dir, ch.name);
	if (existed)
		nft_put_flush_chain(em->b, NFPROTO_INET, FW_TABLE, ch.name);
	else
		nft_put_chain(em->b, NFPROTO_INET, FW_TABLE, &ch);
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct fw_policy *p = &em->m->policies[c->policies[i]];
		char target[NFT_NAME_MAX];

		if (!(p->has_rules & dir))
			continue;
		policy_chain(p, dir, target);
		r.n = 0;
		x_verdict(&r, NFT_JUMP, target);
		put(em, ch.name, &r);
	}
	if (c->isolated & dir) {
		r.n = 0;
		x_counter(&r);
		x_verdict(&r, NF_DROP, NULL);
		put(em, ch.name, &r);
	}
}

/* fw_dns_pre / fw_dns_out: UDP DNS between a container and its own
 * gateway skips conntrack (see the layout above). */
static void put_dns_notrack(struct emit *em)
{
	static const struct { const char *name; int hook; bool answer; } chains[] = {
		{ "fw_dns_pre", NF_INET_PRE_ROUTING, false },
		{ "fw_dns_out", NF_INET_LOCAL_OUT, true },
	};

	for (size_t i = 0; i < ARRAY_SIZE(chains); i++) {
		struct nft_chain c = { .hook = chains[i].hook, .prio = PRIO_RAW, .policy = NF_ACCEPT };

		snprintf(c.name, sizeof(c.name), "%s", chains[i].name);
		snprintf(c.type, sizeof(c.type), "filter");
		struct rule_buf r = { .n = 0 };

		nft_put_chain(em->b, NFPROTO_INET, FW_TABLE, &c);
		nft_put_flush_chain(em->b, NFPROTO_INET, FW_TABLE, c.name);
		/* every packet of the host passes here: all but port 53 leave
		 * after one comparison */
		m_dns_port(&r, chains[i].answer, false);
		x_verdict(&r, NFT_RETURN, NULL);
		put(em, c.name, &r);
		for (int f = 0; f < 2; f++) {
			r.n = 0;
			m_dns_udp(&r, f ? AF_INET6 : AF_INET, chains[i].answer, false);
			add(&r)->kind = NFT_X_NOTRACK;
			put(em, c.name, &r);
		}
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
	/* the answers fw_dns_out untracked: as established ones */
	for (int f = 0; hook == NF_INET_LOCAL_OUT && f < 2; f++) {
		r.n = 0;
		m_untracked(&r);
		m_dns_udp(&r, f ? AF_INET6 : AF_INET, true, true);
		x_verdict(&r, NF_ACCEPT, NULL);
		put(em, name, &r);
	}
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


/* ---- sets whose elements follow containers and networks ------------------ */

enum fixed_set_id {
	F_CTR4, F_CTR6,             /* container addresses */
	F_SELF4, F_SELF6,           /* addr . addr: a container to itself */
	F_DNS4, F_DNS6,             /* addr . gateway: DNS to its own gateway */
	F_IN4, F_IN6,               /* addr -> jump fw_k_<identity>_i (verdict map) */
	F_OUT4, F_OUT6,             /* addr -> jump fw_k_<identity>_o (verdict map) */
	F_SPOOF4, F_SPOOF6,         /* bridge: port . addr a container may send from */
	F_PORTS,                    /* bridge: the containers' ports */
	F_XNET,                     /* bridge . bridge of two berth networks */
	F_ISOBR,                    /* bridge . bridge of an isolate = yes network */
	N_FIXED
};

static const struct fixed_set {
	const char *name;
	uint8_t table;              /* NFPROTO_INET or NFPROTO_BRIDGE */
	uint8_t n_fields;
	uint8_t len[2];             /* each field's length */
	uint32_t type[2];
	bool vmap;
} fixed_sets[N_FIXED] = {
#define A4 NFT_TYPE_IPADDR
#define A6 NFT_TYPE_IP6ADDR
#define IF NFT_TYPE_IFNAME
	[F_CTR4] = { "fw_ctr4", NFPROTO_INET, 1, { 4 }, { A4 }, false },
	[F_CTR6] = { "fw_ctr6", NFPROTO_INET, 1, { 16 }, { A6 }, false },
	[F_SELF4] = { "fw_self4", NFPROTO_INET, 2, { 4, 4 }, { A4, A4 }, false },
	[F_SELF6] = { "fw_self6", NFPROTO_INET, 2, { 16, 16 }, { A6, A6 }, false },
	[F_DNS4] = { "fw_dns4", NFPROTO_INET, 2, { 4, 4 }, { A4, A4 }, false },
	[F_DNS6] = { "fw_dns6", NFPROTO_INET, 2, { 16, 16 }, { A6, A6 }, false },
	[F_IN4] = { "fw_in4", NFPROTO_INET, 1, { 4 }, { A4 }, true },
	[F_IN6] = { "fw_in6", NFPROTO_INET, 1, { 16 }, { A6 }, true },
	[F_OUT4] = { "fw_out4", NFPROTO_INET, 1, { 4 }, { A4 }, true },
	[F_OUT6] = { "fw_out6", NFPROTO_INET, 1, { 16 }, { A6 }, true },
	[F_SPOOF4] = { "fw_spoof4", NFPROTO_BRIDGE, 2, { 16, 4 }, { IF, A4 }, false },
	[F_SPOOF6] = { "fw_spoof6", NFPROTO_BRIDGE, 2, { 16, 16 }, { IF, A6 }, false },
	[F_PORTS] = { "fw_ports", NFPROTO_BRIDGE, 1, { 16 }, { IF }, false },
	[F_XNET] = { "fw_xnet", NFPROTO_INET, 2, { 16, 16 }, { IF, IF }, false },
	[F_ISOBR] = { "fw_isobr", NFPROTO_INET, 2, { 16, 16 }, { IF, IF }, false },
#undef A4
#undef A6
#undef IF
};

/* Declare a set (or a verdict map): its key from its fields, and for
 * interface names what nft needs to print them. */
static void put_set(struct nft_batch *b, uint8_t table, const char *name, const uint8_t *len,
		    const uint32_t *type, unsigned n_fields, bool vmap)
{
	struct nft_set s = { .n_fields = n_fields };

	snprintf(s.name, sizeof(s.name), "%s", name);
	for (unsigned i = 0; i < n_fields; i++) {
		s.fields[i] = len[i];
		s.key_len += nft_field_len(len[i]);
	}
	s.key_type = n_fields > 1 ? nft_type_concat(type, n_fields) : type[0];
	if (n_fields > 1)
		s.flags |= NFT_SET_CONCAT;
	if (n_fields == 1 && type[0] == NFT_TYPE_IFNAME)
		s.key_byteorder = NFT_BYTEORDER_HOST;
	if (vmap) {
		s.flags |= NFT_SET_MAP;
		s.data_type = NFT_DATA_VERDICT;
	}
	nft_put_set(b, table, FW_TABLE, &s);
}

static void put_fixed_set(struct nft_batch *b, int id)
{
	const struct fixed_set *f = &fixed_sets[id];

	put_set(b, f->table, f->name, f->len, f->type, f->n_fields, f->vmap);
}

/* One element of a fixed set. */
struct fw_elem {
	uint8_t set;                /* enum fixed_set_id */
	uint8_t key_len;
	uint8_t dir;                /* verdict maps: the chain's direction */
	uint8_t key[32];
	uint64_t ident;             /* verdict maps: the chain's identity */
};

struct elem_vec {
	struct fw_elem *v;
	size_t n, cap;
};

static void elem_append(struct elem_vec *v, const struct fw_elem *e)
{
	struct fw_elem *slot = array_push(v);

	if (!slot)
		abort();
	*slot = *e;
}

/* Append the element k1 (or the concatenation k1 . k2) of set. */
static void elem_push(struct elem_vec *v, int set, const void *k1, size_t l1, const void *k2,
		      size_t l2, uint64_t ident, int dir)
{
	struct fw_elem e;

	memset(&e, 0, sizeof(e));
	e.set = (uint8_t)set;
	memcpy(e.key, k1, l1);
	e.key_len = (uint8_t)nft_field_len((uint32_t)l1);
	if (l2) {
		memcpy(e.key + e.key_len, k2, l2);
		e.key_len = (uint8_t)(e.key_len + nft_field_len((uint32_t)l2));
	}
	e.ident = ident;
	e.dir = (uint8_t)dir;
	elem_append(v, &e);
}

/* The fixed-set elements one container contributes; id: its identity. */
static void container_elems(const struct fw_model *m, const struct fw_container *c,
			    uint64_t id, struct elem_vec *out)
{
	for (size_t k = 0; k < c->n_ifs; k++) {
		const struct fw_iface *fi = &c->ifs[k];
		const struct fw_network *n = &m->networks[fi->network];
		char ifname[16] = { 0 };

		/* derived here, for the few containers whose elements are put */
		if (net_ifname_host(c->name, fi->ifname, ifname, NULL) < 0)
			continue;
		elem_push(out, F_PORTS, ifname, 16, NULL, 0, 0, 0);
		for (size_t j = 0; j < fi->n_addrs; j++) {
			const struct ip_addr *a = &fi->addrs[j];
			int v6 = a->family == AF_INET6;
			size_t len = v6 ? 16 : 4;

			elem_push(out, F_CTR4 + v6, a->b, len, NULL, 0, 0, 0);
			elem_push(out, F_SELF4 + v6, a->b, len, a->b, len, 0, 0);
			elem_push(out, F_SPOOF4 + v6, ifname, 16, a->b, len, 0, 0);
			elem_push(out, F_IN4 + v6, a->b, len, NULL, 0, id, FW_INGRESS);
			elem_push(out, F_OUT4 + v6, a->b, len, NULL, 0, id, FW_EGRESS);
			for (size_t g = 0; g < n->n_gw; g++)
				if (n->gw[g].family == a->family)
					elem_push(out, F_DNS4 + v6, a->b, len, n->gw[g].b, len, 0, 0);
		}
	}
}

static void network_elems(const struct fw_model *m, struct elem_vec *out)
{
	for (size_t i = 0; i < m->n_networks; i++) {
		char a[16] = { 0 };

		memcpy(a, m->networks[i].bridge, strnlen(m->networks[i].bridge, 15));
		if (m->networks[i].isolate)
			elem_push(out, F_ISOBR, a, 16, a, 16, 0, 0);
		for (size_t k = 0; k < m->n_networks; k++) {
			char b[16] = { 0 };

			if (k == i)
				continue;
			memcpy(b, m->networks[k].bridge, strnlen(m->networks[k].bridge, 15));
			elem_push(out, F_XNET, a, 16, b, 16, 0, 0);
		}
	}
}

/* What changes in the fixed sets, per set: deletions go first in the batch,
 * so that an element moving between containers, or a map element whose
 * chain changes, is deleted and added again. */
struct changes {
	struct elem_vec del[N_FIXED], add[N_FIXED];
	struct elem_vec a, b;       /* scratch: one container's old and new */
};

static bool elem_eq(const struct fw_elem *a, const struct fw_elem *b)
{
	return a->set == b->set && a->key_len == b->key_len && a->dir == b->dir &&
	       a->ident == b->ident && !memcmp(a->key, b->key, a->key_len);
}

/* Each element of a missing from b, into out (by set). The lists are one
 * container's, or the networks': short. */
static void elems_minus(const struct elem_vec *a, const struct elem_vec *b, struct elem_vec *out)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct fw_elem *e = &a->v[i];
		bool found = false;

		for (size_t k = 0; k < b->n && !found; k++)
			found = elem_eq(e, &b->v[k]);
		if (!found)
			elem_append(&out[e->set], e);
	}
}

static void changes_between(struct changes *ch)
{
	elems_minus(&ch->a, &ch->b, ch->del);
	elems_minus(&ch->b, &ch->a, ch->add);
	ch->a.n = ch->b.n = 0;
}

static void put_changes(struct nft_batch *b, const struct changes *ch, bool del)
{
	for (int id = 0; id < N_FIXED; id++) {
		const struct elem_vec *v = del ? &ch->del[id] : &ch->add[id];
		struct nft_elems_writer w;

		if (!v->n)
			continue;
		nft_elems_begin(&w, b, fixed_sets[id].table, FW_TABLE, fixed_sets[id].name, del);
		for (size_t i = 0; i < v->n; i++) {
			struct nft_elem el;

			memset(&el, 0, sizeof(el));
			memcpy(el.key, v->v[i].key, v->v[i].key_len);
			el.key_len = v->v[i].key_len;
			if (fixed_sets[id].vmap) {
				el.has_verdict = true;
				el.verdict = NFT_JUMP;
				ident_chain(v->v[i].ident, v->v[i].dir, el.chain);
			}
			nft_elems_add(&w, &el);
		}
		nft_elems_end(&w);
	}
}

static void changes_free(struct changes *ch)
{
	for (int id = 0; id < N_FIXED; id++) {
		array_free(&ch->del[id]);
		array_free(&ch->add[id]);
	}
	array_free(&ch->a);
	array_free(&ch->b);
}

/* ---- selector sets --------------------------------------------------------- */

/* The kernel holds only the sets some rule names as a peer: selecting is
 * the verdict maps' work. */
static bool *peer_sets(const struct fw_model *m)
{
	bool *used = calloc(m->n_sets + 1, sizeof(*used));

	if (!used)
		abort();
	for (size_t i = 0; i < m->n_policies; i++)
		for (size_t r = 0; r < m->policies[i].n_rules; r++)
			for (size_t k = 0; k < m->policies[i].rules[r].n_peers; k++)
				if (m->policies[i].rules[r].peers[k].kind == FW_PEER_SET)
					used[m->policies[i].rules[r].peers[k].set] = true;
	return used;
}

/* Put the addresses of family in from that are not in to: added to the
 * set (or deleted from it). Both are sorted, so one merge. */
static void put_addr_diff(struct nft_batch *b, const char *set, int family,
			  const struct fw_set *from, const struct fw_set *to, bool del)
{
	struct nft_elems_writer w;
	size_t i = 0, k = 0;
	bool open = false;

	while (i < from->addrs.n) {
		const struct ip_addr *a = &from->addrs.v[i];
		int c = k < to->addrs.n ? memcmp(a, &to->addrs.v[k], sizeof(*a)) : -1;

		if (c > 0) {
			k++;
			continue;
		}
		i++;
		if (c == 0 || a->family != family)
			continue;
		if (!open) {
			nft_elems_begin(&w, b, NFPROTO_INET, FW_TABLE, set, del);
			open = true;
		}
		{
			struct nft_elem el;

			memset(&el, 0, sizeof(el));
			el.key_len = family == AF_INET6 ? 16 : 4;
			memcpy(el.key, a->b, el.key_len);
			nft_elems_add(&w, &el);
		}
	}
	if (open)
		nft_elems_end(&w);
}

/* A selector set's elements: what old (NULL: a new set) lacks, and what it
 * has too many. */
static void put_selector_set(struct nft_batch *b, const struct fw_set *old, const struct fw_set *s)
{
	static const struct fw_set none;

	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		char name[NFT_NAME_MAX];

		set_name(s, family, name);
		if (!old) {
			static const uint8_t len4[] = { 4 }, len6[] = { 16 };
			static const uint32_t t4[] = { NFT_TYPE_IPADDR }, t6[] = { NFT_TYPE_IP6ADDR };

			put_set(b, NFPROTO_INET, name, f ? len6 : len4, f ? t6 : t4, 1, false);
		}
		put_addr_diff(b, name, family, old ? old : &none, s, true);
		put_addr_diff(b, name, family, s, old ? old : &none, false);
	}
}

/* ---- matching the previous model's objects by name ----------------------- */

/* Objects (containers, policies, sets) whose name is a string member at
 * offset off. Models usually list them in the same order, so the same
 * position is tried first; a sorted index is built on the first miss. */
struct by_name {
	const char *base;
	size_t stride, off, n;
	struct named {
		const char *name;
		size_t i;
	} *sorted;
};

#define BY_NAME(type, arr, n_, member) \
	{ (const char *)(arr), sizeof(type), offsetof(type, member), (n_), NULL }

static const char *name_at(const struct by_name *x, size_t i)
{
	return *(const char *const *)(x->base + i * x->stride + x->off);
}

static int named_cmp(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* The index of name, or SIZE_MAX. */
static size_t by_name_find(struct by_name *x, size_t hint, const char *name)
{
	struct named key = { name, 0 }, *hit;

	if (hint < x->n && !strcmp(name_at(x, hint), name))
		return hint;
	if (!x->sorted) {
		x->sorted = calloc(x->n + 1, sizeof(*x->sorted));
		if (!x->sorted)
			abort();
		for (size_t i = 0; i < x->n; i++)
			x->sorted[i] = (struct named){ name_at(x, i), i };
		qsort(x->sorted, x->n, sizeof(*x->sorted), named_cmp);
	}
	hit = bsearch(&key, x->sorted, x->n, sizeof(*x->sorted), named_cmp);
	return hit ? hit->i : SIZE_MAX;
}

/* ---- identities ------------------------------------------------------------ */

static uint64_t identity(const struct fw_container *c)
{
	return c->identity ? c->identity : hash_str(c->name) | 1;
}

/* What an identity's chain of direction dir holds: the names of the
 * policies with rules of that direction, and whether it drops. */
static uint64_t ident_content(const struct fw_model *m, const struct fw_container *c, int dir)
{
	uint8_t drop = !!(c->isolated & dir);
	uint64_t h = hash64(HASH64_INIT, &drop, 1);

	for (size_t i = 0; i < c->n_policies; i++) {
		const struct fw_policy *p = &m->policies[c->policies[i]];

		if (p->has_rules & dir)
			h = hash64(h, p->name, strlen(p->name) + 1);
	}
	return h;
}

/* A model's identities, each with one of its containers (a container
 * without addresses has no elements, so it does not count). */
struct idents {
	struct ident {
		uint64_t id;
		uint64_t content[2];    /* ingress, egress */
		unsigned ctr;
	} *slot;
	size_t mask;
};

static void idents_build(const struct fw_model *m, struct idents *t)
{
	size_t cap = 16;

	while (cap < 2 * m->n_containers + 16)
		cap *= 2;
	t->slot = calloc(cap, sizeof(*t->slot));
	if (!t->slot)
		abort();
	t->mask = cap - 1;
	for (size_t i = 0; i < m->n_containers; i++) {
		const struct fw_container *c = &m->containers[i];
		uint64_t id = identity(c);
		size_t s = (size_t)id & t->mask;
		bool addressed = false;

		for (size_t k = 0; k < c->n_ifs; k++)
			addressed |= c->ifs[k].n_addrs > 0;
		if (!addressed)
			continue;
		while (t->slot[s].id && t->slot[s].id != id)
			s = (s + 1) & t->mask;
		if (!t->slot[s].id)
			t->slot[s] = (struct ident){ id, { ident_content(m, c, FW_INGRESS),
						     ident_content(m, c, FW_EGRESS) }, (unsigned)i };
	}
}

static const struct ident *idents_find(const struct idents *t, uint64_t id)
{
	for (size_t s = (size_t)id & t->mask; t->slot[s].id; s = (s + 1) & t->mask)
		if (t->slot[s].id == id)
			return &t->slot[s];
	return NULL;
}

/* ---- policies --------------------------------------------------------------- */

static bool peer_same(const struct fw_model *om, const struct fw_peer *a, const struct fw_model *m,
		      const struct fw_peer *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == FW_PEER_SET)
		return !strcmp(om->sets[a->set].what, m->sets[b->set].what);
	if (a->kind != FW_PEER_CIDR)
		return true;
	return !memcmp(&a->cidr, &b->cidr, sizeof(a->cidr)) && a->n_except == b->n_except &&
	       (!a->n_except || !memcmp(a->except, b->except, a->n_except * sizeof(*a->except)));
}

/* Would the policy's chain of direction dir be the same? (Its CIDR
 * sub-chains are named by rule and peer index, so those must match too.) */
static bool policy_same(const struct fw_model *om, const struct fw_policy *op,
			const struct fw_model *m, const struct fw_policy *p, int dir)
{
	if (!(op->has_rules & dir) || op->n_rules != p->n_rules)
		return false;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct fw_rule *a = &op->rules[i], *b = &p->rules[i];

		if (a->dir != b->dir)
			return false;
		if (b->dir != dir)
			continue;
		if (a->n_peers != b->n_peers || a->n_ports != b->n_ports ||
		    (a->n_ports && memcmp(a->ports, b->ports, a->n_ports * sizeof(*a->ports))))
			return false;
		for (size_t k = 0; k < b->n_peers; k++)
			if (!peer_same(om, &a->peers[k], m, &b->peers[k]))
				return false;
	}
	return true;
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

/* ---- the whole, and changes ---------------------------------------------- */

static bool iface_same(const struct fw_model *om, const struct fw_iface *a,
		       const struct fw_model *m, const struct fw_iface *b)
{
	const struct fw_network *na = &om->networks[a->network], *nb = &m->networks[b->network];

	/* of the same container (matched by name): the same host-side name */
	return !strncmp(a->ifname, b->ifname, sizeof(a->ifname)) &&
	       a->n_addrs == b->n_addrs && !memcmp(a->addrs, b->addrs, a->n_addrs * sizeof(*a->addrs)) &&
	       na->n_gw == nb->n_gw && !memcmp(na->gw, nb->gw, na->n_gw * sizeof(*na->gw));
}

/* Would the container put the same elements? */
static bool container_same(const struct fw_model *om, const struct fw_container *a,
			   const struct fw_model *m, const struct fw_container *b)
{
	if (a->n_ifs != b->n_ifs || identity(a) != identity(b))
		return false;
	for (size_t i = 0; i < a->n_ifs; i++)
		if (!iface_same(om, &a->ifs[i], m, &b->ifs[i]))
			return false;
	return true;
}

static bool networks_same(const struct fw_model *om, const struct fw_model *m)
{
	if (om->n_networks != m->n_networks)
		return false;
	for (size_t i = 0; i < m->n_networks; i++)
		if (strcmp(om->networks[i].bridge, m->networks[i].bridge) ||
		    om->networks[i].isolate != m->networks[i].isolate)
			return false;
	return true;
}

/* Containers that came, went or changed; and the networks. */
static void collect_changes(const struct fw_model *om, const struct fw_model *m,
			    struct changes *ch)
{
	struct by_name octr = BY_NAME(struct fw_container, om->containers, om->n_containers, name);
	struct by_name nctr = BY_NAME(struct fw_container, m->containers, m->n_containers, name);

	for (size_t i = 0; i < m->n_containers; i++) {
		const struct fw_container *c = &m->containers[i];
		size_t k = by_name_find(&octr, i, c->name);

		if (k != SIZE_MAX) {
			const struct fw_container *o = &om->containers[k];

			if (container_same(om, o, m, c))
				continue;
			container_elems(om, o, identity(o), &ch->a);
		}
		container_elems(m, c, identity(c), &ch->b);
		changes_between(ch);
	}
	for (size_t k = 0; k < om->n_containers; k++)
		if (by_name_find(&nctr, k, om->containers[k].name) == SIZE_MAX) {
			container_elems(om, &om->containers[k], identity(&om->containers[k]), &ch->a);
			changes_between(ch);
		}
	if (!networks_same(om, m)) {
		network_elems(om, &ch->a);
		network_elems(m, &ch->b);
		changes_between(ch);
	}
	free(octr.sorted);
	free(nctr.sorted);
}

static void put_bridge_table(struct nft_batch *b)
{
	struct nft_chain c = { .hook = NF_BR_PRE_ROUTING, .prio = PRIO_RAW, .policy = NF_ACCEPT };

	/* table bridge berth: created, emptied and filled in this batch */
	nft_put_table(b, NFPROTO_BRIDGE, FW_TABLE, 0);
	nft_put_del_table(b, NFPROTO_BRIDGE, FW_TABLE);
	nft_put_table(b, NFPROTO_BRIDGE, FW_TABLE, 0);
	snprintf(c.name, sizeof(c.name), "fw_spoof");
	snprintf(c.type, sizeof(c.type), "filter");
	nft_put_chain(b, NFPROTO_BRIDGE, FW_TABLE, &c);
}

static void put_spoof_rules(struct nft_batch *b);

void fw_nft_put(struct nft_batch *b, const struct fw_model *old, const struct fw_model *m)
{
	static const struct fw_model empty;
	const struct fw_model *om = old ? old : &empty;
	struct emit em = { b, m };
	struct changes ch;
	struct idents oi = { 0 }, ni = { 0 };
	struct by_name oset = BY_NAME(struct fw_set, om->sets, om->n_sets, what);
	struct by_name nset = BY_NAME(struct fw_set, m->sets, m->n_sets, what);
	struct by_name opol = BY_NAME(struct fw_policy, om->policies, om->n_policies, name);
	struct by_name npol = BY_NAME(struct fw_policy, m->policies, m->n_policies, name);
	bool *oused = peer_sets(om), *used = peer_sets(m);

	memset(&ch, 0, sizeof(ch));
	if (!old) {
		put_bridge_table(b);
		for (int id = 0; id < N_FIXED; id++)
			put_fixed_set(b, id);
	}
	/* selector sets first: the policies' rules name them */
	for (size_t i = 0; i < m->n_sets; i++) {
		size_t k;

		if (!used[i])
			continue;
		k = by_name_find(&oset, i, m->sets[i].what);
		put_selector_set(b, k != SIZE_MAX && oused[k] ? &om->sets[k] : NULL, &m->sets[i]);
	}
	/* policy chains new or changed, before the combinations jump to them */
	for (size_t i = 0; i < m->n_policies; i++) {
		const struct fw_policy *p = &m->policies[i];
		size_t k = by_name_find(&opol, i, p->name);
		const struct fw_policy *op = k != SIZE_MAX ? &om->policies[k] : NULL;

		for (int dir = FW_INGRESS; dir <= FW_EGRESS; dir++) {
			if (!(p->has_rules & dir) || (op && policy_same(om, op, m, p, dir)))
				continue;
			if (op && (op->has_rules & dir))
				put_empty_policy_chain(b, op, dir);
			put_policy_chain(&em, p, dir);
		}
	}
	/* identities' chains new or rewritten, the maps pointing at them, then
	 * the chains of identities no container has any more */
	idents_build(om, &oi);
	idents_build(m, &ni);
	for (size_t s = 0; s <= ni.mask; s++) {
		const struct ident *n = &ni.slot[s], *o = n->id ? idents_find(&oi, n->id) : NULL;

		for (int dir = FW_INGRESS; n->id && dir <= FW_EGRESS; dir++)
			if (!o || o->content[dir - 1] != n->content[dir - 1])
				put_ident_chain(&em, &m->containers[n->ctr], dir, n->id, o != NULL);
	}
	collect_changes(om, m, &ch);
	put_changes(b, &ch, true);
	put_changes(b, &ch, false);
	for (size_t s = 0; s <= oi.mask; s++)
		for (int dir = FW_INGRESS; oi.slot[s].id && dir <= FW_EGRESS; dir++)
			if (!idents_find(&ni, oi.slot[s].id)) {
				char name[NFT_NAME_MAX];

				ident_chain(oi.slot[s].id, dir, name);
				nft_put_flush_chain(b, NFPROTO_INET, FW_TABLE, name);
				nft_put_del_chain(b, NFPROTO_INET, FW_TABLE, name);
			}
	/* policy chains and selector sets nothing refers to any more */
	for (size_t k = 0; k < om->n_policies; k++) {
		const struct fw_policy *op = &om->policies[k];
		size_t i = by_name_find(&npol, k, op->name);

		for (int dir = FW_INGRESS; dir <= FW_EGRESS; dir++)
			if ((op->has_rules & dir) &&
			    (i == SIZE_MAX || !(m->policies[i].has_rules & dir)))
				put_del_policy_chain(b, op, dir);
	}
	for (size_t k = 0; k < om->n_sets; k++) {
		size_t i;

		if (!oused[k])
			continue;
		i = by_name_find(&nset, k, om->sets[k].what);
		if (i == SIZE_MAX || !used[i])
			for (int f = 0; f < 2; f++) {
				char name[NFT_NAME_MAX];

				set_name(&om->sets[k], f ? AF_INET6 : AF_INET, name);
				nft_put_del_set(b, NFPROTO_INET, FW_TABLE, name);
			}
	}

	if (!old) {
		put_direction_chain(&em, FW_INGRESS);
		put_direction_chain(&em, FW_EGRESS);
		put_base_chain(&em, "fw_fwd_out", NF_INET_FORWARD, PRIO_FILTER, "fw_egress", true);
		put_base_chain(&em, "fw_fwd_in", NF_INET_FORWARD, PRIO_FILTER + 10, "fw_ingress", false);
		put_base_chain(&em, "fw_input", NF_INET_LOCAL_IN, PRIO_FILTER, "fw_egress", false);
		put_base_chain(&em, "fw_output", NF_INET_LOCAL_OUT, PRIO_FILTER, "fw_ingress", false);
		put_dns_notrack(&em);
		put_spoof_rules(b);
	}
	changes_free(&ch);
	free(oi.slot);
	free(ni.slot);
	free(oset.sorted);
	free(nset.sorted);
	free(opol.sorted);
	free(npol.sorted);
	free(oused);
	free(used);
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

/* ---- checks (CNI CHECK) ----------------------------------------------------- */

/* What each fixed set is for, in a message about one of its elements. */
static const char *const fixed_what[N_FIXED] = {
	[F_CTR4] = "berth's container addresses", [F_CTR6] = "berth's container addresses",
	[F_SELF4] = "a container reaching itself", [F_SELF6] = "a container reaching itself",
	[F_DNS4] = "DNS to its own gateway", [F_DNS6] = "DNS to its own gateway",
	[F_IN4] = "the dispatch to its ingress policies",
	[F_IN6] = "the dispatch to its ingress policies",
	[F_OUT4] = "the dispatch to its egress policies",
	[F_OUT6] = "the dispatch to its egress policies",
	[F_SPOOF4] = "the addresses its bridge port may send from",
	[F_SPOOF6] = "the addresses its bridge port may send from",
	[F_PORTS] = "berth's bridge ports", [F_XNET] = "pairs of berth networks",
	[F_ISOBR] = "networks with isolate = yes",
};

/* An element's key as nft shows it: "bh-web . 10.88.0.2". */
static const char *key_name(const struct fixed_set *f, const uint8_t *k, char *buf, size_t size)
{
	size_t off = 0, n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < f->n_fields && n < size; i++) {
		char one[IP_STRLEN];

		if (f->type[i] == NFT_TYPE_IFNAME) {
			snprintf(one, sizeof(one), "%.16s", (const char *)k + off);
		} else {
			struct ip_addr a;

			ip_from_bytes(&a, f->type[i] == NFT_TYPE_IP6ADDR ? AF_INET6 : AF_INET, k + off);
			ip_format(&a, one);
		}
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " . " : "", one);
		off += nft_field_len(f->len[i]);
	}
	return buf;
}

static int check_fixed_elem(struct nat *t, const struct fw_elem *fe, struct err *e)
{
	const struct fixed_set *f = &fixed_sets[fe->set];
	const char *table = f->table == NFPROTO_BRIDGE ? "bridge" : "inet";
	char key[2 * IP_STRLEN + 8], want[NFT_NAME_MAX];
	struct nft_elem el, got;
	int ret;

	memset(&el, 0, sizeof(el));
	memcpy(el.key, fe->key, fe->key_len);
	el.key_len = fe->key_len;
	key_name(f, fe->key, key, sizeof(key));
	if ((ret = nat_elem_get(t, f->table, f->name, &el, &got, e)) < 0)
		return err_wrap(e, "firewall");
	if (!ret)
		return err_set(e, ENOENT, "firewall: its element %s in %s (%s) is missing from "
			       "table %s %s", key, f->name, fixed_what[fe->set], table, FW_TABLE);
	if (!f->vmap)
		return 0;
	ident_chain(fe->ident, fe->dir, want);
	if (!got.has_verdict || got.verdict != NFT_JUMP || strcmp(got.chain, want))
		return err_set(e, EIO, "firewall: its element %s in %s (%s) leads to %s, not to %s",
			       key, f->name, fixed_what[fe->set],
			       got.has_verdict && got.chain[0] ? got.chain : "another verdict", want);
	return 0;
}

/* Address a of a container in selector set fs (which holds it): there? */
static int check_set_addr(struct nat *t, const struct fw_set *fs, const struct ip_addr *a,
			  struct err *e)
{
	char set[NFT_NAME_MAX], addr[IP_STRLEN];
	struct nft_elem el = { .key_len = a->family == AF_INET6 ? 16 : 4 }, got;
	int ret;

	set_name(fs, a->family, set);
	memcpy(el.key, a->b, el.key_len);
	if ((ret = nat_elem_get(t, NFPROTO_INET, set, &el, &got, e)) < 0)
		return err_wrap(e, "firewall");
	if (!ret)
		return err_set(e, ENOENT, "firewall: its address %s is missing from set %s (the "
			       "containers matching %s) in table inet %s", ip_format(a, addr), set,
			       fs->what, FW_TABLE);
	return 0;
}

int fw_check_container(struct nat *t, const struct fw_model *m, const char *name, struct err *e)
{
	const struct fw_container *c = fw_container_find(m, name);
	struct elem_vec v = { 0 };
	bool *used;
	int ret = 0;

	/* not in the model (its network is not set up): berth put nothing */
	if (!c)
		return 0;
	container_elems(m, c, identity(c), &v);
	for (size_t i = 0; i < v.n && ret == 0; i++)
		ret = check_fixed_elem(t, &v.v[i], e);
	array_free(&v);
	if (ret < 0)
		return ret;
	/* each of its addresses in the selector sets that some rule names */
	used = peer_sets(m);
	for (size_t i = 0; i < m->n_sets && ret == 0; i++)
		for (size_t k = 0; used[i] && k < c->n_ifs && ret == 0; k++)
			for (size_t j = 0; j < c->ifs[k].n_addrs && ret == 0; j++)
				if (fw_set_contains(&m->sets[i], &c->ifs[k].addrs[j]))
					ret = check_set_addr(t, &m->sets[i], &c->ifs[k].addrs[j], e);
	free(used);
	return ret;
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
