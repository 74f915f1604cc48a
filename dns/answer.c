/* answer.c - the query path without sockets: parse, decide (local zone or
 * forward), build the authoritative answer, size it for the transport. */
#include "dns/dns_int.h"

#include <string.h>

#define MAX_RRSET 256               /* records of one name and type we list */

struct ans {
	struct dns_wbuf w;
	const struct dns_query *q;
	const struct dns_records *r;
	dns_netmask vis;
	uint16_t flags;             /* AA, TC */
	int rcode;
	uint16_t an, ns, ar;
	size_t qend;                /* message length after the question */
	unsigned qcomp;             /* compression entries after the question */
	bool edns;
};

static void count_rcode(struct dns_stats *st, int rcode)
{
	switch (rcode) {
	case DNS_R_NOERROR: st->noerror++; break;
	case DNS_R_FORMERR: st->formerr++; break;
	case DNS_R_SERVFAIL: st->servfail++; break;
	case DNS_R_NXDOMAIN: st->nxdomain++; break;
	case DNS_R_NOTIMP: st->notimp++; break;
	case DNS_R_REFUSED: st->refused++; break;
	case DNS_R_BADVERS: st->badvers++; break;
	}
}

void dns_count_rcode(struct dns_stats *st, const uint8_t *reply, size_t len)
{
	if (len >= DNS_HDR_LEN)
		count_rcode(st, reply[3] & 0xf);
	if (len >= DNS_HDR_LEN && (reply[2] & (DNS_F_TC >> 8)))
		st->truncated++;
}

size_t dns_reply_limit(const struct dns_query *q, bool tcp)
{
	if (tcp)
		return DNS_MSG_MAX;
	if (!q->edns || q->edns_size <= 512)
		return 512;
	return q->edns_size < DNS_EDNS_PAYLOAD ? q->edns_size : DNS_EDNS_PAYLOAD;
}

static void put_header(uint8_t *out, const struct dns_query *q, uint16_t flags, int rcode,
		       uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar)
{
	dns_put16(out, q->id);
	flags |= DNS_F_QR | DNS_F_RA | (q->flags & (0x7800 | DNS_F_RD | DNS_F_CD));
	dns_put16(out + 2, (uint16_t)(flags | (rcode & 0xf)));
	dns_put16(out + 4, qd);
	dns_put16(out + 6, an);
	dns_put16(out + 8, ns);
	dns_put16(out + 10, ar);
}

size_t dns_error_reply(const struct dns_query *q, int rcode, uint8_t *out, size_t outcap)
{
	struct dns_wbuf w;
	uint16_t qd = 0, ar = 0;

	dns_wbuf_init(&w, out, outcap < 512 ? outcap : 512);
	dns_wput(&w, "\0\0\0\0\0\0\0\0\0\0\0\0", DNS_HDR_LEN);
	if (q->has_q) {
		dns_wput(&w, q->name, q->name_len);
		dns_wput16(&w, q->qtype);
		dns_wput16(&w, q->qclass);
		qd = 1;
	}
	if (q->edns) {
		dns_wput_opt(&w, DNS_EDNS_PAYLOAD, (uint8_t)(rcode >> 4), q->edns_do);
		ar = 1;
	}
	if (w.overflow)
		return 0;
	put_header(out, q, 0, rcode, qd, 0, 0, ar);
	return w.len;
}

/* ---- building the answer -------------------------------------------------- */

static void ans_truncate(struct ans *a)
{
	a->w.len = a->qend;
	a->w.ncomp = a->qcomp;
	a->w.overflow = false;
	a->an = a->ns = a->ar = 0;
	a->flags |= DNS_F_TC;
}

static void rr_addr(struct ans *a, const uint8_t *owner, size_t olen, const struct ip_addr *ip)
{
	bool v6 = ip->family == AF_INET6;
	size_t at = dns_rr_begin(&a->w, owner, olen, v6 ? DNS_T_AAAA : DNS_T_A, a->r->ttl);

	dns_wput(&a->w, ip->b, v6 ? 16 : 4);
	dns_rr_end(&a->w, at);
}

/* "ns.DOMAIN" and friends: label + the zone's domain, wire form. */
static size_t join_name(uint8_t *out, const uint8_t *label, size_t llen, const struct dns_records *r)
{
	if (1 + llen + r->domain_len > DNS_NAME_MAX)
		return 0;
	out[0] = (uint8_t)llen;
	memcpy(out + 1, label, llen);
	memcpy(out + 1 + llen, r->domain, r->domain_len);
	return 1 + llen + r->domain_len;
}

static void rr_soa(struct ans *a, const uint8_t *apex, size_t alen)
{
	uint8_t n[DNS_NAME_MAX];
	size_t at = dns_rr_begin(&a->w, apex, alen, DNS_T_SOA, a->r->ttl), l;

	l = join_name(n, (const uint8_t *)"ns", 2, a->r);
	if (l)
		dns_wput_name(&a->w, n, l);
	else
		dns_wput_name(&a->w, a->r->domain, a->r->domain_len);
	l = join_name(n, (const uint8_t *)"hostmaster", 10, a->r);
	if (l)
		dns_wput_name(&a->w, n, l);
	else
		dns_wput_name(&a->w, a->r->domain, a->r->domain_len);
	dns_wput32(&a->w, a->r->serial);
	dns_wput32(&a->w, 3600);     /* refresh */
	dns_wput32(&a->w, 600);      /* retry */
	dns_wput32(&a->w, 86400);    /* expire */
	dns_wput32(&a->w, a->r->ttl);/* minimum: the negative-caching TTL */
	dns_rr_end(&a->w, at);
}

/* A record of the answer section; on overflow the whole answer becomes TC. */
static void answer_done(struct ans *a, uint16_t *count)
{
	if (a->w.overflow || (a->flags & DNS_F_TC)) {
		ans_truncate(a);
		return;
	}
	(*count)++;
}

/* An additional record: dropped quietly when it does not fit (RFC 2181 §9). */
static bool additional_begin(struct ans *a, size_t *len, unsigned *ncomp)
{
	*len = a->w.len;
	*ncomp = a->w.ncomp;
	return !(a->flags & DNS_F_TC);
}

static void additional_done(struct ans *a, size_t len, unsigned ncomp)
{
	if (a->w.overflow) {
		a->w.len = len;
		a->w.ncomp = ncomp;
		a->w.overflow = false;
		return;
	}
	a->ar++;
}

static void negative(struct ans *a, int rcode, const uint8_t *apex, size_t alen)
{
	a->rcode = rcode;
	if (!apex)
		return;
	rr_soa(a, apex, alen);
	answer_done(a, &a->ns);
}

static bool visible_ent(const struct ans *a, const struct dns_addr_ent *e)
{
	return a->vis & ((dns_netmask)1 << e->net);
}

static bool node_visible(const struct ans *a, const struct dns_node *n)
{
	if (!n)
		return false;
	const struct dns_addr_ent *v = dns_node_addrs(n);

	for (uint32_t i = 0; i < n->naddrs; i++)
		if (visible_ent(a, &v[i]))
			return true;
	return false;
}

/* A/AAAA (or both for ANY) of a node's visible addresses, rotated. Returns
 * the number of records added. */
static unsigned answer_addrs(struct ans *a, const struct dns_node *n, uint32_t rotate)
{
	const struct dns_addr_ent *v = dns_node_addrs(n);
	uint32_t idx[MAX_RRSET], cnt = 0;
	uint16_t t = a->q->qtype;

	for (uint32_t i = 0; i < n->naddrs && cnt < MAX_RRSET; i++) {
		const struct dns_addr_ent *e = &v[i];
		bool v6 = e->addr.family == AF_INET6;

		if (!visible_ent(a, e))
			continue;
		if (t == DNS_T_ANY || (t == DNS_T_A && !v6) || (t == DNS_T_AAAA && v6))
			idx[cnt++] = i;
	}
	for (uint32_t k = 0; k < cnt; k++) {
		rr_addr(a, a->q->name, a->q->name_len, &v[idx[(k + rotate) % cnt]].addr);
		answer_done(a, &a->an);
		if (a->flags & DNS_F_TC)
			break;
	}
	return cnt;
}

/* The "ns" name of the zone: the address the query came in on. */
static void answer_ns_host(struct ans *a, const struct ip_addr *local, const uint8_t *owner,
			   size_t olen, bool additional)
{
	uint16_t t = a->q->qtype;
	size_t len;
	unsigned nc;

	if (!local || (local->family != AF_INET && local->family != AF_INET6))
		return;
	if (!additional && t != DNS_T_ANY && t != (local->family == AF_INET6 ? DNS_T_AAAA : DNS_T_A))
		return;
	if (additional) {
		if (!additional_begin(a, &len, &nc))
			return;
		rr_addr(a, owner, olen, local);
		additional_done(a, len, nc);
	} else {
		rr_addr(a, owner, olen, local);
		answer_done(a, &a->an);
	}
}

static void answer_apex(struct ans *a, const uint8_t *apex, size_t alen,
			const struct ip_addr *local)
{
	uint16_t t = a->q->qtype;
	uint8_t ns[DNS_NAME_MAX];
	size_t nslen = join_name(ns, (const uint8_t *)"ns", 2, a->r);

	if (t == DNS_T_SOA || t == DNS_T_ANY) {
		rr_soa(a, a->q->name, a->q->name_len);
		answer_done(a, &a->an);
	}
	if ((t == DNS_T_NS || t == DNS_T_ANY) && nslen) {
		size_t at = dns_rr_begin(&a->w, a->q->name, a->q->name_len, DNS_T_NS, a->r->ttl);
		dns_wput_name(&a->w, ns, nslen);
		dns_rr_end(&a->w, at);
		answer_done(a, &a->an);
		answer_ns_host(a, local, ns, nslen, true);
	}
	if (!a->an && !(a->flags & DNS_F_TC))
		negative(a, DNS_R_NOERROR, apex, alen);
}

static void answer_srv(struct ans *a, const struct dns_node *n, uint16_t port, uint8_t proto,
		       uint32_t rotate)
{
	const struct dns_addr_ent *v = dns_node_addrs(n);
	uint16_t ctrs[MAX_RRSET];
	uint32_t cnt = 0;

	for (uint32_t i = 0; i < n->naddrs && cnt < MAX_RRSET; i++) {
		const struct dns_addr_ent *e = &v[i];
		bool dup = false;

		if (!visible_ent(a, e))
			continue;
		for (uint32_t k = 0; k < cnt; k++)
			dup |= ctrs[k] == e->ctr;
		if (!dup)
			ctrs[cnt++] = e->ctr;
	}
	(void)proto;
	for (uint32_t k = 0; k < cnt; k++) {
		const struct dns_node *c = &a->r->nodes.v[ctrs[(k + rotate) % cnt]];
		const uint8_t *key = dns_node_key(a->r, c);
		uint8_t target[DNS_NAME_MAX];
		size_t tl = join_name(target, key + 1, key[0], a->r), at;

		if (!tl)
			continue;
		at = dns_rr_begin(&a->w, a->q->name, a->q->name_len, DNS_T_SRV, a->r->ttl);
		dns_wput16(&a->w, 0);       /* priority */
		dns_wput16(&a->w, 0);       /* weight */
		dns_wput16(&a->w, port);
		dns_wput_name(&a->w, target, tl);
		dns_rr_end(&a->w, at);
		answer_done(a, &a->an);
		if (a->flags & DNS_F_TC)
			return;
	}
	/* glue: the targets' addresses, as far as they fit */
	for (uint32_t k = 0; k < cnt; k++) {
		const struct dns_node *c = &a->r->nodes.v[ctrs[(k + rotate) % cnt]];
		const struct dns_addr_ent *cv = dns_node_addrs(c);
		const uint8_t *key = dns_node_key(a->r, c);
		uint8_t target[DNS_NAME_MAX];
		size_t tl = join_name(target, key + 1, key[0], a->r), len;
		unsigned nc;

		for (uint32_t i = 0; tl && i < c->naddrs; i++) {
			if (!visible_ent(a, &cv[i]) || !additional_begin(a, &len, &nc))
				continue;
			rr_addr(a, target, tl, &cv[i].addr);
			additional_done(a, len, nc);
		}
	}
}

/* Offsets of the labels of a wire name; returns their count. */
static int split_labels(const uint8_t *name, size_t off[128])
{
	int n = 0;

	for (size_t i = 0; name[i] && n < 128; i += 1 + (size_t)name[i])
		off[n++] = i;
	return n;
}

static bool label_is(const uint8_t *lname, size_t at, const char *s)
{
	size_t l = strlen(s);

	return lname[at] == l && !memcmp(lname + at + 1, s, l);
}

/* _PORT and _PROTO labels of an SRV name. */
static bool parse_srv_labels(const uint8_t *ln, size_t po, size_t pr, uint16_t *port,
			     uint8_t *proto)
{
	unsigned v = 0;

	if (ln[po] < 2 || ln[po] > 6 || ln[po + 1] != '_')
		return false;
	for (unsigned i = 2; i <= ln[po]; i++) {
		if (ln[po + i] < '0' || ln[po + i] > '9')
			return false;
		v = v * 10 + (unsigned)(ln[po + i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	if (label_is(ln, pr, "_tcp"))
		*proto = 0;
	else if (label_is(ln, pr, "_udp"))
		*proto = 1;
	else if (label_is(ln, pr, "_sctp"))
		*proto = 2;
	else
		return false;
	return true;
}

static bool node_has_srv(const struct dns_node *n, int port, uint8_t proto)
{
	for (uint32_t i = 0; n && n->srvs && i < n->srvs->n; i++) {
		const struct dns_srv_ent *s = &n->srvs->v[i];

		if (s->proto == proto && (port < 0 || (port >= s->first && port <= s->last)))
			return true;
	}
	return false;
}

/* Names under DOMAIN; rel = number of labels before the domain. */
static void answer_domain(struct ans *a, const size_t *off, int rel, const struct ip_addr *local,
			  uint32_t rotate)
{
	const uint8_t *ln = a->q->lname;
	const struct dns_node *n;
	const uint8_t *apex = a->q->name + off[rel];
	size_t alen = a->q->name_len - off[rel];
	uint16_t t = a->q->qtype;

	a->flags |= DNS_F_AA;
	if (rel == 0) {
		answer_apex(a, apex, alen, local);
		return;
	}
	if (rel == 1) {
		n = dns_records_find(a->r, ln + 1, ln[0]);
		if (!node_visible(a, n)) {
			if (label_is(ln, 0, "ns")) {  /* the NS of our SOA, unless a container */
				answer_ns_host(a, local, a->q->name, a->q->name_len, false);
				if (!a->an && !(a->flags & DNS_F_TC))
					negative(a, DNS_R_NOERROR, apex, alen);
				return;
			}
			negative(a, DNS_R_NXDOMAIN, apex, alen);
			return;
		}
		if (t == DNS_T_A || t == DNS_T_AAAA || t == DNS_T_ANY)
			answer_addrs(a, n, rotate);
		if (!a->an && !(a->flags & DNS_F_TC))
			negative(a, DNS_R_NOERROR, apex, alen);
		return;
	}
	if (rel == 2 || rel == 3) {
		uint16_t port = 0;
		uint8_t proto = 0;
		size_t svc = off[rel - 1];
		bool ok;

		n = dns_records_find(a->r, ln + svc + 1, ln[svc]);
		if (!node_visible(a, n)) {
			negative(a, DNS_R_NXDOMAIN, apex, alen);
			return;
		}
		if (rel == 2) {     /* _PROTO.X: an empty non-terminal if X has SRVs */
			ok = label_is(ln, off[0], "_tcp") ? (proto = 0, true) :
			     label_is(ln, off[0], "_udp") ? (proto = 1, true) :
			     label_is(ln, off[0], "_sctp") ? (proto = 2, true) : false;
			negative(a, ok && node_has_srv(n, -1, proto) ? DNS_R_NOERROR : DNS_R_NXDOMAIN,
				 apex, alen);
			return;
		}
		if (!parse_srv_labels(ln, off[0], off[1], &port, &proto) ||
		    !node_has_srv(n, port, proto)) {
			negative(a, DNS_R_NXDOMAIN, apex, alen);
			return;
		}
		if (t == DNS_T_SRV || t == DNS_T_ANY)
			answer_srv(a, n, port, proto, rotate);
		if (!a->an && !(a->flags & DNS_F_TC))
			negative(a, DNS_R_NOERROR, apex, alen);
		return;
	}
	negative(a, DNS_R_NXDOMAIN, apex, alen);
}

/* The address of a full reverse name; false for partial or bad ones. */
static bool reverse_addr(const uint8_t *ln, const size_t *off, int nl, bool v6, struct ip_addr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (v6) {
		if (nl != 34)
			return false;
		ip->family = AF_INET6;
		for (int i = 0; i < 32; i++) {
			const uint8_t *l = ln + off[i];
			unsigned v;

			if (l[0] != 1)
				return false;
			if (l[1] >= '0' && l[1] <= '9')
				v = l[1] - '0';
			else if (l[1] >= 'a' && l[1] <= 'f')
				v = (unsigned)(l[1] - 'a' + 10);
			else
				return false;
			/* label i is nibble 31 - i */
			ip->b[(31 - i) / 2] |= (uint8_t)(((31 - i) % 2) ? v : v << 4);
		}
		return true;
	}
	if (nl != 6)
		return false;
	ip->family = AF_INET;
	for (int i = 0; i < 4; i++) {
		const uint8_t *l = ln + off[i];
		unsigned v = 0;

		if (l[0] < 1 || l[0] > 3 || (l[0] > 1 && l[1] == '0'))
			return false;
		for (unsigned k = 1; k <= l[0]; k++) {
			if (l[k] < '0' || l[k] > '9')
				return false;
			v = v * 10 + (unsigned)(l[k] - '0');
		}
		if (v > 255)
			return false;
		ip->b[3 - i] = (uint8_t)v;
	}
	return true;
}

/* The PTR record of address entry e at the question's name. */
static void answer_ptr(struct ans *a, const struct dns_addr_ent *e)
{
	const uint8_t *key = dns_node_key(a->r, &a->r->nodes.v[e->ctr]);
	uint8_t target[DNS_NAME_MAX];
	size_t tl = join_name(target, key + 1, key[0], a->r), at;

	if (!tl)
		return;
	at = dns_rr_begin(&a->w, a->q->name, a->q->name_len, DNS_T_PTR, a->r->ttl);
	dns_wput_name(&a->w, target, tl);
	dns_rr_end(&a->w, at);
	answer_done(a, &a->an);
}

/*
 * The reverse name of a service's VIP outside every subnet (issue 23). A
 * VIP lies in a service range, outside the networks' subnets, and berth
 * owns no reverse zone there: it is authoritative for the VIP's exact PTR
 * name and nothing else. That name (as a client that sees the service's
 * network asks it) answers PTR NAME.DOMAIN, AA, and any other type NOERROR
 * without data and without SOA (as a bare NAME does: there is no zone to
 * give one of); every other name of the service range (a free address, a
 * partial name like 96.10.in-addr.arpa) and the VIP of a service the client
 * does not see are forwarded as before. So a removed service's VIP goes
 * back to the upstreams at once. Returns false to forward.
 */
static bool answer_vip_reverse(struct ans *a, const struct ip_addr *ip)
{
	const struct dns_addr_ent *e = dns_records_find_addr(a->r, ip);

	if (!e || !visible_ent(a, e) || !(a->r->nodes.v[e->ctr].flags & DNS_NODE_SVC))
		return false;
	a->flags |= DNS_F_AA;
	if (a->q->qtype == DNS_T_PTR || a->q->qtype == DNS_T_ANY)
		answer_ptr(a, e);
	return true;
}

/* in-addr.arpa / ip6.arpa: true if answered, false to forward. */
static bool answer_reverse(struct ans *a, const size_t *off, int nl, bool v6,
			   const struct ip_addr *local)
{
	const uint8_t *ln = a->q->lname;
	const struct dns_rzone *zone = NULL;
	struct ip_addr ip;
	bool full = reverse_addr(ln, off, nl, v6, &ip);
	size_t zoff = 0;

	for (unsigned i = 0; i < a->r->zones.n && !zone; i++) {
		const struct dns_rzone *z = &a->r->zones.v[i];

		if (!(a->vis & ((dns_netmask)1 << z->net)) ||
		    z->subnet.addr.family != (v6 ? AF_INET6 : AF_INET))
			continue;
		if (full) {
			if (ip_prefix_contains(&z->subnet, &ip))
				zone = z;
			continue;
		}
		for (int k = 0; k < nl; k++) {
			if (a->q->name_len - off[k] == z->apex_len &&
			    !memcmp(ln + off[k], z->apex, z->apex_len)) {
				zone = z;
				zoff = off[k];
			}
		}
	}
	if (!zone)
		return full && answer_vip_reverse(a, &ip);
	a->flags |= DNS_F_AA;
	if (!full) {
		if (zoff == 0)
			answer_apex(a, a->q->name, a->q->name_len, local);
		else
			negative(a, DNS_R_NOERROR, zone->apex, zone->apex_len);
		return true;
	}
	const struct dns_addr_ent *e = dns_records_find_addr(a->r, &ip);
	if (!e || !visible_ent(a, e)) {
		negative(a, DNS_R_NXDOMAIN, zone->apex, zone->apex_len);
		return true;
	}
	if (a->q->qtype == DNS_T_PTR || a->q->qtype == DNS_T_ANY)
		answer_ptr(a, e);
	if (!a->an && !(a->flags & DNS_F_TC))
		negative(a, DNS_R_NOERROR, zone->apex, zone->apex_len);
	return true;
}

/* Decide and build. Returns false when the name is not ours (forward). */
static bool answer_local(struct ans *a, const struct ip_addr *local, uint32_t rotate)
{
	const struct dns_query *q = a->q;
	const struct dns_records *r = a->r;
	size_t off[128];
	int nl = split_labels(q->lname, off), dl = r->domain_labels;
	size_t dlen = r->domain_len;

	if (q->qclass != DNS_C_IN && q->qclass != DNS_C_ANY)
		return false;
	/* under DOMAIN? compare at a label boundary */
	if (nl >= dl && q->name_len - off[nl - dl] == dlen &&
	    !memcmp(q->lname + off[nl - dl], r->domain, dlen)) {
		answer_domain(a, off, nl - dl, local, rotate);
		return true;
	}
	/* a bare NAME: ours only if it is a visible container or service */
	if (nl == 1) {
		const struct dns_node *n = dns_records_find(r, q->lname + 1, q->lname[0]);
		uint16_t t = q->qtype;

		if (!node_visible(a, n))
			return false;
		a->flags |= DNS_F_AA;
		if (t == DNS_T_A || t == DNS_T_AAAA || t == DNS_T_ANY)
			answer_addrs(a, n, rotate);
		return true;       /* NODATA without SOA: there is no zone */
	}
	if (nl >= 2 && label_is(q->lname, off[nl - 1], "arpa")) {
		if (label_is(q->lname, off[nl - 2], "in-addr"))
			return answer_reverse(a, off, nl, false, local);
		if (label_is(q->lname, off[nl - 2], "ip6"))
			return answer_reverse(a, off, nl, true, local);
	}
	return false;
}

/*
 * The common query, A or AAAA of a container or service (NAME.DOMAIN or a
 * bare NAME) with at least one visible address, without the general
 * builder: the question is copied as sent, each record is a pointer to it
 * (0xc00c) and a fixed tail, then OPT. The bytes are exactly those the
 * general path writes (test_dns_answer compares both); anything else (NODATA,
 * NXDOMAIN, ANY, a reply that would not fit) returns 0 and takes the
 * general path. Returns the reply's length.
 */
static size_t answer_fast(const struct dns_ctx *c, const struct dns_query *q, size_t limit,
			  uint8_t *out)
{
	const struct dns_records *r = c->rec;
	const uint8_t *ln = q->lname;
	size_t l = ln[0], rest = q->name_len - 1 - l, at, rrlen;
	const struct dns_node *n;
	const struct dns_addr_ent *v;
	uint32_t idx[MAX_RRSET], cnt = 0;
	bool v6 = q->qtype == DNS_T_AAAA;
	dns_netmask vis;

	if ((q->qtype != DNS_T_A && !v6) || q->qclass != DNS_C_IN || l == 0)
		return 0;
	/* NAME.DOMAIN, or a bare NAME that is not the (one-label) domain */
	if (rest == 1 ? q->name_len == r->domain_len && !memcmp(ln, r->domain, q->name_len) :
	    rest != r->domain_len || memcmp(ln + 1 + l, r->domain, rest))
		return 0;
	n = dns_records_find(r, ln + 1, l);
	if (!n)
		return 0;
	vis = dns_records_scope(r, c->src);
	v = dns_node_addrs(n);
	for (uint32_t i = 0; i < n->naddrs && cnt < MAX_RRSET; i++) {
		const struct dns_addr_ent *e = &v[i];

		if ((vis & ((dns_netmask)1 << e->net)) && (e->addr.family == AF_INET6) == v6)
			idx[cnt++] = i;
	}
	rrlen = 12 + (v6 ? 16 : 4);
	if (!cnt || DNS_HDR_LEN + q->name_len + 4 + cnt * rrlen > limit - (q->edns ? 11 : 0))
		return 0;
	put_header(out, q, DNS_F_AA, DNS_R_NOERROR, 1, (uint16_t)cnt, 0, q->edns ? 1 : 0);
	at = DNS_HDR_LEN;
	memcpy(out + at, q->name, q->name_len);
	at += q->name_len;
	dns_put16(out + at, q->qtype);
	dns_put16(out + at + 2, q->qclass);
	at += 4;
	for (uint32_t k = 0; k < cnt; k++) {
		const struct ip_addr *ip = &v[idx[(k + c->rotate) % cnt]].addr;

		dns_put16(out + at, 0xc000 | DNS_HDR_LEN);
		dns_put16(out + at + 2, q->qtype);
		dns_put16(out + at + 4, DNS_C_IN);
		dns_put32(out + at + 6, r->ttl);
		dns_put16(out + at + 10, (uint16_t)(rrlen - 12));
		memcpy(out + at + 12, ip->b, rrlen - 12);
		at += rrlen;
	}
	if (q->edns) {
		struct dns_wbuf w;

		dns_wbuf_init(&w, out, limit);
		w.len = at;
		dns_wput_opt(&w, DNS_EDNS_PAYLOAD, 0, q->edns_do);
		at = w.len;
	}
	return at;
}

enum dns_action dns_answer(struct dns_ctx *c, const uint8_t *m, size_t len,
			   struct dns_query *q, uint8_t *out, size_t outcap, size_t *outlen)
{
	struct ans a = { .q = q, .r = c->rec };
	size_t limit;
	int rc = dns_query_parse(m, len, q);

	if (rc < 0) {
		c->stats->dropped++;
		return DNS_DROP;
	}
	c->stats->queries++;
	if (rc == 0 && (q->qtype == DNS_T_AXFR || q->qtype == DNS_T_IXFR || q->qtype == DNS_T_OPT))
		rc = q->qtype == DNS_T_OPT ? DNS_R_FORMERR : DNS_R_REFUSED;
	if (rc > 0) {
		*outlen = dns_error_reply(q, rc, out, outcap);
		count_rcode(c->stats, rc);
		return *outlen ? DNS_REPLY : DNS_DROP;
	}
	if (!c->rec)
		return DNS_FORWARD;
	limit = dns_reply_limit(q, c->tcp);
	if (limit > outcap)
		limit = outcap;
	*outlen = c->general_only ? 0 : answer_fast(c, q, limit, out);
	if (*outlen) {
		c->stats->authoritative++;
		count_rcode(c->stats, DNS_R_NOERROR);
		return DNS_REPLY;
	}
	a.vis = dns_records_scope(c->rec, c->src);
	a.edns = q->edns;
	dns_wbuf_init(&a.w, out, limit - (q->edns ? 11 : 0));
	dns_wput(&a.w, "\0\0\0\0\0\0\0\0\0\0\0\0", DNS_HDR_LEN);
	dns_wput_name(&a.w, q->name, q->name_len);
	dns_wput16(&a.w, q->qtype);
	dns_wput16(&a.w, q->qclass);
	if (a.w.overflow)
		return DNS_DROP;
	a.qend = a.w.len;
	a.qcomp = a.w.ncomp;
	if (!answer_local(&a, c->local, c->rotate))
		return DNS_FORWARD;
	if (a.w.overflow)
		ans_truncate(&a);
	a.w.max = limit;
	if (q->edns) {
		dns_wput_opt(&a.w, DNS_EDNS_PAYLOAD, 0, q->edns_do);
		a.ar++;
	}
	put_header(out, q, a.flags, a.rcode, 1, a.an, a.ns, a.ar);
	*outlen = a.w.len;
	c->stats->authoritative++;
	count_rcode(c->stats, a.rcode);
	if (a.flags & DNS_F_TC)
		c->stats->truncated++;
	return DNS_REPLY;
}

size_t dns_relay_reply(const struct dns_query *q, const uint8_t *msg, size_t len,
		       uint32_t age, size_t limit, uint8_t *out, size_t outcap)
{
	size_t ends[3] = { 0 }, p = DNS_HDR_LEN, nlen, qend;
	unsigned cnt[3], keep_ar;
	uint8_t name[DNS_NAME_MAX];
	uint16_t flags;
	struct dns_wbuf w;

	if (len < DNS_HDR_LEN || len > outcap || !q->has_q)
		return 0;
	if (dns_name_read(msg, len, &p, name, &nlen) < 0 || nlen != q->name_len ||
	    p != DNS_HDR_LEN + nlen || len - p < 4)
		return 0;
	qend = p + 4;
	p = qend;
	memcpy(out, msg, len);
	memcpy(out + DNS_HDR_LEN, q->name, q->name_len);    /* the client's case */
	for (int s = 0; s < 3; s++) {
		cnt[s] = dns_get16(msg + 6 + 2 * s);
		for (unsigned i = 0; i < cnt[s]; i++) {
			struct dns_rr rr;

			if (dns_rr_read(msg, len, &p, &rr) < 0)
				return 0;
			dns_put32(out + rr.ttl_off, rr.ttl > age ? rr.ttl - age : 0);
		}
		ends[s] = p;
	}
	if (limit > outcap)
		limit = outcap;
	if (q->edns)
		limit -= 11;
	len = ends[2];
	keep_ar = cnt[2];
	flags = dns_get16(msg + 2);
	if (len > limit) {
		/* drop additional records from the end, then give up: TC */
		p = ends[1];
		keep_ar = 0;
		for (unsigned i = 0; i < cnt[2]; i++) {
			struct dns_rr rr;
			size_t at = p;

			if (dns_rr_read(msg, ends[2], &p, &rr) < 0 || p > limit) {
				p = at;
				break;
			}
			keep_ar++;
		}
		len = p;
		if (ends[1] > limit) {
			len = qend;
			cnt[0] = cnt[1] = 0;
			keep_ar = 0;
			flags |= DNS_F_TC;
		}
	}
	/* AA off: the upstream may be the authority, berth is not (RFC 1035
	 * §4.1.1), and a cached copy is not even the upstream's answer */
	flags = (uint16_t)((flags & ~(DNS_F_RD | DNS_F_CD | DNS_F_AA)) | DNS_F_RA |
			   (q->flags & (DNS_F_RD | DNS_F_CD)));
	dns_put16(out, q->id);
	dns_put16(out + 2, flags);
	dns_put16(out + 6, (uint16_t)cnt[0]);
	dns_put16(out + 8, (uint16_t)cnt[1]);
	dns_put16(out + 10, (uint16_t)(keep_ar + (q->edns ? 1 : 0)));
	if (q->edns) {
		dns_wbuf_init(&w, out, outcap);
		w.len = len;
		dns_wput_opt(&w, DNS_EDNS_PAYLOAD, 0, q->edns_do);
		len = w.len;
	}
	return len;
}
