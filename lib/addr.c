/* addr.c - IPv4/IPv6 addresses, prefixes and ranges: parse, format, contain, iterate. */
#include "lib/lib.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static unsigned family_bytes(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

int ip_parse(const char *s, struct ip_addr *a, struct err *e)
{
	memset(a, 0, sizeof(*a));
	if (!s || !*s)
		return err_set(e, EINVAL, "empty address");
	if (strchr(s, ':')) {
		if (inet_pton(AF_INET6, s, a->b) != 1)
			return err_set(e, EINVAL, "'%s' is not a valid IPv6 address", s);
		a->family = AF_INET6;
		return 0;
	}
	if (inet_pton(AF_INET, s, a->b) != 1)
		return err_set(e, EINVAL, "'%s' is not a valid IPv4 address", s);
	a->family = AF_INET;
	return 0;
}

const char *ip_format(const struct ip_addr *a, char *buf)
{
	if (!inet_ntop(a->family == AF_INET6 ? AF_INET6 : AF_INET, a->b, buf, IP_STRLEN))
		snprintf(buf, IP_STRLEN, "?");
	return buf;
}

void ip_from_v4(struct ip_addr *a, uint32_t host_order)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->b[0] = host_order >> 24;
	a->b[1] = host_order >> 16;
	a->b[2] = host_order >> 8;
	a->b[3] = host_order;
}

void ip_from_bytes(struct ip_addr *a, int family, const void *bytes)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	memcpy(a->b, bytes, family_bytes(family));
}

int ip_cmp(const struct ip_addr *a, const struct ip_addr *b)
{
	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	return memcmp(a->b, b->b, family_bytes(a->family));
}

bool ip_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	return ip_cmp(a, b) == 0;
}

bool ip_is_zero(const struct ip_addr *a)
{
	for (unsigned i = 0; i < family_bytes(a->family); i++)
		if (a->b[i])
			return false;
	return true;
}

int ip_add(struct ip_addr *a, uint64_t n)
{
	struct ip_addr r = *a;
	unsigned carry = 0;

	for (int i = (int)family_bytes(a->family) - 1; i >= 0; i--) {
		unsigned sum = r.b[i] + (unsigned)(n & 0xff) + carry;
		r.b[i] = (uint8_t)sum;
		carry = sum >> 8;
		n >>= 8;
	}
	if (carry || n)
		return -ERANGE;
	*a = r;
	return 0;
}

uint64_t ip_distance(const struct ip_addr *first, const struct ip_addr *last)
{
	uint8_t d[16];
	unsigned nb = family_bytes(first->family), borrow = 0;
	uint64_t v = 0;

	for (int i = (int)nb - 1; i >= 0; i--) {
		int x = (int)last->b[i] - (int)first->b[i] - (int)borrow;
		borrow = x < 0;
		d[i] = (uint8_t)(x + (borrow ? 256 : 0));
	}
	for (unsigned i = 0; i + 8 < nb; i++)
		if (d[i])
			return UINT64_MAX;
	for (unsigned i = nb > 8 ? nb - 8 : 0; i < nb; i++)
		v = v << 8 | d[i];
	return v;
}

/* Clear (ones == false) or set (ones == true) the bits of a after the
 * first len: the network address or the last address of the prefix. */
static void ip_mask(struct ip_addr *a, unsigned len, bool ones)
{
	for (unsigned i = 0; i < family_bytes(a->family); i++) {
		unsigned bit = i * 8;
		uint8_t keep = bit >= len ? 0 : bit + 8 <= len ? 0xff : (uint8_t)(0xff << (8 - (len - bit)));
		a->b[i] = ones ? (a->b[i] | (uint8_t)~keep) : (a->b[i] & keep);
	}
}

static int parse_prefix(const char *s, struct ip_addr *addr, struct ip_prefix *p,
			bool strict, struct err *e)
{
	char buf[IP_PREFIX_STRLEN + 8], nb[IP_STRLEN];
	const char *slash;
	unsigned len = 0;
	size_t n;

	if (!s || !*s)
		return err_set(e, EINVAL, "empty prefix");
	slash = strchr(s, '/');
	if (!slash)
		return err_set(e, EINVAL, "'%s' has no prefix length (expected ADDRESS/LENGTH, e.g. 10.88.0.0/16)", s);
	n = (size_t)(slash - s);
	if (n >= sizeof(buf))
		return err_set(e, EINVAL, "'%s' is not a valid prefix", s);
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (ip_parse(buf, addr, e) < 0)
		return -EINVAL;
	if (!slash[1] || strlen(slash + 1) > 3)
		goto bad_len;
	for (const char *c = slash + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			goto bad_len;
		len = len * 10 + (unsigned)(*c - '0');
	}
	if (len > ip_bits(addr))
		goto bad_len;
	p->addr = *addr;
	p->len = (uint8_t)len;
	ip_mask(&p->addr, len, false);
	if (strict && !ip_equal(&p->addr, addr))
		return err_set(e, EINVAL, "%s: host bits set (did you mean %s/%u?)", s,
			       ip_format(&p->addr, nb), len);
	return 0;
bad_len:
	return err_set(e, EINVAL, "'%s': prefix length must be a number from 0 to %u", s,
		       ip_bits(addr));
}

int ip_prefix_parse(const char *s, struct ip_prefix *p, struct err *e)
{
	struct ip_addr a;

	return parse_prefix(s, &a, p, true, e);
}

int ip_prefix_parse_host(const char *s, struct ip_addr *addr, struct ip_prefix *p,
			 struct err *e)
{
	return parse_prefix(s, addr, p, false, e);
}

const char *ip_prefix_format(const struct ip_prefix *p, char *buf)
{
	char a[IP_STRLEN];

	snprintf(buf, IP_PREFIX_STRLEN, "%s/%u", ip_format(&p->addr, a), p->len);
	return buf;
}

bool ip_prefix_contains(const struct ip_prefix *p, const struct ip_addr *a)
{
	struct ip_addr m = *a;

	if (a->family != p->addr.family)
		return false;
	ip_mask(&m, p->len, false);
	return ip_equal(&m, &p->addr);
}

bool ip_prefix_contains_prefix(const struct ip_prefix *outer, const struct ip_prefix *inner)
{
	return inner->len >= outer->len && ip_prefix_contains(outer, &inner->addr);
}

void ip_prefix_first(const struct ip_prefix *p, struct ip_addr *a)
{
	*a = p->addr;
	ip_mask(a, p->len, false);
}

void ip_prefix_last(const struct ip_prefix *p, struct ip_addr *a)
{
	*a = p->addr;
	ip_mask(a, p->len, true);
}

int ip_range_parse(const char *s, struct ip_range *r, struct err *e)
{
	char buf[2 * IP_STRLEN + 2];
	const char *dash;
	size_t n;

	if (!s || !*s)
		return err_set(e, EINVAL, "empty range");
	dash = strchr(s, '-');
	if (!dash)
		return err_set(e, EINVAL, "'%s' is not a range (expected FIRST-LAST, e.g. 10.88.1.0-10.88.1.255)", s);
	n = (size_t)(dash - s);
	if (n >= sizeof(buf) || strlen(dash + 1) >= sizeof(buf))
		return err_set(e, EINVAL, "'%s' is not a valid range", s);
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (ip_parse(buf, &r->first, e) < 0 || ip_parse(dash + 1, &r->last, e) < 0)
		return err_wrap(e, "range '%s'", s);
	if (r->first.family != r->last.family)
		return err_set(e, EINVAL, "range '%s': both ends must be of the same address family", s);
	if (ip_cmp(&r->first, &r->last) > 0)
		return err_set(e, EINVAL, "range '%s': first address is after the last", s);
	return 0;
}

const char *ip_range_format(const struct ip_range *r, char *buf)
{
	char a[IP_STRLEN], b[IP_STRLEN];

	snprintf(buf, 2 * IP_STRLEN + 1, "%s-%s", ip_format(&r->first, a), ip_format(&r->last, b));
	return buf;
}

bool ip_range_contains(const struct ip_range *r, const struct ip_addr *a)
{
	return a->family == r->first.family && ip_cmp(a, &r->first) >= 0 &&
	       ip_cmp(a, &r->last) <= 0;
}

uint64_t ip_range_size(const struct ip_range *r)
{
	uint64_t d = ip_distance(&r->first, &r->last);

	return d == UINT64_MAX ? d : d + 1;
}

bool ip_range_next(const struct ip_range *r, struct ip_addr *a)
{
	if (ip_cmp(a, &r->last) >= 0)
		return false;
	return ip_add(a, 1) == 0;
}

const char *ip_proto_name(int proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" :
	       proto == IPPROTO_SCTP ? "sctp" : "?";
}

static unsigned hexdigit(char c)
{
	return isdigit((unsigned char)c) ? (unsigned)(c - '0') :
	       (unsigned)(tolower((unsigned char)c) - 'a' + 10);
}

int mac_parse(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++, s += 3) {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
		    s[2] != (i < 5 ? ':' : '\0'))
			return -1;
		mac[i] = (uint8_t)(hexdigit(s[0]) << 4 | hexdigit(s[1]));
	}
	return 0;
}

const char *mac_format(const uint8_t m[6], char *buf)
{
	snprintf(buf, MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
		 m[5]);
	return buf;
}
