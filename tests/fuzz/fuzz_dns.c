/* fuzz_dns.c - libFuzzer target: the bytes as a query through the whole query
 * path (parse, scope, lookup, answer, truncation, cache, relay), and as an
 * upstream answer through the forwarder's checks, the cache and the relay. */
#include "dns/dns_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What berth relays or serves from its cache never claims authority. */
static void relayed(const uint8_t *out, size_t len)
{
	if (len >= DNS_HDR_LEN && (dns_get16(out + 2) & DNS_F_AA))
		abort();
}

static struct dns_records *rec;
static struct dns_cache *cache;
static struct dns_stats st;

static void setup(void)
{
	struct ip_prefix p[2];
	struct ip_addr a[2];
	char name[16];

	rec = dns_records_new("berth.internal", 10, NULL);
	ip_prefix_parse("10.88.0.0/16", &p[0], NULL);
	ip_prefix_parse("fd88::/64", &p[1], NULL);
	dns_records_add_network(rec, "default", p, 2, NULL);
	ip_prefix_parse("10.89.0.0/20", &p[0], NULL);
	dns_records_add_network(rec, "back", p, 1, NULL);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		ip_from_v4(&a[0], 0x0a580100u + (uint32_t)i);
		ip_parse("fd88::5", &a[1], NULL);
		a[1].b[15] = (uint8_t)i;
		dns_records_add_container(rec, name, i % 3 ? "default" : "back", a, 2,
					  i % 2 ? "web" : NULL, NULL);
	}
	dns_records_add_srv(rec, "web", 80, "tcp", NULL);
	dns_records_add_srv(rec, "c1", 53, "udp", NULL);
	/* services with virtual IPs: two VIPs outside the subnets (their PTR is
	 * answered outside every reverse zone), one VIP inside back's subnet,
	 * and one set twice and removed, so that the set was changed in place */
	{
		static const struct dns_ctr_ports ports[] = { { 80, 80, "tcp" }, { 53, 53, "udp" },
							      { 9000, 9002, "sctp" } };
		struct dns_service s = { .name = "websvc", .network = "default", .nvips = 2,
					 .ports = ports, .nports = ARRAY_SIZE(ports) };

		ip_parse("10.96.0.10", &s.vips[0], NULL);
		ip_parse("fd96::10", &s.vips[1], NULL);
		dns_records_set_service(rec, &s, NULL);
		s.name = "dbsvc";
		s.network = "back";
		s.nvips = 1;
		s.nports = 1;
		ip_parse("10.89.15.1", &s.vips[0], NULL);
		dns_records_set_service(rec, &s, NULL);
		s.name = "gone";
		dns_records_set_service(rec, &s, NULL);
		ip_parse("10.96.0.99", &s.vips[0], NULL);
		dns_records_set_service(rec, &s, NULL);
		dns_records_remove_service(rec, "gone");
	}
	cache = dns_cache_new(64);
}

/* data as an upstream answer to q (sent with the answer's own ID) */
static void upstream(const struct dns_query *q, const uint8_t *data, size_t size, uint64_t now)
{
	static uint8_t m[DNS_MSG_MAX], out[DNS_MSG_MAX];
	const uint8_t *cm;
	size_t clen;
	uint32_t age;
	int r;

	if (size < 2 || size > sizeof(m))
		return;
	memcpy(m, data, size);
	r = dns_upstream_check(q, dns_get16(data), m, size);
	if (r <= 0)
		return;
	dns_cache_put(cache, q, m, (size_t)r, dns_cache_ttl(m, (size_t)r) % 20, now);
	relayed(out, dns_relay_reply(q, m, (size_t)r, 3, 512, out, sizeof(out)));
	relayed(out, dns_relay_reply(q, m, (size_t)r, 0, 40, out, sizeof(out)));
	cm = dns_cache_get(cache, q, now + 1500, &clen, &age);
	if (cm)
		relayed(out, dns_relay_reply(q, cm, clen, age, DNS_MSG_MAX, out, sizeof(out)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[DNS_MSG_MAX];
	static uint64_t now = 1000;
	static uint8_t copy[DNS_MSG_MAX];
	static const char *srcs[] = { "127.0.0.1", "10.88.1.1", "10.89.0.5", "10.88.9.9", "fd88::3" };
	struct dns_query q, fq;
	struct ip_addr src, local;
	size_t olen;
	uint8_t qb[600];

	if (!rec)
		setup();
	now += 100;
	ip_parse(srcs[size % ARRAY_SIZE(srcs)], &src, NULL);
	ip_parse("10.88.0.1", &local, NULL);
	for (int tcp = 0; tcp < 2; tcp++) {
		struct dns_ctx c = { .rec = rec, .src = &src, .local = &local, .tcp = tcp,
				     .rotate = (uint32_t)size, .stats = &st };

		if (dns_answer(&c, data, size, &q, out, sizeof(out), &olen) == DNS_FORWARD) {
			const uint8_t *cm;
			size_t clen;
			uint32_t age;

			dns_upstream_query(&q, 7, qb, sizeof(qb));
			cm = dns_cache_get(cache, &q, now, &clen, &age);
			if (cm)
				relayed(out, dns_relay_reply(&q, cm, clen, age,
							     dns_reply_limit(&q, tcp), out,
							     sizeof(out)));
		}
	}
	/* the same bytes as an answer: to the query they hold, and to a fixed one */
	if (size >= DNS_HDR_LEN && size <= sizeof(copy)) {
		memcpy(copy, data, size);
		copy[2] &= 0x7f;
		if (dns_query_parse(copy, size, &fq) >= 0 && fq.has_q) {
			copy[2] |= 0x80;
			upstream(&fq, copy, size, now);
		}
	}
	{
		static const uint8_t fixed[] = { 0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w',
						 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o',
						 'm', 0, 0, 1, 0, 1 };
		if (dns_query_parse(fixed, sizeof(fixed), &fq) == 0)
			upstream(&fq, data, size, now);
	}
	return 0;
}
