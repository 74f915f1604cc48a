/* records.c - the record set the server answers from: names and addresses in
 * hash tables keyed by pre-lower-cased labels, built once, then read-only. */
#include "dns/dns_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t hash_addr(const struct ip_addr *a)
{
	return hash_bytes(a->b, a->family == AF_INET6 ? 16 : 4) ^ a->family;
}

/* Make room for one more element in a, one of r's arrays, and count what
 * that allocates in r->memory. 0 or -ENOMEM. */
#define grow_one(r, a) __extension__ ({					\
	size_t grow_cap_ = (a)->cap;						\
	int grow_ret_ = array_reserve((a), (size_t)(a)->n + 1);		\
	(r)->memory += ((size_t)(a)->cap - grow_cap_) * sizeof(*(a)->v);	\
	grow_ret_;								\
})

struct dns_records *dns_records_new(const char *domain, uint32_t ttl, struct err *e)
{
	struct dns_records *r;
	uint8_t name[DNS_NAME_MAX];
	size_t len;

	if (dns_name_from_str(domain, name, &len) < 0 || len < 2) {
		err_set(e, EINVAL, "DNS domain '%s' is not a valid domain name", domain ? domain : "");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		err_sys(e, ENOMEM, "DNS records");
		return NULL;
	}
	dns_name_lower(r->domain, name, len);
	r->domain_len = len;
	for (size_t i = 0; r->domain[i]; i += 1 + (size_t)r->domain[i])
		r->domain_labels++;
	r->ttl = ttl;
	r->serial = (uint32_t)time(NULL);
	r->memory = sizeof(*r);
	return r;
}

void dns_records_free(struct dns_records *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->nnets; i++)
		free(r->netnames[i]);
	for (size_t i = 0; i < r->nodes.n; i++) {
		array_free(&r->nodes.v[i].addrs);
		array_free(&r->nodes.v[i].srvs);
	}
	array_free(&r->nodes);
	free(r->node_tab);
	free(r->addr_tab);
	array_free(&r->zones);
	free(r);
}

size_t dns_records_memory(const struct dns_records *r)
{
	return r ? r->memory : 0;
}

/* A container or service name must be one label of letters, digits, '-'
 * and '_' (Docker's names are like that, minus the dot). */
static bool valid_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > DNS_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static int rehash_nodes(struct dns_records *r, uint32_t size)
{
	uint32_t *tab = calloc(size, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nodes.n; i++) {
		uint32_t h = r->nodes.v[i].hash & (size - 1);
		while (tab[h])
			h = (h + 1) & (size - 1);
		tab[h] = i + 1;
	}
	r->memory += (size_t)(size - r->node_tab_size) * sizeof(*tab);
	free(r->node_tab);
	r->node_tab = tab;
	r->node_tab_size = size;
	return 0;
}

const struct dns_node *dns_records_find(const struct dns_records *r, const uint8_t *label,
					size_t len)
{
	uint32_t h;

	if (!r || !r->node_tab_size || len > DNS_LABEL_MAX)
		return NULL;
	h = hash_bytes(label, len) & (r->node_tab_size - 1);
	while (r->node_tab[h]) {
		const struct dns_node *n = &r->nodes.v[r->node_tab[h] - 1];
		if (n->key[0] == len && !memcmp(n->key + 1, label, len))
			return n;
		h = (h + 1) & (r->node_tab_size - 1);
	}
	return NULL;
}

/* The index of the node for name (created if missing), or -errno. */
static long node_get(struct dns_records *r, const char *name)
{
	uint8_t label[DNS_LABEL_MAX];
	size_t len = strlen(name);
	const struct dns_node *f;
	struct dns_node *n;

	dns_name_lower(label, (const uint8_t *)name, len);
	f = dns_records_find(r, label, len);
	if (f)
		return f - r->nodes.v;
	if (r->nodes.n >= UINT16_MAX)
		return -ENOSPC;
	if (grow_one(r, &r->nodes) < 0)
		return -ENOMEM;
	if ((r->nodes.n + 1) * 2 > r->node_tab_size &&
	    rehash_nodes(r, r->node_tab_size ? r->node_tab_size * 2 : 16) < 0)
		return -ENOMEM;
	n = &r->nodes.v[r->nodes.n];
	memset(n, 0, sizeof(*n));
	n->key[0] = (uint8_t)len;
	memcpy(n->key + 1, label, len);
	n->hash = hash_bytes(label, len);
	uint32_t h = n->hash & (r->node_tab_size - 1);
	while (r->node_tab[h])
		h = (h + 1) & (r->node_tab_size - 1);
	r->node_tab[h] = (uint32_t)r->nodes.n + 1;
	return (long)r->nodes.n++;
}

static int rehash_addrs(struct dns_records *r, uint32_t size)
{
	struct dns_addr_slot *tab = calloc(size, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->addr_tab_size; i++) {
		struct dns_addr_slot *s = &r->addr_tab[i];
		uint32_t h;

		if (!s->node1)
			continue;
		h = hash_addr(&r->nodes.v[s->node1 - 1].addrs.v[s->idx].addr) & (size - 1);
		while (tab[h].node1)
			h = (h + 1) & (size - 1);
		tab[h] = *s;
	}
	r->memory += (size_t)(size - r->addr_tab_size) * sizeof(*tab);
	free(r->addr_tab);
	r->addr_tab = tab;
	r->addr_tab_size = size;
	return 0;
}

const struct dns_addr_ent *dns_records_find_addr(const struct dns_records *r,
						 const struct ip_addr *a)
{
	uint32_t h;

	if (!r || !r->addr_tab_size)
		return NULL;
	h = hash_addr(a) & (r->addr_tab_size - 1);
	while (r->addr_tab[h].node1) {
		const struct dns_addr_slot *s = &r->addr_tab[h];
		const struct dns_addr_ent *ent = &r->nodes.v[s->node1 - 1].addrs.v[s->idx];
		if (ip_equal(&ent->addr, a))
			return ent;
		h = (h + 1) & (r->addr_tab_size - 1);
	}
	return NULL;
}

static int push_addr(struct dns_records *r, uint32_t node, const struct ip_addr *a,
		     uint32_t ctr, uint8_t net)
{
	struct dns_node *n = &r->nodes.v[node];

	for (uint32_t i = 0; i < n->addrs.n; i++)
		if (n->addrs.v[i].ctr == ctr && ip_equal(&n->addrs.v[i].addr, a))
			return 0;   /* same container, same address: once */
	if (grow_one(r, &n->addrs) < 0)
		return -ENOMEM;
	n->addrs.v[n->addrs.n++] = (struct dns_addr_ent){ .addr = *a, .ctr = (uint16_t)ctr,
							  .net = net };
	return 0;
}

static void rzone_apex(struct dns_rzone *z)
{
	const struct ip_addr *a = &z->subnet.addr;
	bool v6 = a->family == AF_INET6;
	unsigned step = v6 ? 4 : 8, n = z->subnet.len / step, o = 0;
	static const char hex[] = "0123456789abcdef";
	const char *tail = v6 ? "\003ip6\004arpa" : "\007in-addr\004arpa";

	for (unsigned i = n; i-- > 0;) {
		if (v6) {
			uint8_t b = a->b[i / 2];
			z->apex[o++] = 1;
			z->apex[o++] = (uint8_t)hex[i % 2 ? b & 0xf : b >> 4];
		} else {
			char d[4];
			size_t l = 0;
			unsigned v = a->b[i];
			if (v >= 100)
				d[l++] = (char)('0' + v / 100);
			if (v >= 10)
				d[l++] = (char)('0' + v / 10 % 10);
			d[l++] = (char)('0' + v % 10);
			z->apex[o++] = (uint8_t)l;
			memcpy(z->apex + o, d, l);
			o += l;
		}
	}
	memcpy(z->apex + o, tail, strlen(tail) + 1);
	z->apex_len = o + strlen(tail) + 1;
}

int dns_records_add_network(struct dns_records *r, const char *name,
			    const struct ip_prefix *subnets, size_t nsubnets, struct err *e)
{
	unsigned idx;

	for (unsigned i = 0; i < r->nnets; i++)
		if (!strcmp(r->netnames[i], name))
			return err_set(e, EEXIST, "DNS: network '%s' declared twice", name);
	if (r->nnets >= DNS_MAX_NETWORKS)
		return err_set(e, ENOSPC, "DNS: network '%s': more than %d networks", name,
			       DNS_MAX_NETWORKS);
	idx = r->nnets;
	r->netnames[idx] = strdup(name);
	if (!r->netnames[idx])
		return err_sys(e, ENOMEM, "DNS: network '%s'", name);
	r->memory += strlen(name) + 1;
	r->nnets++;
	for (size_t i = 0; i < nsubnets; i++) {
		struct dns_rzone *z;

		if (grow_one(r, &r->zones) < 0)
			return err_sys(e, ENOMEM, "DNS: network '%s'", name);
		z = &r->zones.v[r->zones.n++];
		z->subnet = subnets[i];
		z->net = (uint8_t)idx;
		rzone_apex(z);
	}
	return 0;
}

int dns_records_add_container(struct dns_records *r, const char *name, const char *network,
			      const struct ip_addr *addrs, size_t naddrs, const char *service,
			      struct err *e)
{
	long ci, si = -1;
	int net = -1;

	if (!valid_label(name))
		return err_set(e, EINVAL, "DNS: container name '%s' is not a DNS label "
			       "(1-63 letters, digits, '-' or '_')", name);
	if (service && !valid_label(service))
		return err_set(e, EINVAL, "DNS: service name '%s' of container '%s' is not a DNS "
			       "label (1-63 letters, digits, '-' or '_')", service, name);
	for (unsigned i = 0; i < r->nnets; i++)
		if (!strcmp(r->netnames[i], network))
			net = (int)i;
	if (net < 0)
		return err_set(e, ENOENT, "DNS: container '%s': unknown network '%s'", name, network);
	ci = node_get(r, name);
	if (ci >= 0 && service && strcasecmp(service, name))
		si = node_get(r, service);
	if (ci < 0 || (service && strcasecmp(service, name) && si < 0))
		return err_set(e, ci == -ENOSPC || si == -ENOSPC ? ENOSPC : ENOMEM,
			       "DNS: container '%s': no room for its names", name);
	r->nodes.v[ci].nets |= (dns_netmask)1 << net;
	for (size_t i = 0; i < naddrs; i++) {
		struct dns_node *n;
		uint32_t before;

		if (addrs[i].family != AF_INET && addrs[i].family != AF_INET6)
			return err_set(e, EINVAL, "DNS: container '%s': address of unknown family",
				       name);
		n = &r->nodes.v[ci];
		before = n->addrs.n;
		if (push_addr(r, (uint32_t)ci, &addrs[i], (uint32_t)ci, (uint8_t)net) < 0)
			goto nomem;
		if (si >= 0 && push_addr(r, (uint32_t)si, &addrs[i], (uint32_t)ci, (uint8_t)net) < 0)
			goto nomem;
		if (r->nodes.v[ci].addrs.n == before || dns_records_find_addr(r, &addrs[i]))
			continue;   /* the first owner of an address keeps its PTR */
		if ((r->naddr_tab + 1) * 2 > r->addr_tab_size &&
		    rehash_addrs(r, r->addr_tab_size ? r->addr_tab_size * 2 : 16) < 0)
			goto nomem;
		uint32_t h = hash_addr(&addrs[i]) & (r->addr_tab_size - 1);
		while (r->addr_tab[h].node1)
			h = (h + 1) & (r->addr_tab_size - 1);
		r->addr_tab[h] = (struct dns_addr_slot){ .node1 = (uint32_t)ci + 1, .idx = before };
		r->naddr_tab++;
	}
	return 0;
nomem:
	return err_sys(e, ENOMEM, "DNS: container '%s'", name);
}

int dns_records_add_srv(struct dns_records *r, const char *name, uint16_t port,
			const char *proto, struct err *e)
{
	static const char *const protos[] = { "tcp", "udp", "sctp" };
	struct dns_node *n;
	long ni;
	int p = -1;

	for (unsigned i = 0; i < ARRAY_SIZE(protos); i++)
		if (proto && !strcasecmp(proto, protos[i]))
			p = (int)i;
	if (p < 0)
		return err_set(e, EINVAL, "DNS: SRV for '%s': protocol '%s' must be tcp, udp or sctp",
			       name, proto ? proto : "");
	if (!valid_label(name))
		return err_set(e, EINVAL, "DNS: SRV for '%s': not a DNS label", name);
	if (port == 0)
		return err_set(e, EINVAL, "DNS: SRV for '%s': port 0", name);
	ni = node_get(r, name);
	if (ni < 0)
		return err_sys(e, ENOMEM, "DNS: SRV for '%s'", name);
	n = &r->nodes.v[ni];
	for (uint32_t i = 0; i < n->srvs.n; i++)
		if (n->srvs.v[i].port == port && n->srvs.v[i].proto == p)
			return 0;
	if (grow_one(r, &n->srvs) < 0)
		return err_sys(e, ENOMEM, "DNS: SRV for '%s'", name);
	n->srvs.v[n->srvs.n++] = (struct dns_srv_ent){ .port = port, .proto = (uint8_t)p };
	return 0;
}

dns_netmask dns_records_scope(const struct dns_records *r, const struct ip_addr *src)
{
	const struct dns_addr_ent *ent;
	dns_netmask m = 0;

	if (!r)
		return 0;
	if (src) {
		ent = dns_records_find_addr(r, src);
		if (ent)
			return r->nodes.v[ent->ctr].nets;
		for (size_t i = 0; i < r->zones.n; i++)
			if (ip_prefix_contains(&r->zones.v[i].subnet, src))
				m |= (dns_netmask)1 << r->zones.v[i].net;
		if (m)
			return m;
	}
	return r->nnets >= 64 ? ~(dns_netmask)0 : ((dns_netmask)1 << r->nnets) - 1;
}
