/* test_addr.c - lib/: address parse/format, prefixes, containment, ranges, errors. */
#include "lib/lib.h"
#include "t.h"

#include <errno.h>
#include <netinet/in.h>

static const char *fmt(const char *in)
{
	static char buf[IP_STRLEN];
	struct ip_addr a;

	if (ip_parse(in, &a, NULL) < 0)
		return "(error)";
	return ip_format(&a, buf);
}

static const char *parse_error(int (*fn)(const char *, void *, struct err *), const char *in)
{
	static struct err e;
	unsigned char out[64];

	err_clear(&e);
	if (fn(in, out, &e) == 0)
		return "(accepted)";
	return e.msg;
}

static int p_addr(const char *s, void *o, struct err *e) { return ip_parse(s, o, e); }
static int p_prefix(const char *s, void *o, struct err *e) { return ip_prefix_parse(s, o, e); }
static int p_range(const char *s, void *o, struct err *e) { return ip_range_parse(s, o, e); }

static void test_parse_format(void)
{
	T_STREQ(fmt("10.88.0.1"), "10.88.0.1", "IPv4 round trip");
	T_STREQ(fmt("fd88:0:0:0:0:0:0:1"), "fd88::1", "IPv6 is formatted canonically");
	T_STREQ(fmt("FD88::A"), "fd88::a", "IPv6 hex is case-insensitive, printed lower case");
	T_STREQ(fmt("::ffff:10.0.0.1"), "::ffff:10.0.0.1", "IPv4-mapped IPv6 stays IPv6");
	T_STREQ(parse_error(p_addr, "10.88.0.256"), "'10.88.0.256' is not a valid IPv4 address",
		"octet over 255 rejected with the reason");
	T_STREQ(parse_error(p_addr, "10.88.0"), "'10.88.0' is not a valid IPv4 address",
		"three-part IPv4 rejected");
	T_STREQ(parse_error(p_addr, "fd88:::1"), "'fd88:::1' is not a valid IPv6 address",
		"bad IPv6 rejected");
	T_STREQ(parse_error(p_addr, ""), "empty address", "empty address rejected");
	T_STREQ(parse_error(p_addr, " 10.0.0.1"), "' 10.0.0.1' is not a valid IPv4 address",
		"leading space rejected");
}

static void test_prefix(void)
{
	struct ip_prefix p, q;
	struct ip_addr a, host;
	char buf[IP_PREFIX_STRLEN];

	T_OK(ip_prefix_parse("10.88.0.0/16", &p, NULL) == 0, "10.88.0.0/16 parses");
	T_STREQ(ip_prefix_format(&p, buf), "10.88.0.0/16", "prefix round trip");
	ip_parse("10.88.255.254", &a, NULL);
	T_OK(ip_prefix_contains(&p, &a), "10.88.255.254 is inside 10.88.0.0/16");
	ip_parse("10.89.0.0", &a, NULL);
	T_OK(!ip_prefix_contains(&p, &a), "10.89.0.0 is outside 10.88.0.0/16");
	ip_parse("fd88::1", &a, NULL);
	T_OK(!ip_prefix_contains(&p, &a), "an IPv6 address is never inside an IPv4 prefix");
	ip_prefix_last(&p, &a);
	T_STREQ(ip_format(&a, buf), "10.88.255.255", "last address of /16 is the broadcast");
	ip_prefix_first(&p, &a);
	T_STREQ(ip_format(&a, buf), "10.88.0.0", "first address of /16 is the network");

	T_OK(ip_prefix_parse("10.88.4.0/22", &q, NULL) == 0 && ip_prefix_contains_prefix(&p, &q),
	     "10.88.4.0/22 lies inside 10.88.0.0/16");
	T_OK(!ip_prefix_contains_prefix(&q, &p), "10.88.0.0/16 does not lie inside 10.88.4.0/22");
	T_OK(ip_prefix_parse("0.0.0.0/0", &q, NULL) == 0 && ip_prefix_contains_prefix(&q, &p),
	     "0.0.0.0/0 contains everything IPv4");

	T_OK(ip_prefix_parse("fd88::/64", &p, NULL) == 0, "fd88::/64 parses");
	ip_prefix_last(&p, &a);
	T_STREQ(ip_format(&a, buf), "fd88::ffff:ffff:ffff:ffff", "last address of an IPv6 /64");
	ip_parse("fd88::1:2:3:4", &a, NULL);
	T_OK(ip_prefix_contains(&p, &a), "fd88::1:2:3:4 is inside fd88::/64");
	ip_parse("fd88:0:0:1::", &a, NULL);
	T_OK(!ip_prefix_contains(&p, &a), "fd88:0:0:1:: is outside fd88::/64");
	T_OK(ip_prefix_parse("fd88::/0", &p, NULL) < 0, "::/0 with host bits set is rejected");

	T_OK(ip_prefix_parse_host("10.88.0.1/16", &host, &p, NULL) == 0 &&
	     ip_equal(&host, &(struct ip_addr){ .family = AF_INET, .b = { 10, 88, 0, 1 } }) &&
	     p.len == 16 && p.addr.b[3] == 0,
	     "an interface address A/LEN gives the host and its network");

	T_STREQ(parse_error(p_prefix, "10.88.0.1/16"), "10.88.0.1/16: host bits set (did you mean 10.88.0.0/16?)",
		"host bits set: the error names the intended prefix");
	T_STREQ(parse_error(p_prefix, "10.88.0.0/33"), "'10.88.0.0/33': prefix length must be a number from 0 to 32",
		"IPv4 prefix length over 32 rejected");
	T_STREQ(parse_error(p_prefix, "fd88::/129"), "'fd88::/129': prefix length must be a number from 0 to 128",
		"IPv6 prefix length over 128 rejected");
	T_STREQ(parse_error(p_prefix, "10.88.0.0/-1"), "'10.88.0.0/-1': prefix length must be a number from 0 to 32",
		"negative prefix length rejected");
	T_STREQ(parse_error(p_prefix, "10.88.0.0/"), "'10.88.0.0/': prefix length must be a number from 0 to 32",
		"missing prefix length after the slash rejected");
	T_STREQ(parse_error(p_prefix, "10.88.0.0"), "'10.88.0.0' has no prefix length (expected ADDRESS/LENGTH, e.g. 10.88.0.0/16)",
		"missing slash rejected");
	T_STREQ(parse_error(p_prefix, "10.88.0.x/16"), "'10.88.0.x' is not a valid IPv4 address",
		"bad address in a prefix rejected");
}

static void test_range(void)
{
	struct ip_range r;
	struct ip_addr a;
	char buf[2 * IP_STRLEN + 1];
	int n = 0;

	T_OK(ip_range_parse("10.88.1.0-10.88.1.10", &r, NULL) == 0, "IPv4 range parses");
	T_STREQ(ip_range_format(&r, buf), "10.88.1.0-10.88.1.10", "range round trip");
	T_EQ(ip_range_size(&r), 11, "10.88.1.0-10.88.1.10 holds 11 addresses");
	a = r.first;
	do
		n++;
	while (ip_range_next(&r, &a));
	T_EQ(n, 11, "iteration visits every address exactly once");
	T_OK(ip_equal(&a, &r.last), "iteration ends on the last address");

	T_OK(ip_range_parse("10.0.0.255-10.0.1.1", &r, NULL) == 0, "range over an octet boundary");
	a = r.first;
	ip_range_next(&r, &a);
	T_STREQ(ip_format(&a, buf), "10.0.1.0", "iteration carries into the next octet");

	T_OK(ip_range_parse("255.255.255.254-255.255.255.255", &r, NULL) == 0, "range at the top of IPv4");
	a = r.first;
	n = 0;
	do
		n++;
	while (ip_range_next(&r, &a));
	T_EQ(n, 2, "iteration at the top of the address space stops without wrapping");
	T_OK(ip_add(&a, 1) == -ERANGE, "255.255.255.255 + 1 overflows");

	T_OK(ip_range_parse("fd88::-fd88::ffff:ffff:ffff:ffff", &r, NULL) == 0, "IPv6 /64 as a range");
	T_EQ(ip_range_size(&r), UINT64_MAX, "a /64 has 2^64 addresses: the size saturates");
	T_OK(ip_range_parse("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &r, NULL) == 0 &&
	     ip_range_size(&r) == UINT64_MAX, "the whole IPv6 space saturates too");
	ip_parse("fd88::ffff:ffff:ffff:ffff", &a, NULL);
	T_OK(ip_add(&a, 1) == 0, "IPv6 addition carries across 64 bits");
	T_STREQ(ip_format(&a, buf), "fd88:0:0:1::", "fd88::ffff:ffff:ffff:ffff + 1");
	ip_parse("10.88.1.5", &a, NULL);
	T_OK(ip_range_parse("10.88.1.0-10.88.1.10", &r, NULL) == 0 && ip_range_contains(&r, &a),
	     "10.88.1.5 is in 10.88.1.0-10.88.1.10");
	ip_parse("10.88.1.11", &a, NULL);
	T_OK(!ip_range_contains(&r, &a), "10.88.1.11 is not");

	T_STREQ(parse_error(p_range, "10.88.1.10-10.88.1.0"), "range '10.88.1.10-10.88.1.0': first address is after the last",
		"reversed range rejected");
	T_STREQ(parse_error(p_range, "10.88.1.0-fd88::1"), "range '10.88.1.0-fd88::1': both ends must be of the same address family",
		"mixed-family range rejected");
	T_STREQ(parse_error(p_range, "10.88.1.0"), "'10.88.1.0' is not a range (expected FIRST-LAST, e.g. 10.88.1.0-10.88.1.255)",
		"a single address is not a range");
	T_STREQ(parse_error(p_range, "10.88.1.0-10.88.1.300"), "range '10.88.1.0-10.88.1.300': '10.88.1.300' is not a valid IPv4 address",
		"bad end address rejected with the reason");
}

static void test_errors(void)
{
	struct err e;
	char nb[16];

	err_clear(&e);
	T_EQ(err_sys(&e, EEXIST, "create veth %s for container %s", "bh-web/eth0", "web"), -EEXIST,
	     "err_sys returns -errno");
	T_STREQ(e.msg, "create veth bh-web/eth0 for container web: File exists (EEXIST)",
		"a kernel error carries the call, the object, strerror and the errno name");
	err_wrap(&e, "attach %s", "web");
	T_STREQ(e.msg, "attach web: create veth bh-web/eth0 for container web: File exists (EEXIST)",
		"err_wrap prefixes context and keeps the cause");
	T_EQ(e.code, EEXIST, "err_wrap keeps the code");
	T_STREQ(errno_name(4095, nb), "errno 4095", "unknown errno printed by number");
	T_EQ(err_set(NULL, EINVAL, "x"), -EINVAL, "a NULL err still returns the code");
}

static void test_mac(void)
{
	uint8_t m[6];
	char b[MAC_STRLEN];

	T_OK(mac_parse("02:42:0A:58:00:ff", m) == 0, "a MAC in either case");
	T_STREQ(mac_format(m, b), "02:42:0a:58:00:ff", "formatted lower case");
	T_OK(mac_parse("02:42:0a:58:00", m) < 0, "five bytes are refused");
	T_OK(mac_parse("02:42:0a:58:00:ff:", m) < 0, "a trailing colon is refused");
	T_OK(mac_parse("02-42-0a-58-00-ff", m) < 0, "dashes are refused");
	T_OK(mac_parse("0g:42:0a:58:00:ff", m) < 0, "a non-hex digit is refused");
	T_OK(mac_parse("", m) < 0, "empty is refused");
}

int main(void)
{
	test_mac();
	test_parse_format();
	test_prefix();
	test_range();
	test_errors();
	return t_done();
}
