/* fw.c - the firewall model: sets, and judging a packet the way the kernel
 * rules fw_nft.c emits judge it (the order is fw.h's). */
#include "net/fw.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fw_set_add_addr(struct fw_set *s, const struct ip_addr *a)
{
	struct ip_addr *slot = array_push(&s->addrs);

	if (!slot)
		return -ENOMEM;
	*slot = *a;
	return 0;
}

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ip_addr));
}

/* A container's address, for finding the container from a set's member. */
struct owner {
	struct ip_addr addr;
	unsigned ctr;
};

static int owner_cmp(const void *a, const void *b)
{
	return addr_cmp(&((const struct owner *)a)->addr, &((const struct owner *)b)->addr);
}

/*
 * Invert the selector sets: for each container, the policies whose set holds
 * one of its addresses. One pass over the sets' members, not a pass over the
 * policies per container: with a thousand of each, that is the difference
 * between microseconds and a noticeable pause on every reload.
 */
static int index_selection(struct fw_model *m)
{
	struct owner *own;
	size_t n_own = 0, total = 0, *count = NULL, *next = NULL;
	unsigned *last = NULL;
	int ret = -ENOMEM;

	for (size_t i = 0; i < m->n_containers && m->n_policies; i++)
		for (size_t k = 0; k < m->containers[i].n_ifs; k++)
			n_own += m->containers[i].ifs[k].n_addrs;
	own = calloc(n_own + 1, sizeof(*own));
	count = calloc(m->n_containers + 1, sizeof(*count));
	next = calloc(m->n_containers + 1, sizeof(*next));
	last = calloc(m->n_containers + 1, sizeof(*last));
	if (!own || !count || !next || !last)
		goto out;
	n_own = 0;
	for (size_t i = 0; i < m->n_containers && m->n_policies; i++) {
		const struct fw_container *c = &m->containers[i];

		for (size_t k = 0; k < c->n_ifs; k++)
			for (size_t j = 0; j < c->ifs[k].n_addrs; j++) {
				own[n_own].addr = c->ifs[k].addrs[j];
				own[n_own++].ctr = (unsigned)i;
			}
	}
	qsort(own, n_own, sizeof(*own), owner_cmp);     /* without policies: nothing to find */

	/* twice: count each container's policies, then fill them in */
	for (int fill = 0; fill < 2; fill++) {
		for (size_t i = 0; i < m->n_containers; i++)
			last[i] = UINT_MAX;
		for (size_t p = 0; p < m->n_policies; p++) {
			const struct fw_set *s = &m->sets[m->policies[p].select];

			for (size_t k = 0; k < s->addrs.n; k++) {
				struct owner key = { .addr = s->addrs.v[k] };
				const struct owner *o = bsearch(&key, own, n_own, sizeof(*own), owner_cmp);

				if (!o || last[o->ctr] == p)
					continue;
				last[o->ctr] = (unsigned)p;
				if (fill)
					m->selected_by[next[o->ctr]++] = (unsigned)p;
				else
					count[o->ctr]++;
			}
		}
		if (fill)
			break;
		for (size_t i = 0; i < m->n_containers; i++) {
			next[i] = total;
			total += count[i];
		}
		m->selected_by = calloc(total + 1, sizeof(*m->selected_by));
		if (!m->selected_by)
			goto out;
	}
	for (size_t i = 0; i < m->n_containers; i++) {
		struct fw_container *c = &m->containers[i];

		c->policies = m->selected_by + next[i] - count[i];
		c->n_policies = count[i];
		c->isolated = 0;
		for (size_t k = 0; k < c->n_policies; k++)
			c->isolated |= m->policies[c->policies[k]].isolates;
	}
	ret = 0;
out:
	free(own);
	free(count);
	free(next);
	free(last);
	return ret;
}

static int identity_cmp(const void *a, const void *b)
{
	uint64_t x = (*(const struct fw_container *const *)a)->identity;
	uint64_t y = (*(const struct fw_container *const *)b)->identity;

	return x < y ? -1 : x > y;
}

static bool selected_alike(const struct fw_container *a, const struct fw_container *b)
{
	return a->n_policies == b->n_policies && a->isolated == b->isolated &&
	       !memcmp(a->policies, b->policies, a->n_policies * sizeof(*a->policies));
}

/* Containers sharing an identity share their dispatch chains, so they must
 * be selected alike; where they are not (a hash collision, or a compiler's
 * mistake) each gets its own, which is slower to update but never wrong. */
static int check_identities(struct fw_model *m)
{
	struct fw_container **by_id;

	if (!m->n_policies)
		return 0;           /* every container is selected by none: alike */
	by_id = calloc(m->n_containers + 1, sizeof(*by_id));
	if (!by_id)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_containers; i++)
		by_id[i] = &m->containers[i];
	qsort(by_id, m->n_containers, sizeof(*by_id), identity_cmp);
	for (size_t i = 0, run = 0; i < m->n_containers; i = run) {
		bool alike = true;

		for (run = i + 1; run < m->n_containers && by_id[run]->identity == by_id[i]->identity;
		     run++)
			alike &= selected_alike(by_id[i], by_id[run]);
		for (size_t k = i; !alike && k < run; k++)
			by_id[k]->identity = 0;
	}
	free(by_id);
	return 0;
}

int fw_model_finish(struct fw_model *m)
{
	for (size_t i = 0; i < m->n_sets; i++) {
		struct fw_set *s = &m->sets[i];
		size_t k = 0;

		if (!s->addrs.n)
			continue;
		qsort(s->addrs.v, s->addrs.n, sizeof(*s->addrs.v), addr_cmp);
		for (size_t j = 1; j < s->addrs.n; j++)
			if (addr_cmp(&s->addrs.v[j], &s->addrs.v[k]))
				s->addrs.v[++k] = s->addrs.v[j];
		s->addrs.n = k + 1;
	}
	free(m->selected_by);
	m->selected_by = NULL;
	if (index_selection(m) < 0)
		return -ENOMEM;
	return check_identities(m);
}

bool fw_set_contains(const struct fw_set *s, const struct ip_addr *a)
{
	struct ip_addr key = { .family = a->family };

	memcpy(key.b, a->b, sizeof(key.b));     /* no stray padding in the compare */
	return s->addrs.n && bsearch(&key, s->addrs.v, s->addrs.n, sizeof(*s->addrs.v), addr_cmp);
}

void fw_model_free(struct fw_model *m)
{
	for (size_t i = 0; i < m->n_sets; i++) {
		array_free(&m->sets[i].addrs);
		free(m->sets[i].what);
	}
	for (size_t i = 0; i < m->n_policies; i++) {
		for (size_t k = 0; k < m->policies[i].n_rules; k++)
			free(m->policies[i].rules[k].peers);
		free(m->policies[i].rules);
	}
	free(m->sets);
	free(m->policies);
	free(m->networks);
	free(m->containers);
	free(m->ifaces);
	free(m->selected_by);
	memset(m, 0, sizeof(*m));
}

const struct fw_container *fw_container_find(const struct fw_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_containers; i++)
		if (!strcmp(m->containers[i].name, name))
			return &m->containers[i];
	return NULL;
}

void fw_end_from_addr(const struct fw_model *m, const struct ip_addr *a, bool local,
		      struct fw_end *out)
{
	*out = (struct fw_end){ .kind = local ? FW_END_HOST : FW_END_WORLD, .addr = *a };
	for (size_t i = 0; i < m->n_containers; i++) {
		const struct fw_container *c = &m->containers[i];

		for (size_t k = 0; k < c->n_ifs; k++)
			for (size_t j = 0; j < c->ifs[k].n_addrs; j++)
				if (ip_equal(&c->ifs[k].addrs[j], a)) {
					out->kind = FW_END_CONTAINER;
					out->ctr = c;
					return;
				}
	}
	for (size_t i = 0; i < m->n_networks; i++)
		for (size_t k = 0; k < m->networks[i].n_gw; k++)
			if (ip_equal(&m->networks[i].gw[k], a))
				out->kind = FW_END_HOST;
}

static bool on_network(const struct fw_container *c, unsigned net)
{
	for (size_t i = 0; i < c->n_ifs; i++)
		if (c->ifs[i].network == net)
			return true;
	return false;
}

/* A network both containers are on, or -1. */
static int common_network(const struct fw_container *a, const struct fw_container *b)
{
	for (size_t i = 0; i < a->n_ifs; i++)
		if (on_network(b, a->ifs[i].network))
			return (int)a->ifs[i].network;
	return -1;
}

static bool port_matches(const struct fw_rule *r, const struct fw_packet *p)
{
	if (!r->n_ports)
		return true;
	for (size_t i = 0; i < r->n_ports; i++) {
		const struct fw_port *pt = &r->ports[i];

		if (pt->proto == p->proto &&
		    (pt->any_port || (p->dport >= pt->first && p->dport <= pt->last)))
			return true;
	}
	return false;
}

/* An unspecified address (host or world given by kind only) lies in a CIDR
 * only when the CIDR holds every address of its family. */
static bool cidr_matches(const struct fw_peer *pe, const struct ip_addr *a)
{
	if (!a->family)
		return pe->cidr.len == 0 && pe->n_except == 0;
	if (!ip_prefix_contains(&pe->cidr, a))
		return false;
	for (size_t i = 0; i < pe->n_except; i++)
		if (ip_prefix_contains(&pe->except[i], a))
			return false;
	return true;
}

/* Does the peer match the other end? For ingress that is the source, and
 * traffic through a published port is from world only. */
static bool peer_matches(const struct fw_model *m, const struct fw_peer *pe, int dir,
			 const struct fw_end *other, bool dnat)
{
	bool via_port = dir == FW_INGRESS && dnat;

	switch (pe->kind) {
	case FW_PEER_ALL:
		return true;
	case FW_PEER_SET:
		return !via_port && other->addr.family &&
		       fw_set_contains(&m->sets[pe->set], &other->addr);
	case FW_PEER_CIDR:
		return !via_port && cidr_matches(pe, &other->addr);
	case FW_PEER_HOST:
		return !via_port && other->kind == FW_END_HOST;
	case FW_PEER_WORLD:
		return via_port || other->kind == FW_END_WORLD;
	}
	return false;
}

static void describe_port(const struct fw_packet *p, char *buf, size_t len)
{
	snprintf(buf, len, "%u/%s", p->dport, ip_proto_name(p->proto));
}

/* One direction for container c; other is the far end. */
static bool judge(const struct fw_model *m, const struct fw_container *c, int dir,
		  const struct fw_end *other, const struct fw_packet *p, struct buf *why)
{
	const char *dname = dir == FW_INGRESS ? "ingress" : "egress";
	char port[24];
	size_t n_iso = 0;

	describe_port(p, port, sizeof(port));
	buf_printf(why, "%s %s: ", dname, c->name);
	if (other->ctr == c) {
		buf_puts(why, "allowed: a container always reaches itself\n");
		return true;
	}
	if (dir == FW_EGRESS && other->kind == FW_END_HOST && p->dport == 53 &&
	    (p->proto == IPPROTO_UDP || p->proto == IPPROTO_TCP)) {
		for (size_t i = 0; i < c->n_ifs; i++) {
			const struct fw_network *n = &m->networks[c->ifs[i].network];

			for (size_t k = 0; k < n->n_gw; k++)
				if (ip_equal(&n->gw[k], &other->addr)) {
					buf_printf(why, "allowed: DNS to the gateway of network %s\n",
						   n->name);
					return true;
				}
		}
	}
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct fw_policy *pol = &m->policies[c->policies[i]];

		n_iso += !!(pol->isolates & dir);
		for (size_t r = 0; r < pol->n_rules; r++) {
			const struct fw_rule *ru = &pol->rules[r];
			bool peer = !ru->n_peers;

			if (ru->dir != dir)
				continue;
			for (size_t k = 0; k < ru->n_peers && !peer; k++)
				peer = peer_matches(m, &ru->peers[k], dir, other, p->dnat);
			if (peer && port_matches(ru, p)) {
				buf_printf(why, "allowed by policy %s, rule %s %s (%s:%d)\n", pol->name,
					   dname, ru->name, pol->file, ru->line);
				return true;
			}
		}
	}
	if (c->isolated & dir) {
		buf_printf(why, "denied: isolated for %s by", dname);
		for (size_t i = 0, k = 0; i < c->n_policies; i++) {
			const struct fw_policy *pol = &m->policies[c->policies[i]];

			if (pol->isolates & dir)
				buf_printf(why, "%s policy %s (%s)", k++ ? "," : "", pol->name, pol->file);
		}
		buf_printf(why, ", and no %s rule of %s allows %s%s\n", dname,
			   n_iso > 1 ? "them" : "it", port, p->dnat && dir == FW_INGRESS
			   ? " from world (a published port)" : "");
		return false;
	}
	if (dir == FW_INGRESS && other->kind == FW_END_CONTAINER && !p->dnat) {
		int net = common_network(c, other->ctr);

		if (net >= 0 && m->networks[net].isolate) {
			buf_printf(why, "denied: network %s has isolate = yes and no policy allows %s\n",
				   m->networks[net].name, other->ctr->name);
			return false;
		}
	}
	buf_printf(why, "allowed: not isolated for %s\n", dname);
	return true;
}

bool fw_eval(const struct fw_model *m, const struct fw_packet *p, struct buf *why)
{
	const struct fw_end *s = &p->src, *d = &p->dst;

	if (s->kind != FW_END_CONTAINER && d->kind != FW_END_CONTAINER) {
		buf_puts(why, "allowed: berth filters only traffic from or to containers\n");
		return true;
	}
	if (s->kind == FW_END_CONTAINER && d->kind == FW_END_CONTAINER && s->ctr != d->ctr &&
	    !p->dnat && common_network(s->ctr, d->ctr) < 0) {
		buf_printf(why, "denied: %s and %s share no network (containers on different networks"
			   " reach each other only through published ports)\n", s->ctr->name,
			   d->ctr->name);
		return false;
	}
	if (s->kind == FW_END_CONTAINER && !judge(m, s->ctr, FW_EGRESS, d, p, why))
		return false;
	if (d->kind == FW_END_CONTAINER && !judge(m, d->ctr, FW_INGRESS, s, p, why))
		return false;
	return true;
}
