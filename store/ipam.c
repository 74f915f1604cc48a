/* ipam.c - networks and host-local style address allocation that never
 * hands an address out twice and never scans a range. */
#include "store/internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RANGES_STRLEN (STORE_MAX_RANGES * (2 * IP_STRLEN + 3))

/* One family of one network, as the allocator sees it. */
struct pool {
	int fam;                    /* 4 or 6 */
	struct ip_prefix subnet;
	struct ip_addr gateway, net_addr, bcast;
	bool has_bcast;             /* IPv4 only */
	bool whole;                 /* no range configured: the subnet is the range */
	size_t nranges;
	struct ip_range ranges[STORE_MAX_RANGES];
	const struct ip_addr *held;     /* other owners' static addresses, sorted */
	size_t n_held;
};

static const char *fam_name(int af)
{
	return af == AF_INET6 ? "IPv6" : "IPv4";
}

static void pool_derive(struct pool *p)
{
	ip_prefix_first(&p->subnet, &p->net_addr);
	ip_prefix_last(&p->subnet, &p->bcast);
	p->has_bcast = p->subnet.addr.family == AF_INET;
	if (p->nranges == 0) {
		p->whole = true;
		p->nranges = 1;
		p->ranges[0].first = p->net_addr;
		p->ranges[0].last = p->bcast;
	}
}

/* Why a is never handed out, or NULL if it may be. */
static const char *pool_reserved(const struct pool *p, const struct ip_addr *a)
{
	if (ip_equal(a, &p->net_addr))
		return "the network address";
	if (p->has_bcast && ip_equal(a, &p->bcast))
		return "the broadcast address";
	if (ip_equal(a, &p->gateway))
		return "the gateway";
	return NULL;
}

static int cmp_ip(const void *a, const void *b)
{
	return ip_cmp(a, b);
}

/* Is a another owner's static address (never handed out to anyone else)? */
static bool pool_held(const struct pool *p, const struct ip_addr *a)
{
	return p->n_held && bsearch(a, p->held, p->n_held, sizeof(*p->held), cmp_ip);
}

static int pool_find_range(const struct pool *p, const struct ip_addr *a)
{
	for (size_t i = 0; i < p->nranges; i++)
		if (ip_range_contains(&p->ranges[i], a))
			return (int)i;
	return -1;
}

/* Addresses of r that may be handed out, saturated at UINT64_MAX. */
static uint64_t range_usable(const struct pool *p, const struct ip_range *r)
{
	uint64_t n = ip_range_size(r);
	const struct ip_addr *res[] = { &p->net_addr, &p->bcast, &p->gateway };

	if (n == UINT64_MAX)
		return n;
	for (size_t i = 0; i < ARRAY_SIZE(res); i++) {
		if (i == 1 && !p->has_bcast)
			continue;
		if (ip_range_contains(r, res[i]) && (i != 2 || !ip_equal(res[2], res[0])))
			n--;
	}
	return n;
}

static const char *pool_ranges_str(const struct pool *p, char *buf, size_t size)
{
	char r[2 * IP_STRLEN + 1];
	size_t off = 0;

	buf[0] = '\0';
	if (p->whole)
		return ip_prefix_format(&p->subnet, buf);
	for (size_t i = 0; i < p->nranges && off < size; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? ", " : "",
					ip_range_format(&p->ranges[i], r));
	return buf;
}

/* ---- validation of a network definition ---------------------------------- */

static int check_pool(const char *net, const char *key, int af, struct store_pool *sp,
		      struct err *e)
{
	char a[IP_PREFIX_STRLEN], b[2 * IP_STRLEN + 1], c[2 * IP_STRLEN + 1];
	struct ip_addr first;
	struct pool p = { 0 };
	unsigned maxlen = af == AF_INET ? 30 : 126;

	if (sp->subnet.addr.family != af)
		return err_set(e, EINVAL, "network %s: %s must be an %s prefix", net, key,
			       fam_name(af));
	ip_prefix_format(&sp->subnet, a);
	if (sp->subnet.len > ip_bits(&sp->subnet.addr))
		return err_set(e, EINVAL, "network %s: %s %s: bad prefix length", net, key, a);
	ip_prefix_first(&sp->subnet, &first);
	if (!ip_equal(&first, &sp->subnet.addr)) {
		struct ip_prefix q = { first, sp->subnet.len };
		char d[IP_PREFIX_STRLEN];
		return err_set(e, EINVAL, "network %s: %s %s has host bits set (did you mean %s?)",
			       net, key, a, ip_prefix_format(&q, d));
	}
	if (sp->subnet.len > maxlen)
		return err_set(e, EINVAL, "network %s: %s %s is too small (at most /%u)", net,
			       key, a, maxlen);
	if (af == AF_INET6) {
		/* v4-mapped space would collide with how IPv4 is stored. */
		struct ip_prefix mapped = { .addr = { .family = AF_INET6 }, .len = 96 };
		mapped.addr.b[10] = mapped.addr.b[11] = 0xff;
		if (ip_prefix_contains_prefix(&mapped, &sp->subnet) ||
		    ip_prefix_contains_prefix(&sp->subnet, &mapped))
			return err_set(e, EINVAL, "network %s: %s %s overlaps IPv4-mapped "
				       "addresses (::ffff:0:0/96)", net, key, a);
	}
	if (sp->nranges > STORE_MAX_RANGES)
		return err_set(e, EINVAL, "network %s: more than %d ranges", net, STORE_MAX_RANGES);
	if (sp->gateway.family == 0) {
		sp->gateway = first;
		ip_add(&sp->gateway, 1);
	} else if (!ip_prefix_contains(&sp->subnet, &sp->gateway)) {
		return err_set(e, EINVAL, "network %s: gateway %s is outside %s %s", net,
			       ip_format(&sp->gateway, b), key, a);
	}
	p.subnet = sp->subnet;
	p.gateway = sp->gateway;
	pool_derive(&p);
	if (ip_equal(&p.gateway, &p.net_addr) || (p.has_bcast && ip_equal(&p.gateway, &p.bcast)))
		return err_set(e, EINVAL, "network %s: gateway %s is %s of %s %s", net,
			       ip_format(&p.gateway, b), pool_reserved(&p, &p.gateway), key, a);
	for (size_t i = 0; i < sp->nranges; i++) {
		struct ip_range *r = &sp->ranges[i];
		ip_range_format(r, b);
		if (r->first.family != af || r->last.family != af)
			return err_set(e, EINVAL, "network %s: range %s is not %s", net, b,
				       fam_name(af));
		if (ip_cmp(&r->first, &r->last) > 0)
			return err_set(e, EINVAL, "network %s: range %s: first address is after "
				       "the last", net, b);
		if (!ip_prefix_contains(&sp->subnet, &r->first) ||
		    !ip_prefix_contains(&sp->subnet, &r->last))
			return err_set(e, EINVAL, "network %s: range %s is outside %s %s", net, b,
				       key, a);
		if (range_usable(&p, r) == 0)
			return err_set(e, EINVAL, "network %s: range %s has no usable address "
				       "(network, gateway and broadcast are never handed out)",
				       net, b);
		for (size_t j = 0; j < i; j++)
			if (ip_cmp(&r->first, &sp->ranges[j].last) <= 0 &&
			    ip_cmp(&sp->ranges[j].first, &r->last) <= 0)
				return err_set(e, EINVAL, "network %s: ranges %s and %s overlap",
					       net, ip_range_format(&sp->ranges[j], c), b);
	}
	return 0;
}

/* ---- networks ----------------------------------------------------------- */

static int bind_text(sqlite3_stmt *st, int i, const char *t)
{
	return sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
}

int store_network_put(struct store *s, const struct store_network *in, struct err *e)
{
	STORE_ERR_LOCAL(e);
	struct store_network n = *in;
	struct store_pool *pools[2] = { &n.v4, &n.v6 };
	sqlite3_stmt *st;

	if (store_check_name("network", in->name, e) < 0)
		return -e->code;
	if (!n.v4.subnet.addr.family && !n.v6.subnet.addr.family)
		return err_set(e, EINVAL, "network %s: no subnet (give an IPv4 subnet, an IPv6 "
			       "one, or both)", n.name);
	if ((!n.v4.subnet.addr.family && n.v4.nranges) || (!n.v6.subnet.addr.family && n.v6.nranges))
		return err_set(e, EINVAL, "network %s: %s ranges given without %s", n.name,
			       n.v4.subnet.addr.family ? "IPv6" : "IPv4",
			       n.v4.subnet.addr.family ? "subnet6" : "subnet");
	if ((n.v4.subnet.addr.family && check_pool(n.name, "subnet", AF_INET, &n.v4, e) < 0) ||
	    (n.v6.subnet.addr.family && check_pool(n.name, "subnet6", AF_INET6, &n.v6, e) < 0))
		return -e->code;
	if (store_begin(s, false, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_NET_PUT, e)))
		goto fail;
	bind_text(st, 1, n.name);
	for (int f = 0; f < 2; f++) {
		if (!pools[f]->subnet.addr.family)
			continue;
		store_bind_ip(st, 2 + 3 * f, &pools[f]->subnet.addr);
		sqlite3_bind_int(st, 3 + 3 * f, pools[f]->subnet.len);
		store_bind_ip(st, 4 + 3 * f, &pools[f]->gateway);
	}
	if (store_exec_stmt(s, st, "store network", e) < 0)
		goto fail;
	if (!(st = store_stmt(s, ST_RANGES_CLEAR, e)))
		goto fail;
	bind_text(st, 1, n.name);
	if (store_exec_stmt(s, st, "store network ranges", e) < 0)
		goto fail;
	for (int f = 0; f < 2; f++) {
		for (size_t i = 0; pools[f]->subnet.addr.family && i < pools[f]->nranges; i++) {
			if (!(st = store_stmt(s, ST_RANGE_ADD, e)))
				goto fail;
			bind_text(st, 1, n.name);
			sqlite3_bind_int(st, 2, f ? 6 : 4);
			sqlite3_bind_int(st, 3, (int)i);
			store_bind_ip(st, 4, &pools[f]->ranges[i].first);
			store_bind_ip(st, 5, &pools[f]->ranges[i].last);
			if (store_exec_stmt(s, st, "store network ranges", e) < 0)
				goto fail;
		}
	}
	return store_commit(s, e);
fail:
	store_rollback(s);
	return -e->code;
}

/* Read one family's ranges (configured ones only; none = whole subnet). */
static int read_ranges(struct store *s, const char *net, int fam, struct store_pool *sp,
		       struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_RANGES_GET, e);
	int rc;

	if (!st)
		return -e->code;
	bind_text(st, 1, net);
	sqlite3_bind_int(st, 2, fam);
	sp->nranges = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && sp->nranges < STORE_MAX_RANGES) {
		struct ip_range *r = &sp->ranges[sp->nranges];
		if (store_column_ip(st, 0, fam, &r->first) && store_column_ip(st, 1, fam, &r->last))
			sp->nranges++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "read network ranges", e);
	return 0;
}

/* Read the network row; -ENOENT "network NAME does not exist" if absent.
 * With fam 4 or 6 only that family (and its ranges) is filled in. */
static int read_network(struct store *s, const char *name, int fam, struct store_network *n,
			struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_NET_GET, e);
	struct store_pool *pools[2] = { &n->v4, &n->v6 };
	int rc;

	if (!st)
		return -e->code;
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	bind_text(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return err_set(e, ENOENT, "network %s does not exist", name);
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return store_sqlerr(s, rc, "read network", e);
	}
	for (int f = 0; f < 2; f++) {
		int ff = f ? 6 : 4;
		struct store_pool *sp = pools[f];
		if ((fam && fam != ff) || sqlite3_column_type(st, 3 * f) == SQLITE_NULL)
			continue;
		if (!store_column_ip(st, 3 * f, ff, &sp->subnet.addr) ||
		    !store_column_ip(st, 3 * f + 2, ff, &sp->gateway)) {
			sqlite3_reset(st);
			return err_set(e, EBADMSG, "%s: network %s: malformed address", s->path, name);
		}
		sp->subnet.len = (uint8_t)sqlite3_column_int(st, 3 * f + 1);
	}
	sqlite3_reset(st);
	for (int f = 0; f < 2; f++) {
		int ff = f ? 6 : 4;
		if (pools[f]->subnet.addr.family && (!fam || fam == ff) &&
		    read_ranges(s, name, ff, pools[f], e) < 0)
			return -e->code;
	}
	return 0;
}

int store_network_get(struct store *s, const char *name, struct store_network *out,
		      struct err *e)
{
	STORE_ERR_LOCAL(e);

	if (store_check_name("network", name, e) < 0)
		return -e->code;
	return read_network(s, name, 0, out, e);
}

int store_network_list(struct store *s, store_network_fn *fn, void *ctx, struct err *e)
{
	STORE_ERR_LOCAL(e);
	ARRAY(char[STORE_NAME_MAX]) names = { 0 };
	sqlite3_stmt *st = store_stmt(s, ST_NET_LIST, e);
	int rc, ret = 0;

	if (!st)
		return -e->code;
	/* Collect first: fn may call back into the store. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char (*name)[STORE_NAME_MAX] = array_push(&names);
		if (!name) {
			ret = err_set(e, ENOMEM, "out of memory");
			goto out;
		}
		store_copy_text(*name, STORE_NAME_MAX, st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ret = store_sqlerr(s, rc, "list networks", e);
		goto out;
	}
	for (size_t i = 0; i < names.n && ret == 0; i++) {
		struct store_network net;
		if (read_network(s, names.v[i], 0, &net, e) < 0) {
			if (e->code == ENOENT)  /* deleted meanwhile by another process */
				continue;
			ret = -e->code;
			break;
		}
		ret = fn(ctx, &net);
	}
out:
	sqlite3_reset(st);
	array_free(&names);
	return ret;
}

int store_network_delete(struct store *s, const char *name, struct err *e)
{
	STORE_ERR_LOCAL(e);
	sqlite3_stmt *st;
	int64_t count = 0;
	char owner[STORE_NAME_MAX] = "";

	if (store_check_name("network", name, e) < 0)
		return -e->code;
	if (store_begin(s, true, e) < 0)
		return -e->code;
	if (!(st = store_stmt(s, ST_NET_ALLOCS, e)))
		goto fail;
	bind_text(st, 1, name);
	if (sqlite3_step(st) == SQLITE_ROW) {
		count = sqlite3_column_int64(st, 0);
		store_copy_text(owner, sizeof(owner), st, 1);
	}
	sqlite3_reset(st);
	if (count) {
		err_set(e, EBUSY, "network %s still has %lld allocation%s (%s%s); release them "
			"first", name, (long long)count, count == 1 ? "" : "s", owner,
			count > 1 ? ", ..." : "");
		goto fail;
	}
	if (!(st = store_stmt(s, ST_NET_DEL, e)))
		goto fail;
	bind_text(st, 1, name);
	if (store_exec_stmt(s, st, "delete network", e) < 0)
		goto fail;
	if (sqlite3_changes(s->db) == 0) {
		err_set(e, ENOENT, "network %s does not exist", name);
		goto fail;
	}
	return store_commit(s, e);
fail:
	store_rollback(s);
	return -e->code;
}

/* ---- allocation --------------------------------------------------------- */

static int load_pool(struct store *s, const char *net, int af, struct pool *p, struct err *e)
{
	struct store_network n;
	struct store_pool *sp = af == AF_INET6 ? &n.v6 : &n.v4;

	if (read_network(s, net, store_fam(af), &n, e) < 0)
		return -e->code;
	if (!sp->subnet.addr.family)
		return err_set(e, EAFNOSUPPORT, "network %s has no %s subnet", net, fam_name(af));
	memset(p, 0, sizeof(*p));
	p->fam = store_fam(af);
	p->subnet = sp->subnet;
	p->gateway = sp->gateway;
	p->nranges = sp->nranges;
	memcpy(p->ranges, sp->ranges, sizeof(p->ranges));
	pool_derive(p);
	return 0;
}

/* Owner of a in net into owner (may be NULL): 1 if allocated, 0 if free. */
static int ip_owner(struct store *s, const char *net, const struct ip_addr *a, char *owner,
		    struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_ALLOC_IP, e);
	int rc;

	if (!st)
		return -e->code;
	bind_text(st, 1, net);
	store_bind_ip(st, 2, a);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && owner)
		store_copy_text(owner, STORE_NAME_MAX, st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "look up address", e);
	return rc == SQLITE_ROW;
}

/* One address from a (net, owner, family) keyed table: 1 found, 0 none. */
static int owner_ip(struct store *s, enum store_stmt id, const char *net, const char *owner,
		    int fam, struct ip_addr *out, struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, id, e);
	int rc, found = 0;

	if (!st)
		return -e->code;
	bind_text(st, 1, net);
	if (owner) {
		bind_text(st, 2, owner);
		sqlite3_bind_int(st, 3, fam);
	} else {
		sqlite3_bind_int(st, 2, fam);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		found = store_column_ip(st, 0, fam, out);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "look up address", e);
	return found;
}

/*
 * The first address of [from, to] that is neither reserved, nor another
 * owner's static address, nor allocated. One index walk from `from`: each
 * step passes one reserved address (at most three), one static address or
 * one allocated row, so the cost is the run of taken addresses after `from`,
 * whatever the size of the range. 0 found, 1 none, < 0 error.
 */
static int walk(struct store *s, const char *net, const struct pool *p, struct ip_addr cur,
		const struct ip_addr *to, struct ip_addr *out, struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, ST_ALLOC_WALK, e);
	struct ip_addr row;
	bool have_row;
	int rc, ret;

	if (!st)
		return -e->code;
	bind_text(st, 1, net);
	store_bind_ip(st, 2, &cur);
	store_bind_ip(st, 3, to);
	rc = sqlite3_step(st);
	have_row = rc == SQLITE_ROW && store_column_ip(st, 0, p->fam, &row);
	for (;;) {
		if (!pool_reserved(p, &cur) && !pool_held(p, &cur)) {
			while (have_row && ip_cmp(&row, &cur) < 0) {
				rc = sqlite3_step(st);
				have_row = rc == SQLITE_ROW && store_column_ip(st, 0, p->fam, &row);
			}
			if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				ret = store_sqlerr(s, rc, "find a free address", e);
				break;
			}
			if (!have_row || ip_cmp(&row, &cur) > 0) {
				*out = cur;
				ret = 0;
				break;
			}
		}
		if (ip_cmp(&cur, to) >= 0 || ip_add(&cur, 1) < 0) {
			ret = 1;
			break;
		}
	}
	sqlite3_reset(st);
	return ret;
}

static int exhausted(struct store *s, const char *net, const struct pool *p, struct err *e)
{
	char rs[RANGES_STRLEN], more[80] = "";
	uint64_t used = 0, usable = 0;
	size_t held = 0;

	/* static addresses nobody holds yet are free, but not for this owner */
	for (size_t i = 0; i < p->n_held; i++) {
		int r;

		if (pool_find_range(p, &p->held[i]) < 0 || pool_reserved(p, &p->held[i]))
			continue;
		if ((r = ip_owner(s, net, &p->held[i], NULL, e)) < 0)
			return r;
		held += r == 0;
	}
	if (held)
		snprintf(more, sizeof(more), "; %zu more kept for static addresses", held);
	for (size_t i = 0; i < p->nranges; i++) {
		sqlite3_stmt *st = store_stmt(s, ST_ALLOC_COUNT, e);
		uint64_t u = range_usable(p, &p->ranges[i]);
		if (!st)
			return -e->code;
		bind_text(st, 1, net);
		store_bind_ip(st, 2, &p->ranges[i].first);
		store_bind_ip(st, 3, &p->ranges[i].last);
		if (sqlite3_step(st) == SQLITE_ROW)
			used += (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		usable = usable > UINT64_MAX - u ? UINT64_MAX : usable + u;
	}
	return err_set(e, ENOSPC, "network %s: no free %s address in %s (%llu of %llu allocated%s)",
		       net, fam_name(store_af(p->fam)), pool_ranges_str(p, rs, sizeof(rs)),
		       (unsigned long long)(used < usable ? used : usable),
		       (unsigned long long)usable, more);
}

static void ip_dec(struct ip_addr *a)
{
	for (int i = a->family == AF_INET6 ? 15 : 3; i >= 0; i--)
		if (a->b[i]-- != 0)
			break;
}

/* Next free address after the last one handed out, through the ranges in
 * order and round to where it started (CNI host-local). */
static int next_free(struct store *s, const char *net, const struct pool *p,
		     struct ip_addr *out, struct err *e)
{
	struct ip_addr last, cand, to;
	size_t n = p->nranges, start = 0;
	int r, found;

	found = owner_ip(s, ST_LAST_GET, net, NULL, p->fam, &last, e);
	if (found < 0)
		return found;
	cand = p->ranges[0].first;
	if (found && (r = pool_find_range(p, &last)) >= 0) {
		start = (size_t)r;
		cand = last;
		if (ip_equal(&last, &p->ranges[start].last)) {
			start = (start + 1) % n;
			cand = p->ranges[start].first;
		} else {
			ip_add(&cand, 1);
		}
	}
	/* n + 1 segments: the rest of the start range, every other range,
	 * then the start range's beginning up to the candidate. */
	for (size_t k = 0; k <= n; k++) {
		size_t i = (start + k) % n;
		struct ip_addr from = k == 0 ? cand : p->ranges[i].first;
		to = p->ranges[i].last;
		if (k == n) {
			if (ip_equal(&cand, &p->ranges[i].first))
				break;
			to = cand;
			ip_dec(&to);    /* cand > first: stays in the range */
		}
		r = walk(s, net, p, from, &to, out, e);
		if (r <= 0)
			return r;
	}
	return exhausted(s, net, p, e);
}

static int check_static(struct store *s, const char *net, const struct pool *p,
			const struct ip_addr *req, struct err *e)
{
	char a[IP_STRLEN], rs[RANGES_STRLEN], owner[STORE_NAME_MAX];
	const char *why;
	int r;

	ip_format(req, a);
	if (pool_find_range(p, req) < 0)
		return err_set(e, EADDRNOTAVAIL, "network %s: %s is outside the network's ranges (%s)",
			       net, a, pool_ranges_str(p, rs, sizeof(rs)));
	if ((why = pool_reserved(p, req)))
		return err_set(e, EADDRNOTAVAIL, "network %s: %s is %s and is never handed out",
			       net, a, why);
	r = ip_owner(s, net, req, owner, e);
	if (r < 0)
		return r;
	if (r)
		return err_set(e, EADDRINUSE, "network %s: %s is already allocated to %s", net, a,
			       owner);
	return 0;
}

static int put_ip(struct store *s, enum store_stmt id, const char *net, const char *owner,
		  int fam, const struct ip_addr *a, struct err *e)
{
	sqlite3_stmt *st = store_stmt(s, id, e);
	int i = 1;

	if (!st)
		return -e->code;
	bind_text(st, i++, net);
	if (id == ST_ALLOC_ADD) {
		store_bind_ip(st, i++, a);
		sqlite3_bind_int(st, i++, fam);
		bind_text(st, i++, owner);
		sqlite3_bind_int64(st, i++, (int64_t)time(NULL));
	} else {
		if (owner)
			bind_text(st, i++, owner);
		sqlite3_bind_int(st, i++, fam);
		store_bind_ip(st, i++, a);
	}
	return store_exec_stmt(s, st, "record allocation", e);
}

/* The reserved addresses of family af, sorted, into *out (NULL when none). */
static int held_sorted(const struct ipam_req *r, struct ip_addr **out, size_t *n, struct err *e)
{
	struct ip_addr *v;

	*out = NULL;
	*n = 0;
	if (!r->n_reserved)
		return 0;
	v = malloc(r->n_reserved * sizeof(*v));
	if (!v)
		return err_set(e, ENOMEM, "out of memory");
	for (size_t i = 0; i < r->n_reserved; i++)
		if (r->reserved[i].family == r->family)
			v[(*n)++] = r->reserved[i];
	qsort(v, *n, sizeof(*v), cmp_ip);
	*out = v;
	return 0;
}

int ipam_allocate(struct store *s, const char *net, int af, const char *owner,
		  const struct ip_addr *req, struct ip_addr *out, struct err *e)
{
	struct ipam_req r = { .network = net, .family = af, .owner = owner, .request = req };
	int ret = ipam_request(s, &r, out, e);

	return ret < 0 ? ret : 0;
}

int ipam_request(struct store *s, struct ipam_req *rq, struct ip_addr *out, struct err *e)
{
	STORE_ERR_LOCAL(e);
	const char *net = rq->network, *owner = rq->owner;
	const struct ip_addr *req = rq->request;
	char a[IP_STRLEN], b[IP_STRLEN];
	struct ip_addr got, *held = NULL;
	struct pool p;
	bool dynamic = false, moved = false;
	int af = rq->family, fam = store_fam(af), r;
	size_t n_held;

	memset(&rq->renumbered_from, 0, sizeof(rq->renumbered_from));
	if (store_check_name("network", net, e) < 0 || store_check_name("owner", owner, e) < 0)
		return -e->code;
	if (af != AF_INET && af != AF_INET6)
		return err_set(e, EAFNOSUPPORT, "network %s: address family %d is neither IPv4 "
			       "nor IPv6", net, af);
	if (req && req->family != af)
		return err_set(e, EINVAL, "network %s: requested address %s is not %s", net,
			       ip_format(req, a), fam_name(af));
	if (held_sorted(rq, &held, &n_held, e) < 0)
		return -e->code;
	if (store_begin(s, true, e) < 0)
		goto out;
	if (load_pool(s, net, af, &p, e) < 0)
		goto fail;
	p.held = held;
	p.n_held = n_held;
	/* Idempotent: a retried allocation gets what the first one got. */
	r = owner_ip(s, ST_ALLOC_OWNER, net, owner, fam, &got, e);
	if (r < 0)
		goto fail;
	if (r && req && !ip_equal(req, &got)) {
		err_set(e, EEXIST, "network %s: %s already holds %s (requested %s); release "
			"it first", net, owner, ip_format(&got, a), ip_format(req, b));
		goto fail;
	}
	if (r && !req && rq->renumber && pool_held(&p, &got)) {
		/* another owner's static address: give it up, take another */
		sqlite3_stmt *st = store_stmt(s, ST_ALLOC_DEL_IP, e);

		if (!st)
			goto fail;
		bind_text(st, 1, net);
		store_bind_ip(st, 2, &got);
		if (store_exec_stmt(s, st, "release", e) < 0)
			goto fail;
		rq->renumbered_from = got;
		moved = true;
		r = 0;
	}
	if (r) {
		store_rollback(s);
		free(held);
		*out = got;
		return 0;
	}
	if (req) {
		if (check_static(s, net, &p, req, e) < 0)
			goto fail;
		got = *req;
	} else {
		/* Sticky: the owner's previous address, if nobody took it since
		 * and nobody asks for it statically. */
		r = owner_ip(s, ST_STICKY_GET, net, owner, fam, &got, e);
		if (r < 0)
			goto fail;
		if (r && pool_find_range(&p, &got) >= 0 && !pool_reserved(&p, &got) &&
		    !pool_held(&p, &got))
			r = ip_owner(s, net, &got, NULL, e) == 0;
		else
			r = 0;
		if (!r) {
			if ((r = next_free(s, net, &p, &got, e)) == -ENOSPC && moved) {
				/* nowhere to go: it keeps what it has */
				store_rollback(s);
				free(held);
				*out = rq->renumbered_from;
				memset(&rq->renumbered_from, 0, sizeof(rq->renumbered_from));
				err_clear(e);
				return 0;
			}
			if (r != 0)
				goto fail;
			dynamic = true;
		}
	}
	if (put_ip(s, ST_ALLOC_ADD, net, owner, fam, &got, e) < 0)
		goto fail;
	/* Only dynamic allocations move the cursor: a static or sticky one
	 * elsewhere in the range must not make the next dynamic one jump. */
	if (dynamic && put_ip(s, ST_LAST_PUT, net, NULL, fam, &got, e) < 0)
		goto fail;
	if (put_ip(s, ST_STICKY_PUT, net, owner, fam, &got, e) < 0)
		goto fail;
	if (store_commit(s, e) < 0)
		goto out;
	free(held);
	*out = got;
	return moved;
fail:
	store_rollback(s);
out:
	free(held);
	if (moved && e->code)
		memset(&rq->renumbered_from, 0, sizeof(rq->renumbered_from));
	return -e->code;
}

int ipam_holder(struct store *s, const char *net, const struct ip_addr *ip,
		char owner[STORE_NAME_MAX], struct err *e)
{
	STORE_ERR_LOCAL(e);

	if (store_check_name("network", net, e) < 0)
		return -e->code;
	return ip_owner(s, net, ip, owner, e);
}

int ipam_release(struct store *s, const char *net, const char *owner, struct err *e)
{
	STORE_ERR_LOCAL(e);
	struct store_network n;
	sqlite3_stmt *st;
	int count;

	if (store_check_name("network", net, e) < 0 || store_check_name("owner", owner, e) < 0)
		return -e->code;
	if (store_begin(s, true, e) < 0)
		return -e->code;
	if (read_network(s, net, 4, &n, e) < 0 || !(st = store_stmt(s, ST_ALLOC_RELEASE, e)))
		goto fail;
	bind_text(st, 1, net);
	bind_text(st, 2, owner);
	if (store_exec_stmt(s, st, "release", e) < 0)
		goto fail;
	count = sqlite3_changes(s->db);
	if (store_commit(s, e) < 0)
		return -e->code;
	return count;
fail:
	store_rollback(s);
	return -e->code;
}

/* A growing array of allocations. */
struct allocs {
	struct ipam_alloc *v;
	size_t n, cap;
};

static int allocs_read(struct store *s, sqlite3_stmt *st, struct allocs *l,
		       const char *const *live, size_t nlive, struct err *e);

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_live(const char *owner, const char *const *live, size_t n)
{
	return live && bsearch(&owner, live, n, sizeof(*live), cmp_str);
}

/* Append the rows of an ST_ALLOC_LIST* statement to l, skipping the owners
 * in live (sorted; NULL: keep all). Resets st. */
static int allocs_read(struct store *s, sqlite3_stmt *st, struct allocs *l,
		       const char *const *live, size_t nlive, struct err *e)
{
	struct ipam_alloc *slot;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ipam_alloc a = { 0 };
		store_copy_text(a.network, sizeof(a.network), st, 0);
		store_copy_text(a.owner, sizeof(a.owner), st, 3);
		a.created = sqlite3_column_int64(st, 4);
		if (!store_column_ip(st, 1, sqlite3_column_int(st, 2), &a.ip))
			continue;
		if (is_live(a.owner, live, nlive))
			continue;
		slot = array_push(l);
		if (!slot) {
			sqlite3_reset(st);
			return err_set(e, ENOMEM, "out of memory");
		}
		*slot = a;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "list allocations", e);
	return 0;
}

int ipam_list(struct store *s, const char *net, ipam_alloc_fn *fn, void *ctx, struct err *e)
{
	STORE_ERR_LOCAL(e);
	struct allocs l = { 0 };
	sqlite3_stmt *st = store_stmt(s, net ? ST_ALLOC_LIST_NET : ST_ALLOC_LIST, e);
	int ret = 0;

	if (!st)
		return -e->code;
	if (net)
		bind_text(st, 1, net);
	/* Collect first: fn may call back into the store. */
	if (allocs_read(s, st, &l, NULL, 0, e) < 0)
		ret = -e->code;
	for (size_t i = 0; i < l.n && ret == 0; i++)
		ret = fn(ctx, &l.v[i]);
	array_free(&l);
	return ret;
}

int ipam_reconcile(struct store *s, const char *const *live_owners, size_t n,
		   ipam_alloc_fn *fn, void *ctx, struct err *e)
{
	STORE_ERR_LOCAL(e);
	const char **live = NULL;
	struct allocs l = { 0 };
	ARRAY(char[STORE_NAME_MAX]) gone = { 0 };
	sqlite3_stmt *st;
	int rc, ret;

	if (n) {
		live = malloc(n * sizeof(*live));
		if (!live)
			return err_set(e, ENOMEM, "out of memory");
		memcpy(live, live_owners, n * sizeof(*live));
		qsort(live, n, sizeof(*live), cmp_str);
	}
	if ((ret = store_begin(s, true, e)) < 0)
		goto out;
	if (!(st = store_stmt(s, ST_ALLOC_LIST, e)) ||
	    allocs_read(s, st, &l, live, n, e) < 0)
		goto fail;
	for (size_t i = 0; i < l.n; i++) {
		if (!(st = store_stmt(s, ST_ALLOC_DEL_IP, e)))
			goto fail;
		bind_text(st, 1, l.v[i].network);
		store_bind_ip(st, 2, &l.v[i].ip);
		if (store_exec_stmt(s, st, "release", e) < 0)
			goto fail;
	}
	/* The sticky memory of owners that are gone for good. */
	if (!(st = store_stmt(s, ST_STICKY_OWNERS, e)))
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 0);
		char (*name)[STORE_NAME_MAX];
		if (!o || is_live(o, live, n))
			continue;
		name = array_push(&gone);
		if (!name) {
			sqlite3_reset(st);
			err_set(e, ENOMEM, "out of memory");
			goto fail;
		}
		snprintf(*name, STORE_NAME_MAX, "%s", o);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(s, rc, "list sticky addresses", e);
		goto fail;
	}
	for (size_t i = 0; i < gone.n; i++) {
		if (!(st = store_stmt(s, ST_STICKY_DEL_OWNER, e)))
			goto fail;
		bind_text(st, 1, gone.v[i]);
		if (store_exec_stmt(s, st, "forget sticky address", e) < 0)
			goto fail;
	}
	if ((ret = store_commit(s, e)) < 0)
		goto out;
	/* Report only what is really released: after the commit. */
	for (size_t i = 0; fn && i < l.n; i++)
		fn(ctx, &l.v[i]);
	ret = (int)l.n;
	goto out;
fail:
	store_rollback(s);
	ret = -e->code;
out:
	free(live);
	array_free(&l);
	array_free(&gone);
	return ret;
}

int ipam_usage(struct store *s, const char *net, int family, uint64_t *usable, uint64_t *used,
	       struct err *e)
{
	STORE_ERR_LOCAL(e);
	struct pool p;

	*usable = *used = 0;
	if (load_pool(s, net, family, &p, e) < 0)
		return -e->code;
	for (size_t i = 0; i < p.nranges; i++) {
		sqlite3_stmt *st = store_stmt(s, ST_ALLOC_COUNT, e);
		uint64_t u = range_usable(&p, &p.ranges[i]);
		int rc;

		if (!st)
			return -e->code;
		bind_text(st, 1, net);
		store_bind_ip(st, 2, &p.ranges[i].first);
		store_bind_ip(st, 3, &p.ranges[i].last);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*used += (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return store_sqlerr(s, rc, "count allocations", e);
		*usable = *usable > UINT64_MAX - u ? UINT64_MAX : *usable + u;
	}
	if (*used > *usable)
		*used = *usable;
	return 0;
}
