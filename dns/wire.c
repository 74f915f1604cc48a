/* wire.c - DNS message format: bounds-checked parsing and a builder with name
 * compression (RFC 1035 §4, RFC 6891 for OPT). */
#include "dns/dns_int.h"

#include <stdio.h>
#include <string.h>

/* More hops than labels a name can have means a malicious message; pointers
 * strictly backwards already rule out loops, this bounds the work. */
#define DNS_MAX_HOPS 128

int dns_name_read(const uint8_t *m, size_t len, size_t *off, uint8_t *out, size_t *outlen)
{
	size_t p = *off, n = 0, end = 0;
	unsigned hops = 0;
	bool jumped = false;

	for (;;) {
		uint8_t l;

		if (p >= len)
			return -1;
		l = m[p];
		if ((l & 0xc0) == 0xc0) {
			size_t target;

			if (p + 1 >= len || ++hops > DNS_MAX_HOPS)
				return -1;
			target = (size_t)(l & 0x3f) << 8 | m[p + 1];
			/* only backwards: no loops, no pointing into what follows */
			if (target >= p)
				return -1;
			if (!jumped)
				end = p + 2;
			jumped = true;
			p = target;
			continue;
		}
		if (l & 0xc0)       /* 01 and 10: extended/reserved label types */
			return -1;
		if (n + 1 + l > DNS_NAME_MAX || p + 1 + l > len)
			return -1;
		out[n++] = l;
		if (l == 0)
			break;
		memcpy(out + n, m + p + 1, l);
		n += l;
		p += 1 + (size_t)l;
	}
	*off = jumped ? end : p + 1;
	*outlen = n;
	return 0;
}

void dns_name_lower(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = src[i];
		dst[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
	}
}

const char *dns_name_str(const uint8_t *name, char *buf, size_t bufsz)
{
	size_t o = 0, i = 0;

	buf[0] = '\0';
	while (name[i] && o + 5 < bufsz) {
		uint8_t l = name[i++];

		for (uint8_t k = 0; k < l && o + 5 < bufsz; k++, i++) {
			uint8_t c = name[i];
			if (c == '.' || c == '\\')
				o += (size_t)snprintf(buf + o, bufsz - o, "\\%c", c);
			else if (c > 32 && c < 127)
				buf[o++] = (char)c;
			else
				o += (size_t)snprintf(buf + o, bufsz - o, "\\%03u", c);
		}
		if (o + 1 < bufsz)
			buf[o++] = '.';
	}
	if (o == 0 && bufsz > 1)
		buf[o++] = '.';
	buf[o < bufsz ? o : bufsz - 1] = '\0';
	return buf;
}

int dns_name_from_str(const char *s, uint8_t *out, size_t *outlen)
{
	size_t n = 0;

	if (!s)
		return -1;
	if (s[0] == '.' && s[1] == '\0')
		s++;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);

		if (l == 0 || l > DNS_LABEL_MAX || n + 1 + l + 1 > DNS_NAME_MAX)
			return -1;
		out[n++] = (uint8_t)l;
		memcpy(out + n, s, l);
		n += l;
		s += l;
		if (*s == '.')
			s++;
	}
	out[n++] = 0;
	*outlen = n;
	return 0;
}

int dns_rr_read(const uint8_t *m, size_t len, size_t *off, struct dns_rr *rr)
{
	uint8_t name[DNS_NAME_MAX];
	size_t nlen, p = *off;

	rr->off = p;
	if (dns_name_read(m, len, &p, name, &nlen) < 0 || len - p < 10)
		return -1;
	rr->type = dns_get16(m + p);
	rr->class = dns_get16(m + p + 2);
	rr->ttl_off = p + 4;
	rr->ttl = dns_get32(m + p + 4);
	rr->rdlen = dns_get16(m + p + 8);
	rr->rdata = p + 10;
	if (rr->rdlen > len - rr->rdata)
		return -1;
	rr->end = rr->rdata + rr->rdlen;
	*off = rr->end;
	return 0;
}

int dns_query_parse(const uint8_t *m, size_t len, struct dns_query *q)
{
	unsigned qd, an, ns, ar;
	size_t p = DNS_HDR_LEN;
	bool opt_seen = false;

	memset(q, 0, offsetof(struct dns_query, name));
	if (len < DNS_HDR_LEN)
		return -1;
	q->id = dns_get16(m);
	q->flags = dns_get16(m + 2);
	if (q->flags & DNS_F_QR)
		return -1;          /* never answer an answer: no reflection loops */
	qd = dns_get16(m + 4);
	an = dns_get16(m + 6);
	ns = dns_get16(m + 8);
	ar = dns_get16(m + 10);
	if (qd == 1) {
		if (dns_name_read(m, len, &p, q->name, &q->name_len) < 0 || len - p < 4)
			return DNS_R_FORMERR;
		q->qtype = dns_get16(m + p);
		q->qclass = dns_get16(m + p + 2);
		p += 4;
		q->qend = p;
		dns_name_lower(q->lname, q->name, q->name_len);
		q->has_q = true;
	}
	if (DNS_OPCODE(q->flags) != 0)
		return DNS_R_NOTIMP;
	if (qd != 1)
		return DNS_R_FORMERR;
	/* A query has no answer or authority records, but tolerate them as long
	 * as they are well-formed; then look for OPT among the additional ones. */
	for (unsigned i = 0; i < an + ns + ar; i++) {
		struct dns_rr rr;

		if (dns_rr_read(m, len, &p, &rr) < 0)
			return DNS_R_FORMERR;
		if (rr.type != DNS_T_OPT)
			continue;
		/* OPT: only in additional, only once, owner must be the root */
		if (i < an + ns || opt_seen || m[rr.off] != 0)
			return DNS_R_FORMERR;
		opt_seen = true;
		q->edns = true;
		q->edns_size = rr.class;
		q->edns_version = (uint8_t)(rr.ttl >> 16);
		q->edns_do = rr.ttl & 0x8000;
	}
	if (p != len)
		return DNS_R_FORMERR; /* trailing garbage: counts lie */
	if (q->edns && q->edns_version != 0)
		return DNS_R_BADVERS;
	return 0;
}

void dns_wbuf_init(struct dns_wbuf *w, uint8_t *b, size_t max)
{
	w->b = b;
	w->len = 0;
	w->max = max;
	w->overflow = false;
	w->ncomp = 0;
}

void dns_wput(struct dns_wbuf *w, const void *p, size_t n)
{
	if (w->overflow || n > w->max - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

void dns_wput16(struct dns_wbuf *w, uint16_t v)
{
	uint8_t b[2];

	dns_put16(b, v);
	dns_wput(w, b, 2);
}

void dns_wput32(struct dns_wbuf *w, uint32_t v)
{
	uint8_t b[4];

	dns_put32(b, v);
	dns_wput(w, b, 4);
}

/* Does the name at off in our own message equal name (case-insensitive)?
 * Our messages hold only names we wrote, so their pointers go backwards. */
static bool name_at_equals(const struct dns_wbuf *w, size_t off, const uint8_t *name)
{
	size_t i = 0;
	unsigned hops = 0;

	for (;;) {
		uint8_t l;

		if (off >= w->len)
			return false;
		l = w->b[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 1 >= w->len || ++hops > DNS_MAX_HOPS)
				return false;
			off = (size_t)(l & 0x3f) << 8 | w->b[off + 1];
			continue;
		}
		if (l != name[i] || off + 1 + l > w->len)
			return false;
		if (l == 0)
			return true;
		for (uint8_t k = 1; k <= l; k++) {
			uint8_t a = w->b[off + k], b = name[i + k];
			if (a >= 'A' && a <= 'Z')
				a += 32;
			if (b >= 'A' && b <= 'Z')
				b += 32;
			if (a != b)
				return false;
		}
		off += 1 + (size_t)l;
		i += 1 + (size_t)l;
	}
}

void dns_wput_name(struct dns_wbuf *w, const uint8_t *name, size_t len)
{
	size_t i = 0;

	(void)len;
	while (name[i]) {
		for (unsigned c = 0; c < w->ncomp; c++) {
			if (name_at_equals(w, w->comp[c], name + i)) {
				dns_wput16(w, (uint16_t)(0xc000 | w->comp[c]));
				return;
			}
		}
		if (w->ncomp < DNS_COMP_MAX && w->len < 0x3fff && !w->overflow)
			w->comp[w->ncomp++] = (uint16_t)w->len;
		dns_wput(w, name + i, 1 + (size_t)name[i]);
		i += 1 + (size_t)name[i];
	}
	dns_wput(w, "", 1);
}

size_t dns_rr_begin(struct dns_wbuf *w, const uint8_t *name, size_t nlen, uint16_t type,
		    uint32_t ttl)
{
	size_t at;

	dns_wput_name(w, name, nlen);
	dns_wput16(w, type);
	dns_wput16(w, DNS_C_IN);
	dns_wput32(w, ttl);
	at = w->len;
	dns_wput16(w, 0);
	return at;
}

void dns_rr_end(struct dns_wbuf *w, size_t rdlen_off)
{
	if (w->overflow)
		return;
	dns_put16(w->b + rdlen_off, (uint16_t)(w->len - rdlen_off - 2));
}

void dns_wput_opt(struct dns_wbuf *w, uint16_t payload, uint8_t ext_rcode, bool do_bit)
{
	uint8_t o[11] = { 0, 0, DNS_T_OPT, 0, 0, 0, 0, 0, 0, 0, 0 };

	dns_put16(o + 3, payload);
	o[5] = ext_rcode;
	o[7] = do_bit ? 0x80 : 0;
	dns_wput(w, o, sizeof(o));
}
