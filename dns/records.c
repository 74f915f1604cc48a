/* records.c - the record set the server answers from: names and addresses in
 * hash tables keyed by pre-lower-cased labels, changed container by
 * container (each change costs what that container has). */
#include "dns/dns_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_OWN 128                 /* address entries of one container */

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

static void node_free_parts(struct dns_node *n)
{
	if (n->alog)
		free(n->a.v);
	free(n->srvs);
}

void dns_records_free(struct dns_records *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->nnets; i++)
		free(r->netnames[i]);
	for (size_t i = 0; i < r->nodes.n; i++)
		if (r->nodes.v[i].flags & DNS_NODE_USED)
			node_free_parts(&r->nodes.v[i]);
	array_free(&r->nodes);
	free(r->node_tab);
	free(r->addr_tab);
	free(r->keys);
	array_free(&r->zones);
	free(r);
}

size_t dns_records_memory(const struct dns_records *r)
{
	return r ? r->memory : 0;
}

/* A change in place: the SOA serial moves on (a set built anew starts at
 * the time it was made). */
static void changed(struct dns_records *r)
{
	uint32_t now = (uint32_t)time(NULL);

	r->serial = now > r->serial ? now : r->serial + 1;
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

/* ---- names: nodes, their hash table and their labels ---------------------- */

static const uint8_t *node_key(const struct dns_records *r, uint32_t i)
{
	return r->keys + r->nodes.v[i].key;
}

/* Order of owners: by label, then length (labels are lower-cased). */
static int key_cmp(const struct dns_records *r, uint32_t a, uint32_t b)
{
	const uint8_t *ka = node_key(r, a), *kb = node_key(r, b);
	int c = memcmp(ka + 1, kb + 1, ka[0] < kb[0] ? ka[0] : kb[0]);

	return c ? c : (int)ka[0] - (int)kb[0];
}

static int rehash_nodes(struct dns_records *r, uint32_t size)
{
	uint16_t *tab = calloc(size, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nodes.n; i++) {
		uint32_t h;

		if (!(r->nodes.v[i].flags & DNS_NODE_USED))
			continue;
		h = r->nodes.v[i].hash & (size - 1);
		while (tab[h])
			h = (h + 1) & (size - 1);
		tab[h] = (uint16_t)(i + 1);
	}
	r->memory += (size_t)(size - r->node_tab_size) * sizeof(*tab);
	free(r->node_tab);
	r->node_tab = tab;
	r->node_tab_size = size;
	return 0;
}

/* The slot of node_tab holding the label, or -1. */
static long node_slot(const struct dns_records *r, const uint8_t *label, size_t len, uint32_t hash)
{
	uint32_t mask = r->node_tab_size - 1, h;

	if (!r->node_tab_size)
		return -1;
	for (h = hash & mask; r->node_tab[h]; h = (h + 1) & mask) {
		const struct dns_node *n = &r->nodes.v[r->node_tab[h] - 1];
		const uint8_t *k = r->keys + n->key;

		if (n->hash == hash && k[0] == len && !memcmp(k + 1, label, len))
			return (long)h;
	}
	return -1;
}

const struct dns_node *dns_records_find(const struct dns_records *r, const uint8_t *label,
					size_t len)
{
	long s;

	if (!r || len > DNS_LABEL_MAX)
		return NULL;
	s = node_slot(r, label, len, hash_bytes(label, len));
	return s < 0 ? NULL : &r->nodes.v[r->node_tab[s] - 1];
}

/* The labels again without the holes removed nodes left (amortised: when
 * the holes are half of it). */
static void compact_keys(struct dns_records *r)
{
	uint8_t *k = malloc(r->keys_len - r->keys_dead + 1);
	uint32_t at = 0;

	if (!k)
		return;     /* the holes stay until next time */
	for (size_t i = 0; i < r->nodes.n; i++) {
		struct dns_node *n = &r->nodes.v[i];
		uint32_t l;

		if (!(n->flags & DNS_NODE_USED))
			continue;
		l = 1u + r->keys[n->key];
		memcpy(k + at, r->keys + n->key, l);
		n->key = at;
		at += l;
	}
	r->memory -= r->keys_cap - at;
	free(r->keys);
	r->keys = k;
	r->keys_len = r->keys_cap = at;
	r->keys_dead = 0;
}

static int keys_append(struct dns_records *r, const uint8_t *label, size_t len, uint32_t *off)
{
	if (r->keys_len + len + 1 > r->keys_cap) {
		uint32_t cap = r->keys_cap ? r->keys_cap : 256;
		uint8_t *k;

		while (cap < r->keys_len + len + 1)
			cap *= 2;
		k = realloc(r->keys, cap);
		if (!k)
			return -ENOMEM;
		r->memory += cap - r->keys_cap;
		r->keys = k;
		r->keys_cap = cap;
	}
	*off = r->keys_len;
	r->keys[r->keys_len] = (uint8_t)len;
	memcpy(r->keys + r->keys_len + 1, label, len);
	r->keys_len += (uint32_t)len + 1;
	return 0;
}

/* The index of the node for label (lower-cased; created if missing), or
 * -errno. Creating a node may move r->nodes.v. */
static long node_get(struct dns_records *r, const uint8_t *label, size_t len)
{
	uint32_t hash = hash_bytes(label, len), idx, key, h;
	long s = node_slot(r, label, len, hash);
	struct dns_node *n;

	if (s >= 0)
		return r->node_tab[s] - 1;
	if (r->nodes_live >= UINT16_MAX - 1)
		return -ENOSPC;
	if ((r->nodes_live + 1) * 2 > r->node_tab_size &&
	    rehash_nodes(r, r->node_tab_size ? r->node_tab_size * 2 : 16) < 0)
		return -ENOMEM;
	if (!r->free_node && grow_one(r, &r->nodes) < 0)
		return -ENOMEM;
	if (keys_append(r, label, len, &key) < 0)
		return -ENOMEM;
	if (r->free_node) {
		idx = r->free_node - 1;
		r->free_node = r->nodes.v[idx].hash;
	} else {
		idx = (uint32_t)r->nodes.n++;
	}
	n = &r->nodes.v[idx];
	memset(n, 0, sizeof(*n));
	n->flags = DNS_NODE_USED;
	n->hash = hash;
	n->key = key;
	for (h = hash & (r->node_tab_size - 1); r->node_tab[h]; h = (h + 1) & (r->node_tab_size - 1))
		;
	r->node_tab[h] = (uint16_t)(idx + 1);
	r->nodes_live++;
	return idx;
}

/* Linear probing without tombstones: after emptying slot i, move back the
 * entries after it that would no longer be found (Knuth's algorithm R). */
#define TAB_DELETE(tab, size, i, home_of) do {				\
	uint32_t mask_ = (size) - 1, i_ = (i), j_ = (i);			\
	for (;;) {								\
		uint32_t k_;							\
		(tab)[i_] = (__typeof__((tab)[0])){ 0 };			\
		for (;;) {							\
			j_ = (j_ + 1) & mask_;					\
			if (!TAB_USED((tab)[j_]))				\
				goto tab_done_;					\
			k_ = home_of((tab)[j_]) & mask_;			\
			if (i_ <= j_ ? (i_ < k_ && k_ <= j_) : (i_ < k_ || k_ <= j_)) \
				continue;					\
			break;							\
		}								\
		(tab)[i_] = (tab)[j_];						\
		i_ = j_;							\
	}									\
tab_done_:;									\
} while (0)

/* Free node i if nothing holds it any more: no container, no service, no
 * address, no SRV. */
static void node_put(struct dns_records *r, uint32_t i)
{
	struct dns_node *n = &r->nodes.v[i];
	long s;

	if (!(n->flags & DNS_NODE_USED) || (n->flags & (DNS_NODE_CTR | DNS_NODE_SVC)) ||
	    n->naddrs || n->srvs || n->members)
		return;
	s = node_slot(r, r->keys + n->key + 1, r->keys[n->key], n->hash);
	if (s >= 0) {
#define TAB_USED(x) ((x) != 0)
#define NODE_HOME(x) (r->nodes.v[(x) - 1].hash)
		TAB_DELETE(r->node_tab, r->node_tab_size, (uint32_t)s, NODE_HOME);
#undef NODE_HOME
#undef TAB_USED
	}
	r->keys_dead += 1u + r->keys[n->key];
	node_free_parts(n);
	memset(n, 0, sizeof(*n));
	n->hash = r->free_node;
	r->free_node = i + 1;
	r->nodes_live--;
	if (r->keys_dead > 4096 && r->keys_dead * 2 > r->keys_len)
		compact_keys(r);
}

/* ---- address entries of a node --------------------------------------------- */

static struct dns_addr_ent *node_addrs(struct dns_node *n)
{
	return n->alog ? n->a.v : &n->a.one;
}

static uint32_t addrs_cap(const struct dns_node *n)
{
	return n->alog ? 1u << n->alog : 1;
}

/* Room for want entries (at least; the inline one when want <= 1). */
static int addrs_reserve(struct dns_records *r, struct dns_node *n, uint32_t want)
{
	struct dns_addr_ent *v;
	uint8_t alog = 1;

	if (want <= addrs_cap(n))
		return 0;
	if (want > UINT16_MAX)
		return -ENOSPC;
	while ((1u << alog) < want)
		alog++;
	if (n->alog) {
		v = realloc(n->a.v, (1u << alog) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->memory -= addrs_cap(n) * sizeof(*v);
	} else {
		v = malloc((1u << alog) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (n->naddrs)
			v[0] = n->a.one;
	}
	r->memory += (1u << alog) * sizeof(*v);
	n->a.v = v;
	n->alog = alog;
	return 0;
}

/* After entries went: back inline, or a quarter-used array halved. */
static void addrs_shrink(struct dns_records *r, struct dns_node *n)
{
	if (!n->alog)
		return;
	if (n->naddrs <= 1) {
		struct dns_addr_ent *v = n->a.v;

		if (n->naddrs)
			n->a.one = v[0];
		r->memory -= addrs_cap(n) * sizeof(*v);
		free(v);
		n->alog = 0;
	} else if (n->naddrs * 4u <= addrs_cap(n)) {
		struct dns_addr_ent *v = realloc(n->a.v, addrs_cap(n) / 2 * sizeof(*v));

		if (!v)
			return;
		r->memory -= addrs_cap(n) / 2 * sizeof(*v);
		n->a.v = v;
		n->alog--;
	}
}

/* Where owner ctr's entries are (or go) in node n: [*from, *to). */
static void owner_range(const struct dns_records *r, const struct dns_node *n, uint32_t ctr,
			uint32_t *from, uint32_t *to)
{
	const struct dns_addr_ent *v = dns_node_addrs(n);
	uint32_t lo = 0, hi = n->naddrs;

	while (lo < hi) {       /* the first entry whose owner is not before ctr */
		uint32_t mid = (lo + hi) / 2;

		if (v[mid].ctr != ctr && key_cmp(r, v[mid].ctr, ctr) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*from = lo;
	while (lo < n->naddrs && v[lo].ctr == ctr)
		lo++;
	*to = lo;
}

/* Owner ctr's entries ents[0..k) into node ni, after any it has there. */
static int addrs_insert(struct dns_records *r, uint32_t ni, uint32_t ctr,
			const struct dns_addr_ent *ents, uint32_t k)
{
	struct dns_node *n = &r->nodes.v[ni];
	struct dns_addr_ent *v;
	uint32_t from, to;
	int ret;

	if (!k)
		return 0;
	ret = addrs_reserve(r, n, (uint32_t)n->naddrs + k);
	if (ret < 0)
		return ret;
	owner_range(r, n, ctr, &from, &to);
	v = node_addrs(n);
	memmove(v + to + k, v + to, (n->naddrs - to) * sizeof(*v));
	memcpy(v + to, ents, k * sizeof(*v));
	n->naddrs = (uint16_t)(n->naddrs + k);
	return 0;
}

static void addrs_remove(struct dns_records *r, uint32_t ni, uint32_t ctr)
{
	struct dns_node *n = &r->nodes.v[ni];
	struct dns_addr_ent *v = node_addrs(n);
	uint32_t from, to;

	owner_range(r, n, ctr, &from, &to);
	if (from == to)
		return;
	memmove(v + from, v + to, (n->naddrs - to) * sizeof(*v));
	n->naddrs = (uint16_t)(n->naddrs - (to - from));
	addrs_shrink(r, n);
}

/* The k-th of container ctr's own entries, or NULL. */
static const struct dns_addr_ent *own_entry(const struct dns_records *r, uint32_t ctr, uint32_t k)
{
	const struct dns_node *n = &r->nodes.v[ctr];
	const struct dns_addr_ent *v = dns_node_addrs(n);

	for (uint32_t i = 0; i < n->naddrs; i++)
		if (v[i].ctr == ctr && k-- == 0)
			return &v[i];
	return NULL;
}

/* ---- by address: PTR and the scope of a client ------------------------------ */

static int rehash_addrs(struct dns_records *r, uint32_t size)
{
	struct dns_addr_slot *tab = calloc(size, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->addr_tab_size; i++) {
		struct dns_addr_slot *s = &r->addr_tab[i];
		uint32_t h;

		if (!s->ctr1)
			continue;
		for (h = s->hash & (size - 1); tab[h].ctr1; h = (h + 1) & (size - 1))
			;
		tab[h] = *s;
	}
	r->memory += (size_t)(size - r->addr_tab_size) * sizeof(*tab);
	free(r->addr_tab);
	r->addr_tab = tab;
	r->addr_tab_size = size;
	return 0;
}

static long addr_slot(const struct dns_records *r, const struct ip_addr *a, uint32_t hash)
{
	uint32_t mask = r->addr_tab_size - 1, h;

	if (!r->addr_tab_size)
		return -1;
	for (h = hash & mask; r->addr_tab[h].ctr1; h = (h + 1) & mask) {
		const struct dns_addr_slot *s = &r->addr_tab[h];
		const struct dns_addr_ent *ent;

		if (s->hash != hash)
			continue;
		ent = own_entry(r, s->ctr1 - 1u, s->k);
		if (ent && ip_equal(&ent->addr, a))
			return (long)h;
	}
	return -1;
}

const struct dns_addr_ent *dns_records_find_addr(const struct dns_records *r,
						 const struct ip_addr *a)
{
	long s;

	if (!r || !r->addr_tab_size)
		return NULL;
	s = addr_slot(r, a, hash_addr(a));
	return s < 0 ? NULL : own_entry(r, r->addr_tab[s].ctr1 - 1u, r->addr_tab[s].k);
}

/* Container ctr holds address a as its k-th own entry: the first by name
 * of the containers holding it answers its PTR. */
static int addr_add(struct dns_records *r, const struct ip_addr *a, uint32_t ctr, uint32_t k)
{
	uint32_t hash = hash_addr(a), h;
	long s = addr_slot(r, a, hash);

	if (s >= 0) {
		struct dns_addr_slot *sl = &r->addr_tab[s];

		sl->dups = true;
		if (key_cmp(r, ctr, sl->ctr1 - 1u) < 0) {
			sl->ctr1 = (uint16_t)(ctr + 1);
			sl->k = (uint8_t)k;
		}
		return 0;
	}
	if ((r->naddr_tab + 1) * 2 > r->addr_tab_size &&
	    rehash_addrs(r, r->addr_tab_size ? r->addr_tab_size * 2 : 16) < 0)
		return -ENOMEM;
	for (h = hash & (r->addr_tab_size - 1); r->addr_tab[h].ctr1; h = (h + 1) & (r->addr_tab_size - 1))
		;
	r->addr_tab[h] = (struct dns_addr_slot){ .hash = hash, .ctr1 = (uint16_t)(ctr + 1),
						 .k = (uint8_t)k };
	r->naddr_tab++;
	return 0;
}

/* Container (or VIP service) ctr no longer holds a. When it answered the
 * PTR and others hold a too (two containers given one address: rare, so a
 * scan), the first of them by name takes over. */
static void addr_del(struct dns_records *r, const struct ip_addr *a, uint32_t ctr)
{
	struct dns_addr_slot *sl;
	long s = addr_slot(r, a, hash_addr(a));
	uint32_t best = UINT32_MAX, best_k = 0, holders = 0;

	if (s < 0 || r->addr_tab[s].ctr1 != ctr + 1)
		return;
	sl = &r->addr_tab[s];
	if (sl->dups) {
		for (uint32_t i = 0; i < r->nodes.n; i++) {
			const struct dns_node *n = &r->nodes.v[i];
			const struct dns_addr_ent *v = dns_node_addrs(n);
			uint32_t k = 0;

			if (i == ctr || !(n->flags & (DNS_NODE_CTR | DNS_NODE_SVC)))
				continue;
			for (uint32_t j = 0; j < n->naddrs; j++) {
				if (v[j].ctr != i)
					continue;
				if (ip_equal(&v[j].addr, a)) {
					holders++;
					if (best == UINT32_MAX || key_cmp(r, i, best) < 0) {
						best = i;
						best_k = k;
					}
				}
				k++;
			}
		}
	}
	if (best != UINT32_MAX) {
		sl->ctr1 = (uint16_t)(best + 1);
		sl->k = (uint8_t)best_k;
		sl->dups = holders > 1;
		return;
	}
#define TAB_USED(x) ((x).ctr1 != 0)
#define ADDR_HOME(x) ((x).hash)
	TAB_DELETE(r->addr_tab, r->addr_tab_size, (uint32_t)s, ADDR_HOME);
#undef ADDR_HOME
#undef TAB_USED
	r->naddr_tab--;
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

/* ---- SRV ports ----------------------------------------------------------------- */

static int srv_proto(const char *proto)
{
	static const char *const protos[] = { "tcp", "udp", "sctp" };

	for (unsigned i = 0; i < ARRAY_SIZE(protos); i++)
		if (proto && !strcasecmp(proto, protos[i]))
			return (int)i;
	return -1;
}

static struct dns_srv_ent *srv_find(struct dns_node *n, uint16_t first, uint16_t last,
				    uint8_t proto)
{
	for (uint32_t i = 0; n->srvs && i < n->srvs->n; i++) {
		struct dns_srv_ent *s = &n->srvs->v[i];

		if (s->first == first && s->last == last && s->proto == proto)
			return s;
	}
	return NULL;
}

/* One more declaration of first..last/proto on node ni (own: by its
 * container). A container's own ranges are counted once. */
static int srv_add(struct dns_records *r, uint32_t ni, uint16_t first, uint16_t last,
		   uint8_t proto, bool own)
{
	struct dns_node *n = &r->nodes.v[ni];
	struct dns_srv_ent *s = srv_find(n, first, last, proto);

	if (!s) {
		uint16_t have = n->srvs ? n->srvs->n : 0, cap = n->srvs ? n->srvs->cap : 0;

		if (have == UINT16_MAX)
			return -ENOSPC;
		if (have == cap) {
			uint16_t ncap = cap ? (cap > UINT16_MAX / 2 ? UINT16_MAX : (uint16_t)(cap * 2)) : 1;
			struct dns_srvs *v = realloc(n->srvs, sizeof(*v) + ncap * sizeof(v->v[0]));

			if (!v)
				return -ENOMEM;
			if (!n->srvs)
				r->memory += sizeof(*v);
			r->memory += (size_t)(ncap - cap) * sizeof(v->v[0]);
			v->n = have;
			v->cap = ncap;
			n->srvs = v;
		}
		s = &n->srvs->v[n->srvs->n++];
		*s = (struct dns_srv_ent){ .first = first, .last = last, .proto = proto };
	}
	if (own)
		s->own = true;
	s->refs++;
	return 0;
}

static void srv_del(struct dns_records *r, uint32_t ni, const struct dns_srv_ent *what, bool own)
{
	struct dns_node *n = &r->nodes.v[ni];
	struct dns_srv_ent *s = srv_find(n, what->first, what->last, what->proto);

	if (!s)
		return;
	if (own)
		s->own = false;
	if (--s->refs)
		return;
	*s = n->srvs->v[--n->srvs->n];
	if (!n->srvs->n) {
		r->memory -= sizeof(*n->srvs) + n->srvs->cap * sizeof(n->srvs->v[0]);
		free(n->srvs);
		n->srvs = NULL;
	}
}

/* ---- networks -------------------------------------------------------------------- */

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

static int net_index(const struct dns_records *r, const char *network)
{
	for (unsigned i = 0; i < r->nnets; i++)
		if (!strcmp(r->netnames[i], network))
			return (int)i;
	return -1;
}

/* ---- containers ---------------------------------------------------------------------- */

static long name_node(struct dns_records *r, const char *name, bool create)
{
	uint8_t label[DNS_LABEL_MAX];
	size_t len = strlen(name);
	long s;

	if (len > DNS_LABEL_MAX)
		return -ENOENT;
	dns_name_lower(label, (const uint8_t *)name, len);
	if (create)
		return node_get(r, label, len);
	s = node_slot(r, label, len, hash_bytes(label, len));
	return s < 0 ? -ENOENT : r->node_tab[s] - 1;
}

/* Take away everything container ci declared; its node stays for the caller
 * (node_put frees it when nothing else holds it). */
static void ctr_unset(struct dns_records *r, uint32_t ci)
{
	struct dns_node *n = &r->nodes.v[ci];
	uint32_t svc = n->svc;
	const struct dns_addr_ent *v = dns_node_addrs(n);

	for (uint32_t i = 0; i < n->naddrs; i++)
		if (v[i].ctr == ci)
			addr_del(r, &v[i].addr, ci);
	addrs_remove(r, ci, ci);
	if (svc)
		addrs_remove(r, svc - 1, ci);
	for (uint32_t i = 0; n->srvs && i < n->srvs->n;) {
		struct dns_srv_ent s = n->srvs->v[i];
		uint32_t before = n->srvs->n;

		if (!s.own) {
			i++;
			continue;
		}
		if (svc)
			srv_del(r, svc - 1, &s, false);
		srv_del(r, ci, &s, true);
		/* an entry that went was replaced by the last one: look at i again */
		if (n->srvs && n->srvs->n == before)
			i++;
	}
	n->flags &= (uint8_t)~DNS_NODE_CTR;
	n->nets = 0;
	n->svc = 0;
	if (svc) {
		r->nodes.v[svc - 1].members--;
		node_put(r, svc - 1);
	}
}

/* Add to container ci (set up: flag, service) the addresses of one network:
 * to its own entries (an address it has already is skipped) and to its
 * service's. */
static int ctr_add_addrs(struct dns_records *r, uint32_t ci, uint8_t net,
			 const struct ip_addr *addrs, size_t naddrs)
{
	struct dns_addr_ent ents[MAX_OWN];
	uint32_t k = 0, have = 0, svc;
	int ret;

	{
		const struct dns_node *n = &r->nodes.v[ci];
		const struct dns_addr_ent *v = dns_node_addrs(n);

		for (uint32_t i = 0; i < n->naddrs; i++)
			have += v[i].ctr == ci;
	}
	for (size_t i = 0; i < naddrs; i++) {
		bool dup = false;

		for (uint32_t j = 0; j < k && !dup; j++)
			dup = ip_equal(&ents[j].addr, &addrs[i]);
		for (uint32_t j = 0; j < have && !dup; j++)
			dup = ip_equal(&own_entry(r, ci, j)->addr, &addrs[i]);
		if (dup)
			continue;
		if (have + k >= MAX_OWN)
			return -ENOSPC;
		ents[k++] = (struct dns_addr_ent){ .addr = addrs[i], .net = net, .ctr = (uint16_t)ci };
	}
	r->nodes.v[ci].nets |= (dns_netmask)1 << net;
	if (!k)
		return 0;
	svc = r->nodes.v[ci].svc;
	ret = addrs_insert(r, ci, ci, ents, k);
	if (ret == 0 && svc)
		ret = addrs_insert(r, svc - 1, ci, ents, k);
	for (uint32_t j = 0; ret == 0 && j < k; j++)
		ret = addr_add(r, &ents[j].addr, ci, have + j);
	return ret;
}

static int ctr_add_ports(struct dns_records *r, uint32_t ci, uint16_t first, uint16_t last,
			 uint8_t proto)
{
	uint32_t svc = r->nodes.v[ci].svc;
	struct dns_srv_ent *s = srv_find(&r->nodes.v[ci], first, last, proto);
	int ret;

	if (s && s->own)
		return 0;   /* declared twice by the container: once */
	if (svc && (ret = srv_add(r, svc - 1, first, last, proto, false)) < 0)
		return ret;
	ret = srv_add(r, ci, first, last, proto, true);
	if (ret < 0 && svc) {
		struct dns_srv_ent what = { .first = first, .last = last, .proto = proto };

		srv_del(r, svc - 1, &what, false);
	}
	return ret;
}

/* Container name (created if need be) as a container with service service. */
static long ctr_begin(struct dns_records *r, const char *name, const char *service)
{
	long ci = name_node(r, name, true), si = -1;

	if (ci < 0)
		return ci;
	if (service && strcasecmp(service, name)) {
		si = name_node(r, service, true);
		if (si < 0) {
			node_put(r, (uint32_t)ci);
			return si;
		}
	}
	r->nodes.v[ci].flags |= DNS_NODE_CTR;
	r->nodes.v[ci].svc = (uint16_t)(si + 1);
	if (si >= 0)
		r->nodes.v[si].members++;
	return ci;
}

/* Is name (any case) a service with virtual IPs? */
static bool is_vip_service(const struct dns_records *r, const char *name)
{
	uint8_t label[DNS_LABEL_MAX];
	size_t len = strlen(name);
	const struct dns_node *n;

	if (len > DNS_LABEL_MAX)
		return false;
	dns_name_lower(label, (const uint8_t *)name, len);
	n = dns_records_find(r, label, len);
	return n && (n->flags & DNS_NODE_SVC);
}

/* A container's name and its service are never a VIP service's (the
 * mirror of the guard in dns_records_set_service): a node is one or the
 * other, whatever order the calls come in. */
static int check_ctr(const struct dns_records *r, const struct dns_ctr *c, struct err *e)
{
	size_t n = 0;

	if (!c->name || !valid_label(c->name))
		return err_set(e, EINVAL, "DNS: container name '%s' is not a DNS label "
			       "(1-63 letters, digits, '-' or '_')", c->name ? c->name : "");
	if (c->service && !valid_label(c->service))
		return err_set(e, EINVAL, "DNS: service name '%s' of container '%s' is not a DNS "
			       "label (1-63 letters, digits, '-' or '_')", c->service, c->name);
	if (is_vip_service(r, c->name))
		return err_set(e, EEXIST, "DNS: container '%s': a service with virtual IPs has "
			       "that name", c->name);
	if (c->service && is_vip_service(r, c->service))
		return err_set(e, EEXIST, "DNS: container '%s': its service '%s' is a service "
			       "with virtual IPs, not a group of containers", c->name, c->service);
	for (size_t i = 0; i < c->nnets; i++) {
		if (!c->nets[i].network || net_index(r, c->nets[i].network) < 0)
			return err_set(e, ENOENT, "DNS: container '%s': unknown network '%s'", c->name,
				       c->nets[i].network ? c->nets[i].network : "");
		if (c->nets[i].naddrs > ARRAY_SIZE(c->nets[i].addrs))
			return err_set(e, EINVAL, "DNS: container '%s': more than 2 addresses on "
				       "network '%s'", c->name, c->nets[i].network);
		for (size_t k = 0; k < c->nets[i].naddrs; k++)
			if (c->nets[i].addrs[k].family != AF_INET &&
			    c->nets[i].addrs[k].family != AF_INET6)
				return err_set(e, EINVAL, "DNS: container '%s': address of unknown family",
					       c->name);
		n += c->nets[i].naddrs;
	}
	if (n > MAX_OWN)
		return err_set(e, ENOSPC, "DNS: container '%s': more than %d addresses", c->name,
			       MAX_OWN);
	for (size_t i = 0; i < c->nports; i++) {
		const struct dns_ctr_ports *p = &c->ports[i];

		if (srv_proto(p->proto) < 0)
			return err_set(e, EINVAL, "DNS: SRV for '%s': protocol '%s' must be tcp, udp "
				       "or sctp", c->service ? c->service : c->name,
				       p->proto ? p->proto : "");
		if (p->first == 0 || p->last < p->first)
			return err_set(e, EINVAL, "DNS: SRV for '%s': port %u-%u", c->name, p->first,
				       p->last);
	}
	return 0;
}

int dns_records_set_container(struct dns_records *r, const struct dns_ctr *c, struct err *e)
{
	long ci;
	int ret = 0;

	ret = check_ctr(r, c, e);
	if (ret < 0)
		return ret;
	ci = name_node(r, c->name, false);
	if (ci >= 0 && (r->nodes.v[ci].flags & DNS_NODE_CTR))
		ctr_unset(r, (uint32_t)ci);
	ci = ctr_begin(r, c->name, c->service);
	if (ci < 0) {
		ret = (int)ci;
		goto fail;
	}
	for (size_t i = 0; ret == 0 && i < c->nnets; i++)
		ret = ctr_add_addrs(r, (uint32_t)ci, (uint8_t)net_index(r, c->nets[i].network),
				    c->nets[i].addrs, c->nets[i].naddrs);
	for (size_t i = 0; ret == 0 && i < c->nports; i++)
		ret = ctr_add_ports(r, (uint32_t)ci, c->ports[i].first, c->ports[i].last,
				    (uint8_t)srv_proto(c->ports[i].proto));
	changed(r);
	if (ret == 0)
		return 0;
	ctr_unset(r, (uint32_t)ci);
	node_put(r, (uint32_t)ci);
fail:
	ci = name_node(r, c->name, false);
	if (ci >= 0)
		node_put(r, (uint32_t)ci);
	return err_set(e, ret == -ENOSPC ? ENOSPC : ENOMEM, "DNS: container '%s': no room for "
		       "its names", c->name);
}

int dns_records_remove_container(struct dns_records *r, const char *name)
{
	long ci = name_node(r, name, false);

	if (ci < 0 || !(r->nodes.v[ci].flags & DNS_NODE_CTR))
		return -ENOENT;
	ctr_unset(r, (uint32_t)ci);
	node_put(r, (uint32_t)ci);
	changed(r);
	return 0;
}

/* The first way in, still used to build a set in one go (tests, tools):
 * one call per network, the service of the first call stands. */
int dns_records_add_container(struct dns_records *r, const char *name, const char *network,
			      const struct ip_addr *addrs, size_t naddrs, const char *service,
			      struct err *e)
{
	struct dns_ctr_net cn = { .network = network, .naddrs = naddrs };
	struct dns_ctr c = { .name = name, .service = service, .nets = &cn, .nnets = 1 };
	long ci;
	int ret;

	if (naddrs > ARRAY_SIZE(cn.addrs)) {
		/* more than the description holds: checked the same way, in pairs */
		for (size_t i = 0; i < naddrs; i += 2) {
			ret = dns_records_add_container(r, name, network, addrs + i,
							naddrs - i < 2 ? naddrs - i : 2, service, e);
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	memcpy(cn.addrs, addrs, naddrs * sizeof(*addrs));
	ret = check_ctr(r, &c, e);
	if (ret < 0)
		return ret;
	ci = name_node(r, name, false);
	if (ci < 0 || !(r->nodes.v[ci].flags & DNS_NODE_CTR))
		ci = ctr_begin(r, name, service);
	if (ci < 0)
		return err_set(e, ci == -ENOSPC ? ENOSPC : ENOMEM,
			       "DNS: container '%s': no room for its names", name);
	ret = ctr_add_addrs(r, (uint32_t)ci, (uint8_t)net_index(r, network), cn.addrs, naddrs);
	if (ret < 0)
		return err_set(e, ret == -ENOSPC ? ENOSPC : ENOMEM, "DNS: container '%s'", name);
	return 0;
}

int dns_records_add_srv(struct dns_records *r, const char *name, uint16_t port,
			const char *proto, struct err *e)
{
	int p = srv_proto(proto);
	long ni;

	if (p < 0)
		return err_set(e, EINVAL, "DNS: SRV for '%s': protocol '%s' must be tcp, udp or sctp",
			       name, proto ? proto : "");
	if (!valid_label(name))
		return err_set(e, EINVAL, "DNS: SRV for '%s': not a DNS label", name);
	if (port == 0)
		return err_set(e, EINVAL, "DNS: SRV for '%s': port 0", name);
	ni = name_node(r, name, true);
	if (ni < 0)
		return err_sys(e, ENOMEM, "DNS: SRV for '%s'", name);
	if (srv_add(r, (uint32_t)ni, port, port, (uint8_t)p, false) < 0) {
		node_put(r, (uint32_t)ni);
		return err_sys(e, ENOMEM, "DNS: SRV for '%s'", name);
	}
	return 0;
}

/* ---- services with virtual IPs ------------------------------------------------------ */

/*
 * A VIP service is a node of its own (DNS_NODE_SVC): its VIPs are entries it
 * owns itself, on its network, so that A/AAAA, scoping and the address
 * table (PTR) treat them as a container's addresses, and its SRV answers
 * name the service itself with the VIPs as glue; its ports are its own SRV
 * ranges. A node is never both this and a container or a `service =`
 * group (the guards here and in check_ctr).
 */

static int check_svc(const struct dns_records *r, const struct dns_service *s, struct err *e)
{
	const struct dns_node *n;
	bool v4 = false, v6 = false;
	uint8_t label[DNS_LABEL_MAX];
	size_t len;

	if (!s->name || !valid_label(s->name))
		return err_set(e, EINVAL, "DNS: service name '%s' is not a DNS label "
			       "(1-63 letters, digits, '-' or '_')", s->name ? s->name : "");
	if (!s->network || net_index(r, s->network) < 0)
		return err_set(e, ENOENT, "DNS: service '%s': unknown network '%s'", s->name,
			       s->network ? s->network : "");
	if (s->nvips == 0 || s->nvips > ARRAY_SIZE(s->vips))
		return err_set(e, EINVAL, "DNS: service '%s': %zu virtual IPs (one IPv4 and/or one "
			       "IPv6)", s->name, s->nvips);
	for (size_t i = 0; i < s->nvips; i++) {
		bool *seen = s->vips[i].family == AF_INET ? &v4 :
			     s->vips[i].family == AF_INET6 ? &v6 : NULL;

		if (!seen)
			return err_set(e, EINVAL, "DNS: service '%s': virtual IP of unknown family",
				       s->name);
		if (*seen)
			return err_set(e, EINVAL, "DNS: service '%s': two IPv%c virtual IPs", s->name,
				       seen == &v4 ? '4' : '6');
		*seen = true;
	}
	for (size_t i = 0; i < s->nports; i++) {
		const struct dns_ctr_ports *p = &s->ports[i];

		if (srv_proto(p->proto) < 0)
			return err_set(e, EINVAL, "DNS: SRV for '%s': protocol '%s' must be tcp, udp "
				       "or sctp", s->name, p->proto ? p->proto : "");
		if (p->first == 0 || p->last < p->first)
			return err_set(e, EINVAL, "DNS: SRV for '%s': port %u-%u", s->name, p->first,
				       p->last);
	}
	len = strlen(s->name);
	dns_name_lower(label, (const uint8_t *)s->name, len);
	n = dns_records_find(r, label, len);
	if (n && (n->flags & DNS_NODE_CTR))
		return err_set(e, EEXIST, "DNS: service '%s': a container has that name", s->name);
	if (n && n->members)
		return err_set(e, EEXIST, "DNS: service '%s': containers have it as their "
			       "`service =` group", s->name);
	return 0;
}

/* Take away everything service si had; its node stays for the caller. */
static void svc_unset(struct dns_records *r, uint32_t si)
{
	struct dns_node *n = &r->nodes.v[si];
	const struct dns_addr_ent *v = dns_node_addrs(n);

	for (uint32_t i = 0; i < n->naddrs; i++)
		addr_del(r, &v[i].addr, si);
	addrs_remove(r, si, si);
	for (uint32_t i = 0; n->srvs && i < n->srvs->n;) {
		struct dns_srv_ent s = n->srvs->v[i];
		uint32_t before = n->srvs->n;

		if (!s.own) {
			i++;
			continue;
		}
		srv_del(r, si, &s, true);
		/* an entry that went was replaced by the last one: look at i again */
		if (n->srvs && n->srvs->n == before)
			i++;
	}
	n->flags &= (uint8_t)~DNS_NODE_SVC;
	n->nets = 0;
}

/* Service si (checked, empty) gets s's VIPs and ports. */
static int svc_fill(struct dns_records *r, uint32_t si, const struct dns_service *s)
{
	uint8_t net = (uint8_t)net_index(r, s->network);
	struct dns_addr_ent ents[ARRAY_SIZE(s->vips)];
	uint32_t k = 0;
	int ret;

	/* IPv4 first: ANY lists the VIPs in one order whichever way they came */
	for (int v6 = 0; v6 < 2; v6++)
		for (size_t i = 0; i < s->nvips; i++)
			if ((s->vips[i].family == AF_INET6) == v6)
				ents[k++] = (struct dns_addr_ent){ .addr = s->vips[i], .net = net,
								   .ctr = (uint16_t)si };
	r->nodes.v[si].flags |= DNS_NODE_SVC;
	r->nodes.v[si].nets = (dns_netmask)1 << net;
	ret = addrs_insert(r, si, si, ents, k);
	for (uint32_t j = 0; ret == 0 && j < k; j++)
		ret = addr_add(r, &ents[j].addr, si, j);
	for (size_t i = 0; ret == 0 && i < s->nports; i++) {
		const struct dns_ctr_ports *p = &s->ports[i];
		uint8_t proto = (uint8_t)srv_proto(p->proto);
		const struct dns_srv_ent *have = srv_find(&r->nodes.v[si], p->first, p->last, proto);

		if (have && have->own)
			continue;   /* given twice: once */
		ret = srv_add(r, si, p->first, p->last, proto, true);
	}
	return ret;
}

int dns_records_set_service(struct dns_records *r, const struct dns_service *s, struct err *e)
{
	long si;
	int ret = check_svc(r, s, e);

	if (ret < 0)
		return ret;     /* refused: the set (and the service) as it was */
	si = name_node(r, s->name, false);
	if (si >= 0 && (r->nodes.v[si].flags & DNS_NODE_SVC))
		svc_unset(r, (uint32_t)si);
	else
		si = name_node(r, s->name, true);
	changed(r);
	if (si >= 0) {
		ret = svc_fill(r, (uint32_t)si, s);
		if (ret == 0)
			return 0;
		svc_unset(r, (uint32_t)si);
		node_put(r, (uint32_t)si);
	} else {
		ret = (int)si;
	}
	if (ret == -ENOSPC)
		return err_set(e, ENOSPC, "DNS: service '%s': no room for its names (the set "
			       "holds as many names as it can)", s->name);
	return err_sys(e, ENOMEM, "DNS: service '%s'", s->name);
}

int dns_records_remove_service(struct dns_records *r, const char *name)
{
	long si = name ? name_node(r, name, false) : -ENOENT;

	if (si < 0 || !(r->nodes.v[si].flags & DNS_NODE_SVC))
		return -ENOENT;
	svc_unset(r, (uint32_t)si);
	node_put(r, (uint32_t)si);
	changed(r);
	return 0;
}
