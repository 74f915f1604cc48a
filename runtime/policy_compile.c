/* policy_compile.c - the running config and the containers' addresses turned
 * into the firewall model (net/fw.h) that the kernel gets and `policy why`
 * evaluates. */
#include "runtime/daemon_int.h"
#include "net/fw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct compile {
	struct fw_model *m;
	const struct selector **sel;        /* per set: the selector it holds */
	const struct cfg_container **ctr;   /* per model container: its config */
};

/* The set for a selector; selectors written alike share one. */
static unsigned set_for(struct compile *cc, const struct selector *sel)
{
	struct fw_model *m = cc->m;
	struct buf what;

	buf_init(&what);
	selector_format(sel, &what);
	for (size_t i = 0; i < m->n_sets; i++)
		if (!strcmp(m->sets[i].what, what.data)) {
			buf_free(&what);
			return (unsigned)i;
		}
	cc->sel[m->n_sets] = sel;
	m->sets[m->n_sets] = (struct fw_set){ .what = what.data };     /* takes the buffer */
	return (unsigned)m->n_sets++;
}

static int compile_rule(struct compile *cc, const struct rule *r, struct fw_rule *out)
{
	struct fw_port *ports;

	/* one block: the peers, then the ports (fw_model_free frees peers) */
	out->peers = calloc(1, r->n_peers * sizeof(struct fw_peer) + r->n_ports * sizeof(*ports) + 1);
	if (!out->peers)
		return -ENOMEM;
	ports = (struct fw_port *)(void *)(out->peers + r->n_peers);
	out->dir = r->dir == POLICY_INGRESS ? FW_INGRESS : FW_EGRESS;
	out->name = r->name;
	out->line = r->line;
	out->n_peers = r->n_peers;
	out->ports = ports;
	out->n_ports = r->n_ports;
	for (size_t i = 0; i < r->n_ports; i++)
		ports[i] = (struct fw_port){ r->ports[i].proto, r->ports[i].any_port,
					     r->ports[i].first, r->ports[i].last };
	for (size_t i = 0; i < r->n_peers; i++) {
		const struct peer *pe = &r->peers[i];
		struct fw_peer *fp = &out->peers[i];

		fp->line = pe->line;
		switch (pe->kind) {
		case PEER_SELECTOR:
			fp->kind = FW_PEER_SET;
			fp->set = set_for(cc, &pe->sel);
			break;
		case PEER_CIDR:
			fp->kind = FW_PEER_CIDR;
			fp->cidr = pe->cidr;
			fp->except = pe->except;
			fp->n_except = pe->n_except;
			break;
		case PEER_HOST: fp->kind = FW_PEER_HOST; break;
		case PEER_WORLD: fp->kind = FW_PEER_WORLD; break;
		case PEER_ALL: fp->kind = FW_PEER_ALL; break;
		}
	}
	return 0;
}

/* The same for the same labels in any order: a sum of one hash per label,
 * each mixed (murmur3's finalizer) so that near-equal FNV values, as
 * "group=a, idx=2" and "group=b, idx=1" give, do not cancel out. */
static uint64_t label_identity(const struct label *l, size_t n)
{
	uint64_t id = 1;

	for (size_t i = 0; i < n; i++) {
		uint64_t h = hash64(HASH64_INIT, l[i].key, strlen(l[i].key) + 1);

		h = hash64(h, l[i].value, strlen(l[i].value));
		h ^= h >> 33;
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 33;
		h *= 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 33;
		id += h;
	}
	return id ? id : 1;
}

/* The container's interfaces go into the model's one array of them (no
 * allocation per container); nothing is formatted here: the host-side names
 * are derived only for the containers whose elements are put. */
static void compile_container(const struct config *cfg, const struct ctr *c,
			      struct fw_model *m, struct fw_container *out)
{
	struct fw_iface *ifs = m->ifaces + m->n_ifaces;

	out->name = c->cfg->name;
	out->identity = label_identity(c->cfg->labels, c->cfg->n_labels);
	out->ifs = ifs;
	for (size_t i = 0; i < c->n_ifs; i++) {
		const struct ctr_if *ci = &c->ifs[i];
		struct fw_iface *fi = &ifs[out->n_ifs];

		for (size_t k = 0; k < cfg->n_networks; k++)
			if (cfg->networks[k].name == ci->network ||
			    !strcmp(cfg->networks[k].name, ci->network)) {
				fi->network = (uint16_t)k;
				break;
			}
		memcpy(fi->ifname, ci->ifname, sizeof(fi->ifname));
		fi->ifname[sizeof(fi->ifname) - 1] = '\0';
		if (ci->ip4.family)
			fi->addrs[fi->n_addrs++] = ci->ip4;
		if (ci->ip6.family)
			fi->addrs[fi->n_addrs++] = ci->ip6;
		out->n_ifs++;
	}
	m->n_ifaces += out->n_ifs;
}

int policy_compile(const struct config *cfg, const struct ctr *ctrs, size_t n_ctrs,
		   struct fw_model *m, struct err *e)
{
	struct compile cc = { .m = m };
	size_t max_sets = cfg->n_policies, n_ifaces = 0;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < cfg->n_policies; i++)
		for (size_t r = 0; r < cfg->policies[i].n_rules; r++)
			max_sets += cfg->policies[i].rules[r].n_peers;
	for (size_t i = 0; i < n_ctrs; i++)
		if (ctrs[i].cfg)
			n_ifaces += ctrs[i].n_ifs;
	m->sets = calloc(max_sets + 1, sizeof(*m->sets));
	m->policies = calloc(cfg->n_policies + 1, sizeof(*m->policies));
	m->networks = calloc(cfg->n_networks + 1, sizeof(*m->networks));
	m->containers = calloc(n_ctrs + 1, sizeof(*m->containers));
	m->ifaces = calloc(n_ifaces + 1, sizeof(*m->ifaces));
	cc.sel = calloc(max_sets + 1, sizeof(*cc.sel));
	cc.ctr = calloc(n_ctrs + 1, sizeof(*cc.ctr));
	if (!m->sets || !m->policies || !m->networks || !m->containers || !m->ifaces || !cc.sel || !cc.ctr)
		goto nomem;

	for (size_t i = 0; i < cfg->n_networks; i++) {
		const struct cfg_network *cn = &cfg->networks[i];
		struct fw_network *fn = &m->networks[m->n_networks++];

		*fn = (struct fw_network){ .name = cn->name, .bridge = cn->bridge,
					   .isolate = cn->isolate };
		fn->gw[fn->n_gw++] = cn->gateway;
		if (cn->has_v6)
			fn->gw[fn->n_gw++] = cn->gateway6;
	}
	for (size_t i = 0; i < n_ctrs; i++) {
		if (!ctrs[i].cfg || !ctrs[i].n_ifs)
			continue;
		cc.ctr[m->n_containers] = ctrs[i].cfg;
		compile_container(cfg, &ctrs[i], m, &m->containers[m->n_containers++]);
	}

	for (size_t i = 0; i < cfg->n_policies; i++) {
		const struct policy *p = &cfg->policies[i];
		struct fw_policy *fp = &m->policies[m->n_policies++];

		fp->name = p->name;
		fp->file = p->file;
		fp->isolates = (p->types & POLICY_INGRESS ? FW_INGRESS : 0) |
			       (p->types & POLICY_EGRESS ? FW_EGRESS : 0);
		fp->select = set_for(&cc, &p->select);
		fp->rules = calloc(p->n_rules + 1, sizeof(*fp->rules));
		if (!fp->rules)
			goto nomem;
		for (size_t r = 0; r < p->n_rules; r++) {
			if (compile_rule(&cc, &p->rules[r], &fp->rules[r]) < 0)
				goto nomem;
			fp->n_rules++;
			fp->has_rules |= (unsigned)fp->rules[r].dir;
		}
	}

	/* Fill each selector's set; fw_model_finish derives who selects whom. */
	for (size_t s = 0; s < m->n_sets; s++)
		for (size_t k = 0; k < m->n_containers; k++) {
			const struct fw_container *fc = &m->containers[k];

			if (!selector_match(cc.sel[s], cc.ctr[k]->labels, cc.ctr[k]->n_labels))
				continue;
			for (size_t f = 0; f < fc->n_ifs; f++)
				for (size_t a = 0; a < fc->ifs[f].n_addrs; a++)
					if (fw_set_add_addr(&m->sets[s], &fc->ifs[f].addrs[a]) < 0)
						goto nomem;
		}
	if (fw_model_finish(m) < 0)
		goto nomem;
	free(cc.sel);
	free(cc.ctr);
	return 0;
nomem:
	free(cc.sel);
	free(cc.ctr);
	fw_model_free(m);
	return err_set(e, ENOMEM, "compile policies: out of memory");
}
