/* forward.c - upstream queries and answers (checked against the question)
 * and the bounded LRU cache of forwarded answers (RFC 2308 negative TTLs). */
#include "dns/dns_int.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_MAX_POS_TTL 86400
#define CACHE_MAX_NEG_TTL 3600
#define CACHE_MAX_MSG 4096          /* larger answers are not kept */

size_t dns_upstream_query(const struct dns_query *q, uint16_t id, uint8_t *out, size_t outcap)
{
	struct dns_wbuf w;

	dns_wbuf_init(&w, out, outcap);
	dns_wput16(&w, id);
	dns_wput16(&w, (uint16_t)(q->flags & (DNS_F_RD | DNS_F_CD)));
	dns_wput16(&w, 1);
	dns_wput16(&w, 0);
	dns_wput16(&w, 0);
	dns_wput16(&w, 1);
	dns_wput(&w, q->lname, q->name_len);
	dns_wput16(&w, q->qtype);
	dns_wput16(&w, q->qclass);
	dns_wput_opt(&w, DNS_EDNS_PAYLOAD, 0, false);
	return w.overflow ? 0 : w.len;
}

int dns_upstream_check(const struct dns_query *q, uint16_t id, uint8_t *m, size_t len)
{
	uint8_t name[DNS_NAME_MAX];
	size_t p = DNS_HDR_LEN, nlen;
	uint16_t flags;
	unsigned an, ns, ar;
	int rcode;

	if (len < DNS_HDR_LEN || dns_get16(m) != id)
		return -1;
	flags = dns_get16(m + 2);
	if (!(flags & DNS_F_QR) || DNS_OPCODE(flags) != 0 || dns_get16(m + 4) != 1)
		return -1;
	/* the question must be ours, written out (not compressed) */
	if (dns_name_read(m, len, &p, name, &nlen) < 0 || p != DNS_HDR_LEN + nlen ||
	    nlen != q->name_len || len - p < 4)
		return -1;
	dns_name_lower(name, name, nlen);
	if (memcmp(name, q->lname, nlen) || dns_get16(m + p) != q->qtype ||
	    dns_get16(m + p + 2) != q->qclass)
		return -1;
	p += 4;
	an = dns_get16(m + 6);
	ns = dns_get16(m + 8);
	ar = dns_get16(m + 10);
	for (unsigned i = 0; i < an + ns + ar; i++) {
		struct dns_rr rr;
		size_t at = p;

		if (dns_rr_read(m, len, &p, &rr) < 0)
			return 0;   /* the upstream itself sent garbage */
		if (rr.type == DNS_T_OPT) {
			if (i < an + ns || (rr.ttl >> 24) != 0)
				return 0;       /* misplaced OPT, or extended error */
			/* cut the OPT and what follows: the client gets ours */
			dns_put16(m + 10, (uint16_t)(i - an - ns));
			len = at;
			break;
		}
	}
	rcode = flags & 0xf;
	if (rcode != DNS_R_NOERROR && rcode != DNS_R_NXDOMAIN)
		return 0;
	return (int)len;
}

uint32_t dns_cache_ttl(const uint8_t *m, size_t len)
{
	uint8_t name[DNS_NAME_MAX];
	size_t p = DNS_HDR_LEN, nlen;
	unsigned an, ns;
	uint32_t ttl = UINT32_MAX, neg = UINT32_MAX;
	int rcode;

	if (len < DNS_HDR_LEN || (dns_get16(m + 2) & DNS_F_TC) || dns_get16(m + 4) != 1)
		return 0;
	rcode = m[3] & 0xf;
	an = dns_get16(m + 6);
	ns = dns_get16(m + 8);
	if (dns_name_read(m, len, &p, name, &nlen) < 0 || len - p < 4)
		return 0;
	p += 4;
	for (unsigned i = 0; i < an + ns; i++) {
		struct dns_rr rr;

		if (dns_rr_read(m, len, &p, &rr) < 0)
			return 0;
		if (rr.ttl < ttl)
			ttl = rr.ttl;
		if (i >= an && rr.type == DNS_T_SOA && rr.rdlen >= 22) {
			uint32_t min = dns_get32(m + rr.end - 4);
			neg = rr.ttl < min ? rr.ttl : min;
		}
	}
	if (rcode == DNS_R_NOERROR && an > 0)
		return ttl > CACHE_MAX_POS_TTL ? CACHE_MAX_POS_TTL : ttl;
	if (rcode != DNS_R_NOERROR && rcode != DNS_R_NXDOMAIN)
		return 0;
	/* NXDOMAIN or NODATA: cacheable only with an SOA (RFC 2308 §5) */
	if (neg == UINT32_MAX)
		return 0;
	return neg > CACHE_MAX_NEG_TTL ? CACHE_MAX_NEG_TTL : neg;
}

/* ---- the cache ------------------------------------------------------------- */

struct centry {
	struct centry *hnext;       /* hash chain */
	struct centry *prev, *next; /* LRU: head is the most recent */
	uint32_t hash;
	uint16_t qtype, qclass;
	uint64_t stored_ms, expire_ms;
	uint16_t nlen, mlen;
	uint8_t data[];             /* lower-cased name, then the message */
};

struct dns_cache {
	struct centry **tab;
	unsigned size, count, max;
	struct centry *head, *tail;
};

static uint32_t key_hash(const struct dns_query *q)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < q->name_len; i++)
		h = (h ^ q->lname[i]) * 16777619u;
	h = (h ^ q->qtype) * 16777619u;
	return (h ^ q->qclass) * 16777619u;
}

struct dns_cache *dns_cache_new(unsigned max_entries)
{
	struct dns_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->max = max_entries ? max_entries : 1;
	c->size = 16;
	while (c->size < c->max)
		c->size *= 2;
	c->tab = calloc(c->size, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return NULL;
	}
	return c;
}

static void lru_unlink(struct dns_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct dns_cache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void centry_drop(struct dns_cache *c, struct centry *e)
{
	struct centry **pp = &c->tab[e->hash & (c->size - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	free(e);
}

void dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return;
	while (c->head)
		centry_drop(c, c->head);
	free(c->tab);
	free(c);
}

unsigned dns_cache_count(const struct dns_cache *c)
{
	return c ? c->count : 0;
}

static struct centry *cache_find(struct dns_cache *c, const struct dns_query *q, uint32_t h)
{
	for (struct centry *e = c->tab[h & (c->size - 1)]; e; e = e->hnext)
		if (e->hash == h && e->qtype == q->qtype && e->qclass == q->qclass &&
		    e->nlen == q->name_len && !memcmp(e->data, q->lname, q->name_len))
			return e;
	return NULL;
}

void dns_cache_put(struct dns_cache *c, const struct dns_query *q, const uint8_t *m, size_t len,
		   uint32_t ttl, uint64_t now_ms)
{
	uint32_t h = key_hash(q);
	struct centry *e;

	if (!c || !ttl || len > CACHE_MAX_MSG)
		return;
	e = cache_find(c, q, h);
	if (e)
		centry_drop(c, e);
	while (c->count >= c->max && c->tail)
		centry_drop(c, c->tail);    /* least recently used */
	e = malloc(sizeof(*e) + q->name_len + len);
	if (!e)
		return;
	e->hash = h;
	e->qtype = q->qtype;
	e->qclass = q->qclass;
	e->stored_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)ttl * 1000;
	e->nlen = (uint16_t)q->name_len;
	e->mlen = (uint16_t)len;
	memcpy(e->data, q->lname, q->name_len);
	memcpy(e->data + q->name_len, m, len);
	e->hnext = c->tab[h & (c->size - 1)];
	c->tab[h & (c->size - 1)] = e;
	lru_push(c, e);
	c->count++;
}

const uint8_t *dns_cache_get(struct dns_cache *c, const struct dns_query *q, uint64_t now_ms,
			     size_t *len, uint32_t *age)
{
	struct centry *e;

	if (!c)
		return NULL;
	e = cache_find(c, q, key_hash(q));
	if (!e)
		return NULL;
	if (now_ms >= e->expire_ms) {
		centry_drop(c, e);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	*len = e->mlen;
	*age = (uint32_t)((now_ms - e->stored_ms) / 1000);
	return e->data + e->nlen;
}
