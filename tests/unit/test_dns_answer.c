/* test_dns_answer.c - dns/ query path without sockets: authoritative answers,
 * scoping, truncation, upstream answer checks, relaying and the cache. */
#include "dns/dns_int.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

static struct dns_stats st;

static size_t mkquery(uint8_t *b, const char *name, uint16_t t, int edns_size)
{
	struct dns_wbuf w;
	uint8_t n[DNS_NAME_MAX];
	size_t nl;

	dns_name_from_str(name, n, &nl);
	dns_wbuf_init(&w, b, 512);
	dns_wput16(&w, 0xbeef);
	dns_wput16(&w, DNS_F_RD);
	dns_wput16(&w, 1);
	dns_wput16(&w, 0);
	dns_wput16(&w, 0);
	dns_wput16(&w, edns_size ? 1 : 0);
	dns_wput(&w, n, nl);
	dns_wput16(&w, t);
	dns_wput16(&w, DNS_C_IN);
	if (edns_size)
		dns_wput_opt(&w, (uint16_t)edns_size, 0, false);
	return w.len;
}

/* A parsed reply: rcode, flags, counts and the answer records as text. */
struct reply {
	int rcode;
	uint16_t flags;
	unsigned an, ns, ar;
	char ans[64][80];
	char auth_type[16];
};

static int parse_reply(const uint8_t *m, size_t len, struct reply *r)
{
	size_t p = DNS_HDR_LEN;
	uint8_t n[DNS_NAME_MAX];
	size_t nl;

	memset(r, 0, sizeof(*r));
	if (len < DNS_HDR_LEN)
		return -1;
	r->flags = dns_get16(m + 2);
	r->rcode = m[3] & 0xf;
	r->an = dns_get16(m + 6);
	r->ns = dns_get16(m + 8);
	r->ar = dns_get16(m + 10);
	if (dns_get16(m + 4) && (dns_name_read(m, len, &p, n, &nl) < 0 || (p += 4) > len))
		return -1;
	for (unsigned i = 0; i < r->an + r->ns + r->ar; i++) {
		struct dns_rr rr;
		char ip[IP_STRLEN], tn[300];
		size_t q;

		if (dns_rr_read(m, len, &p, &rr) < 0)
			return -1;
		if (i >= r->an) {
			if (i == r->an)
				snprintf(r->auth_type, sizeof(r->auth_type), "%u", rr.type);
			continue;
		}
		if (i >= 64)
			continue;
		switch (rr.type) {
		case DNS_T_A:
			snprintf(r->ans[i], 80, "A %s", inet_ntop(AF_INET, m + rr.rdata, ip, sizeof(ip)));
			break;
		case DNS_T_AAAA:
			snprintf(r->ans[i], 80, "AAAA %s", inet_ntop(AF_INET6, m + rr.rdata, ip, sizeof(ip)));
			break;
		case DNS_T_PTR:
			q = rr.rdata;
			dns_name_read(m, len, &q, n, &nl);
			snprintf(r->ans[i], 80, "PTR %s", dns_name_str(n, tn, sizeof(tn)));
			break;
		case DNS_T_SRV:
			q = rr.rdata + 6;
			dns_name_read(m, len, &q, n, &nl);
			snprintf(r->ans[i], 80, "SRV %u %s", dns_get16(m + rr.rdata + 4),
				 dns_name_str(n, tn, sizeof(tn)));
			break;
		default:
			snprintf(r->ans[i], 80, "type %u", rr.type);
		}
	}
	return p == len ? 0 : -1;
}

static struct dns_records *build(void)
{
	struct dns_records *r = dns_records_new("berth.internal", 10, NULL);
	struct ip_prefix p[2];
	struct ip_addr a[2];
	char name[32];

	ip_prefix_parse("10.88.0.0/16", &p[0], NULL);
	ip_prefix_parse("fd88::/64", &p[1], NULL);
	dns_records_add_network(r, "default", p, 2, NULL);
	ip_prefix_parse("10.89.0.0/16", &p[0], NULL);
	dns_records_add_network(r, "back", p, 1, NULL);
	ip_parse("10.88.1.1", &a[0], NULL);
	ip_parse("fd88::11", &a[1], NULL);
	dns_records_add_container(r, "web1", "default", a, 2, "web", NULL);
	ip_parse("10.88.1.2", &a[0], NULL);
	dns_records_add_container(r, "web2", "default", a, 1, "web", NULL);
	ip_parse("10.89.1.5", &a[0], NULL);
	dns_records_add_container(r, "db", "back", a, 1, NULL, NULL);
	ip_parse("10.88.1.9", &a[0], NULL);
	dns_records_add_container(r, "api", "default", a, 1, NULL, NULL);
	ip_parse("10.89.1.9", &a[0], NULL);
	dns_records_add_container(r, "api", "back", a, 1, NULL, NULL);
	dns_records_add_srv(r, "web", 80, "tcp", NULL);
	for (int i = 1; i <= 40; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		ip_from_v4(&a[0], 0x0a580500u + (uint32_t)i);
		dns_records_add_container(r, name, "default", a, 1, "many", NULL);
	}
	return r;
}

/* What an upstream sends back for q: an A record (ttl a_ttl, 0: none), an
 * SOA in authority (ttl soa_ttl, minimum soa_min; 0: none) and an OPT. */
static size_t upstream_answer(uint8_t *b, const struct dns_query *q, uint16_t id, int rcode,
			      uint32_t a_ttl, uint32_t soa_ttl, uint32_t soa_min)
{
	struct dns_wbuf w;
	size_t at;

	dns_wbuf_init(&w, b, 600);
	dns_wput16(&w, id);
	dns_wput16(&w, (uint16_t)(DNS_F_QR | DNS_F_RD | DNS_F_RA | rcode));
	dns_wput16(&w, 1);
	dns_wput16(&w, a_ttl ? 1 : 0);
	dns_wput16(&w, soa_ttl ? 1 : 0);
	dns_wput16(&w, 1);
	dns_wput_name(&w, q->lname, q->name_len);
	dns_wput16(&w, q->qtype);
	dns_wput16(&w, q->qclass);
	if (a_ttl) {
		at = dns_rr_begin(&w, q->lname, q->name_len, DNS_T_A, a_ttl);
		dns_wput32(&w, 0xc0000207);
		dns_rr_end(&w, at);
	}
	if (soa_ttl) {
		at = dns_rr_begin(&w, (const uint8_t *)"\007example\003com", 13, DNS_T_SOA, soa_ttl);
		dns_wput(&w, "\0\0", 2);
		for (int i = 0; i < 4; i++)
			dns_wput32(&w, 1000);
		dns_wput32(&w, soa_min);
		dns_rr_end(&w, at);
	}
	dns_wput_opt(&w, 4096, 0, false);
	return w.len;
}

/* Ask r as a client at src; returns the action, fills rep. */
static enum dns_action ask(struct dns_records *r, const char *src, const char *name, uint16_t t,
			   int edns, bool tcp, uint32_t rotate, struct reply *rep, size_t *outlen)
{
	uint8_t q[512], out[DNS_MSG_MAX];
	struct ip_addr s, local;
	struct dns_ctx c = { .rec = r, .src = &s, .local = &local, .tcp = tcp, .rotate = rotate,
			     .stats = &st };
	struct dns_query dq;
	size_t len = mkquery(q, name, t, edns), ol = 0;
	enum dns_action act;

	ip_parse(src, &s, NULL);
	ip_parse("10.88.0.1", &local, NULL);
	act = dns_answer(&c, q, len, &dq, out, sizeof(out), &ol);
	memset(rep, 0, sizeof(*rep));
	if (act == DNS_REPLY && parse_reply(out, ol, rep) < 0)
		rep->rcode = -1;
	if (outlen)
		*outlen = ol;
	return act;
}

/* The fast path (answer_fast) and the general builder give the same bytes
 * for every query of a matrix of names (cases, bare and qualified,
 * services with rotation, missing families, unknown names), types, EDNS
 * sizes (none, small, 512, 1232, a size too small for the whole RRset),
 * transports and client scopes. Returns the number of differing replies;
 * *fast counts the A/AAAA answers with records among *total queries. */
static int fast_matches_general(struct dns_records *r, int *fast, int *total)
{
	static const char *const names[] = {
		"web1.berth.internal", "WeB1.BeRtH.InTeRnAl", "web1", "WEB1", "web.berth.internal",
		"web", "web2.berth.internal", "db.berth.internal", "db", "api.berth.internal",
		"api", "many.berth.internal", "MANY", "m7.berth.internal", "nope.berth.internal",
		"nope", "berth.internal", "ns.berth.internal", "internal", "web1.berth.internal.x",
		"web1.other.internal", "_80._tcp.web.berth.internal", "websvc.berth.internal",
		"WEBSVC", "dbsvc.berth.internal", "dbsvc",
	};
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_ANY, DNS_T_MX };
	static const int edns[] = { 0, 100, 512, 1232, 4096 };
	static const char *const srcs[] = { "127.0.0.1", "10.88.1.1", "10.89.1.5", "10.89.7.7" };
	int diff = 0;

	*fast = *total = 0;
	for (size_t ni = 0; ni < ARRAY_SIZE(names); ni++)
	for (size_t ti = 0; ti < ARRAY_SIZE(types); ti++)
	for (size_t ei = 0; ei < ARRAY_SIZE(edns); ei++)
	for (size_t si = 0; si < ARRAY_SIZE(srcs); si++)
	for (int tcp = 0; tcp < 2; tcp++)
	for (uint32_t rot = 0; rot < 3; rot++) {
		uint8_t q[512], o1[DNS_MSG_MAX], o2[DNS_MSG_MAX];
		struct ip_addr s, local;
		struct dns_stats st1 = { 0 }, st2 = { 0 };
		struct dns_ctx c1 = { .rec = r, .src = &s, .local = &local, .tcp = tcp,
				      .rotate = rot, .stats = &st1 };
		struct dns_ctx c2 = c1;
		struct dns_query d1, d2;
		size_t len = mkquery(q, names[ni], types[ti], edns[ei]), l1 = 0, l2 = 0;
		enum dns_action a1, a2;

		ip_parse(srcs[si], &s, NULL);
		ip_parse("10.88.0.1", &local, NULL);
		c2.stats = &st2;
		c2.general_only = true;
		a1 = dns_answer(&c1, q, len, &d1, o1, sizeof(o1), &l1);
		a2 = dns_answer(&c2, q, len, &d2, o2, sizeof(o2), &l2);
		(*total)++;
		if (a1 != a2 || (a1 == DNS_REPLY && (l1 != l2 || memcmp(o1, o2, l1))) ||
		    memcmp(&st1, &st2, sizeof(st1))) {
			if (diff++ < 5)
				printf("#   differs: %s type %u edns %d from %s tcp %d rotate %u\n",
				       names[ni], types[ti], edns[ei], srcs[si], tcp, rot);
		}
		/* A/AAAA answers with records: what the fast path takes */
		if (a1 == DNS_REPLY && st1.authoritative && (types[ti] == DNS_T_A ||
		    types[ti] == DNS_T_AAAA) && l1 > DNS_HDR_LEN && dns_get16(o1 + 6))
			(*fast)++;
	}
	return diff;
}


/* Reverse name of a dotted address, for the PTR questions. */
static const char *rev(const char *addr, char *buf, size_t n)
{
	struct ip_addr a;
	size_t o = 0;

	ip_parse(addr, &a, NULL);
	if (a.family == AF_INET) {
		snprintf(buf, n, "%u.%u.%u.%u.in-addr.arpa", a.b[3], a.b[2], a.b[1], a.b[0]);
		return buf;
	}
	for (int k = 31; k >= 0; k--)
		o += (size_t)snprintf(buf + o, n - o, "%x.", k % 2 ? a.b[k / 2] & 0xf : a.b[k / 2] >> 4);
	snprintf(buf + o, n - o, "ip6.arpa");
	return buf;
}

static int set_svc(struct dns_records *r, const char *name, const char *net, const char *vip4,
		   const char *vip6, const struct dns_ctr_ports *ports, size_t nports,
		   struct err *e)
{
	struct dns_service s = { .name = name, .network = net, .ports = ports, .nports = nports };

	if (vip6)   /* given before the IPv4 one: the order must not matter */
		ip_parse(vip6, &s.vips[s.nvips++], NULL);
	if (vip4)
		ip_parse(vip4, &s.vips[s.nvips++], NULL);
	return dns_records_set_service(r, &s, e);
}

/* Services with virtual IPs (issue 23): their names answer their VIPs, SRV
 * per port, PTR of the VIPs; scoped by network; replaced, removed, guarded. */
static void vip_services(struct dns_records *r)
{
	static const struct dns_ctr_ports webp[] = { { 80, 80, "tcp" }, { 53, 53, "udp" },
						     { 80, 80, "tcp" } };
	static const struct dns_ctr_ports dbp[] = { { 5432, 5432, "tcp" } };
	static const struct dns_ctr_ports altp[] = { { 8080, 8080, "tcp" } };
	struct err e = { 0 };
	struct reply rep;
	char rb[128];
	size_t mem0 = dns_records_memory(r);

	T_EQ(set_svc(r, "websvc", "default", "10.96.0.10", "fd96::10", webp, ARRAY_SIZE(webp), &e),
	     0, "a service with two VIPs and ports 80/tcp, 53/udp is set");
	T_EQ(set_svc(r, "dbsvc", "back", "10.97.0.5", NULL, dbp, 1, &e), 0,
	     "a service with an IPv4 VIP only, on network back");
	T_OK(dns_records_memory(r) > mem0, "the record set's memory counts them (%zu -> %zu bytes)",
	     mem0, dns_records_memory(r));

	T_EQ(ask(r, "127.0.0.1", "websvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL),
	     DNS_REPLY, "NAME.DOMAIN of a service is answered locally");
	T_OK(rep.rcode == DNS_R_NOERROR && (rep.flags & DNS_F_AA) && rep.an == 1,
	     "NOERROR, AA, one A record");
	T_STREQ(rep.ans[0], "A 10.96.0.10", "its IPv4 VIP");
	ask(r, "127.0.0.1", "websvc.berth.internal", DNS_T_AAAA, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && !strcmp(rep.ans[0], "AAAA fd96::10"), "AAAA: its IPv6 VIP");
	ask(r, "127.0.0.1", "WebSvc", DNS_T_A, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && !strcmp(rep.ans[0], "A 10.96.0.10"), "the bare NAME too, any case");
	ask(r, "127.0.0.1", "websvc.berth.internal", DNS_T_ANY, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 2 && !strcmp(rep.ans[0], "A 10.96.0.10") &&
	     !strcmp(rep.ans[1], "AAAA fd96::10"), "ANY: IPv4 VIP first though given second");
	ask(r, "127.0.0.1", "dbsvc.berth.internal", DNS_T_AAAA, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NOERROR && rep.an == 0 && rep.ns == 1 && !strcmp(rep.auth_type, "6"),
	     "AAAA of a service with an IPv4 VIP only: NODATA with SOA, as a container");

	ask(r, "127.0.0.1", "_80._tcp.websvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NOERROR && rep.an == 1, "SRV of its port: one record");
	T_STREQ(rep.ans[0], "SRV 80 websvc.berth.internal.", "0 0 PORT NAME.DOMAIN");
	T_EQ(rep.ar, 2, "with the VIPs (A and AAAA) as glue");
	ask(r, "127.0.0.1", "_53._udp.websvc.berth.internal", DNS_T_ANY, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "SRV 53 websvc.berth.internal.", "its second port (ANY)");
	ask(r, "127.0.0.1", "_81._tcp.websvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "SRV of a port it does not have: NXDOMAIN");
	ask(r, "127.0.0.1", "_53._tcp.websvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "nor of its port with the other protocol");
	ask(r, "127.0.0.1", "_udp.websvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NOERROR && rep.an == 0, "_udp.NAME: an empty non-terminal");

	T_EQ(ask(r, "127.0.0.1", rev("10.96.0.10", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep,
		 NULL), DNS_REPLY, "the PTR of a VIP outside every subnet is answered locally");
	T_OK(rep.rcode == DNS_R_NOERROR && (rep.flags & DNS_F_AA) && rep.an == 1, "NOERROR, AA");
	T_STREQ(rep.ans[0], "PTR websvc.berth.internal.", "by the service's NAME.DOMAIN");
	ask(r, "127.0.0.1", rev("fd96::10", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "PTR websvc.berth.internal.", "the IPv6 VIP's too");
	ask(r, "127.0.0.1", rev("10.96.0.10", rb, sizeof(rb)), DNS_T_A, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NOERROR && (rep.flags & DNS_F_AA) && rep.an == 0 && rep.ns == 0,
	     "another type at a VIP's reverse name: NODATA, no SOA (no zone of ours)");
	T_EQ(ask(r, "127.0.0.1", rev("10.96.0.11", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep,
		 NULL), DNS_FORWARD, "a free address of the service range is forwarded as before");
	T_EQ(ask(r, "127.0.0.1", "0.96.10.in-addr.arpa", DNS_T_PTR, 0, false, 0, &rep, NULL),
	     DNS_FORWARD, "and so is a partial reverse name there");

	/* scoping: the service is seen by whoever sees its network */
	ask(r, "10.88.1.1", "websvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.96.0.10", "web1 (default) sees websvc (default)");
	ask(r, "10.88.1.1", "dbsvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "web1 does not see dbsvc (back)");
	ask(r, "10.88.1.1", "_5432._tcp.dbsvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "nor its SRV");
	T_EQ(ask(r, "10.88.1.1", rev("10.97.0.5", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep,
		 NULL), DNS_FORWARD, "and its VIP's PTR is forwarded like any other");
	T_EQ(ask(r, "10.89.1.5", "websvc", DNS_T_A, 0, false, 0, &rep, NULL), DNS_FORWARD,
	     "db (back) asking the bare name websvc: not ours, forwarded");
	ask(r, "10.89.1.5", "dbsvc", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.97.0.5", "db sees dbsvc");
	ask(r, "10.89.1.5", rev("10.97.0.5", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "PTR dbsvc.berth.internal.", "and its VIP's PTR");
	ask(r, "10.88.1.9", "dbsvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.97.0.5", "api (on both) sees dbsvc from its default address");
	ask(r, "10.89.7.7", "websvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "an unknown address in back's subnet does not see websvc");

	/* the guard: a service name is never a container or a `service =` group */
	T_EQ(set_svc(r, "WEB1", "default", "10.96.0.20", NULL, NULL, 0, &e), -EEXIST,
	     "a service named as a container: EEXIST");
	T_STREQ(e.msg, "DNS: service 'WEB1': a container has that name", "saying so");
	T_EQ(set_svc(r, "web", "default", "10.96.0.20", NULL, NULL, 0, &e), -EEXIST,
	     "a service named as a `service =` group: EEXIST");
	T_STREQ(e.msg, "DNS: service 'web': containers have it as their `service =` group",
		"saying so");
	ask(r, "127.0.0.1", "web.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.an, 2, "the group still lists its members");
	{
		struct dns_ctr_net cn = { .network = "default", .naddrs = 1 };
		struct dns_ctr c = { .name = "websvc", .nets = &cn, .nnets = 1 };

		ip_parse("10.88.3.3", &cn.addrs[0], NULL);
		T_EQ(dns_records_set_container(r, &c, &e), -EEXIST,
		     "a container named as a service: EEXIST");
		T_STREQ(e.msg, "DNS: container 'websvc': a service with virtual IPs has that name",
			"saying so");
		c.name = "web9";
		c.service = "DBSVC";
		T_EQ(dns_records_set_container(r, &c, &e), -EEXIST,
		     "a container whose `service =` is a service: EEXIST");
		T_EQ(dns_records_add_container(r, "websvc", "default", cn.addrs, 1, NULL, &e), -EEXIST,
		     "through dns_records_add_container too");
		ask(r, "127.0.0.1", "web9.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
		T_EQ(rep.rcode, DNS_R_NXDOMAIN, "the refused container has no name");
	}
	T_EQ(set_svc(r, "dbsvc", "default", "10.97.0.5", "10.97.0.6", NULL, 0, &e), -EINVAL,
	     "two IPv4 VIPs: EINVAL");
	T_STREQ(e.msg, "DNS: service 'dbsvc': two IPv4 virtual IPs", "saying so");
	T_EQ(set_svc(r, "dbsvc", "default", NULL, NULL, NULL, 0, &e), -EINVAL, "no VIP: EINVAL");
	T_EQ(set_svc(r, "dbsvc", "nonet", "10.97.0.5", NULL, NULL, 0, &e), -ENOENT,
	     "an unknown network: ENOENT");
	T_STREQ(e.msg, "DNS: service 'dbsvc': unknown network 'nonet'", "naming both");
	T_EQ(set_svc(r, "db.svc", "back", "10.97.0.5", NULL, NULL, 0, &e), -EINVAL,
	     "a dotted name: EINVAL");
	ask(r, "127.0.0.1", "dbsvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.97.0.5", "a refused definition leaves the service as it was");

	/* setting it again replaces its VIPs and ports */
	T_EQ(set_svc(r, "websvc", "default", "10.96.0.11", NULL, altp, 1, &e), 0,
	     "websvc set again: another IPv4 VIP, no IPv6 one, port 8080");
	ask(r, "127.0.0.1", "websvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && !strcmp(rep.ans[0], "A 10.96.0.11"), "A: the new VIP only");
	ask(r, "127.0.0.1", "websvc.berth.internal", DNS_T_AAAA, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NOERROR && rep.an == 0, "AAAA: NODATA now");
	ask(r, "127.0.0.1", "_80._tcp.websvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "the old port's SRV is NXDOMAIN");
	ask(r, "127.0.0.1", "_8080._tcp.websvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && rep.ar == 1, "the new port's SRV, the one VIP as glue");
	T_EQ(ask(r, "127.0.0.1", rev("10.96.0.10", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep,
		 NULL), DNS_FORWARD, "the old VIP's PTR is no longer ours");
	T_EQ(ask(r, "127.0.0.1", rev("fd96::10", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep,
		 NULL), DNS_FORWARD, "nor the old IPv6 VIP's");
	ask(r, "127.0.0.1", rev("10.96.0.11", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "PTR websvc.berth.internal.", "the new VIP's is");

	/* removing it: NXDOMAIN at once */
	T_EQ(dns_records_remove_service(r, "DBsvc"), 0, "dbsvc removed (any case)");
	ask(r, "127.0.0.1", "dbsvc.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "its name is NXDOMAIN at once");
	ask(r, "127.0.0.1", "_5432._tcp.dbsvc.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "its SRV too");
	T_EQ(ask(r, "127.0.0.1", rev("10.97.0.5", rb, sizeof(rb)), DNS_T_PTR, 0, false, 0, &rep,
		 NULL), DNS_FORWARD, "its VIP's PTR goes back to the upstreams");
	T_EQ(ask(r, "127.0.0.1", "dbsvc", DNS_T_A, 0, false, 0, &rep, NULL), DNS_FORWARD,
	     "its bare name too");
	T_EQ(dns_records_remove_service(r, "dbsvc"), -ENOENT, "removing it again: ENOENT");
	T_EQ(dns_records_remove_service(r, "web1"), -ENOENT, "a container is not a service: ENOENT");
	ask(r, "127.0.0.1", "web1.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.88.1.1", "and stays");
	T_EQ(set_svc(r, "dbsvc", "back", "10.97.0.5", NULL, dbp, 1, &e), 0, "dbsvc set back");
}

int main(void)
{
	struct dns_records *r = build();
	struct reply rep;
	size_t len;
	/* --- authoritative names, seen from the host (all networks) --- */
	T_EQ(ask(r, "127.0.0.1", "web1.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL), DNS_REPLY,
	     "NAME.DOMAIN is answered locally");
	T_EQ(rep.rcode, DNS_R_NOERROR, "NOERROR");
	T_OK(rep.flags & DNS_F_AA, "authoritative (AA)");
	T_OK(rep.flags & DNS_F_RA, "RA set");
	T_EQ(rep.an, 1, "one A record");
	T_STREQ(rep.ans[0], "A 10.88.1.1", "web1's address");
	ask(r, "127.0.0.1", "WEB1", DNS_T_AAAA, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "AAAA fd88::11", "bare NAME, AAAA, any case");
	ask(r, "127.0.0.1", "web.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.an, 2, "service: every member");
	T_STREQ(rep.ans[0], "A 10.88.1.1", "rotation 0 starts with the first member");
	ask(r, "127.0.0.1", "web.berth.internal", DNS_T_A, 0, false, 1, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.88.1.2", "rotation 1 starts with the second");
	ask(r, "127.0.0.1", "web2.berth.internal", DNS_T_AAAA, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NOERROR && rep.an == 0 && rep.ns == 1, "NODATA: NOERROR, SOA in authority");
	T_STREQ(rep.auth_type, "6", "the authority record is an SOA");
	ask(r, "127.0.0.1", "nope.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NXDOMAIN && rep.ns == 1, "unknown name: NXDOMAIN with SOA");
	ask(r, "127.0.0.1", "a.b.c.d.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "deep unknown name: NXDOMAIN");
	ask(r, "127.0.0.1", "berth.internal", DNS_T_SOA, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "type 6", "apex SOA");
	ask(r, "127.0.0.1", "berth.internal", DNS_T_NS, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && rep.ar == 1, "apex NS with glue for ns.DOMAIN");
	ask(r, "127.0.0.1", "ns.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.88.0.1", "ns.DOMAIN is the address the query came to");
	ask(r, "127.0.0.1", "_80._tcp.web.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.an, 2, "SRV: one per member");
	T_STREQ(rep.ans[0], "SRV 80 web1.berth.internal.", "SRV target NAME.DOMAIN, port 80");
	T_EQ(rep.ar, 3, "SRV glue: the targets' A and AAAA");
	ask(r, "127.0.0.1", "_81._tcp.web.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "SRV for an undeclared port: NXDOMAIN");
	ask(r, "127.0.0.1", "_tcp.web.berth.internal", DNS_T_SRV, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NOERROR, "_tcp.SERVICE is an empty non-terminal: NODATA");
	ask(r, "127.0.0.1", "2.1.88.10.in-addr.arpa", DNS_T_PTR, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "PTR web2.berth.internal.", "PTR v4");
	ask(r, "127.0.0.1", "1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.d.f.ip6.arpa",
	    DNS_T_PTR, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "PTR web1.berth.internal.", "PTR v6");
	ask(r, "127.0.0.1", "7.7.88.10.in-addr.arpa", DNS_T_PTR, 0, false, 0, &rep, NULL);
	T_OK(rep.rcode == DNS_R_NXDOMAIN && rep.ns == 1, "PTR of a free address in a subnet: NXDOMAIN + SOA");
	T_EQ(ask(r, "127.0.0.1", "8.8.8.8.in-addr.arpa", DNS_T_PTR, 0, false, 0, &rep, NULL),
	     DNS_FORWARD, "PTR outside every subnet is forwarded");
	T_EQ(ask(r, "127.0.0.1", "example.com", DNS_T_A, 0, false, 0, &rep, NULL), DNS_FORWARD,
	     "other names are forwarded");
	T_EQ(ask(r, "127.0.0.1", "unknownhost", DNS_T_A, 0, false, 0, &rep, NULL), DNS_FORWARD,
	     "unknown bare names are forwarded");

	/* --- scoping --- */
	ask(r, "10.88.1.1", "db.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_EQ(rep.rcode, DNS_R_NXDOMAIN, "web1 (default) does not see db (back)");
	ask(r, "10.88.1.1", "api.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && !strcmp(rep.ans[0], "A 10.88.1.9"), "web1 sees api's default address only");
	ask(r, "10.89.1.5", "api.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_OK(rep.an == 1 && !strcmp(rep.ans[0], "A 10.89.1.9"), "db sees api's back address only");
	ask(r, "10.88.1.9", "db.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.89.1.5", "api (on both) sees db, even asking from its default address");
	ask(r, "10.88.7.7", "web1", DNS_T_A, 0, false, 0, &rep, NULL);
	T_STREQ(rep.ans[0], "A 10.88.1.1", "an unknown address in default's subnet sees default");
	T_EQ(ask(r, "10.88.1.1", "5.1.89.10.in-addr.arpa", DNS_T_PTR, 0, false, 0, &rep, NULL),
	     DNS_FORWARD, "PTR of another network's address is not answered locally");

	/* --- sizes: TC over UDP, whole over TCP, EDNS --- */
	ask(r, "127.0.0.1", "many.berth.internal", DNS_T_A, 0, false, 0, &rep, &len);
	T_OK((rep.flags & DNS_F_TC) && rep.an == 0, "40 members without EDNS: TC=1, no answers");
	T_OK(len <= 512, "and within 512 bytes");
	ask(r, "127.0.0.1", "many.berth.internal", DNS_T_A, 0, true, 0, &rep, NULL);
	T_OK(!(rep.flags & DNS_F_TC) && rep.an == 40, "over TCP: all 40");
	ask(r, "127.0.0.1", "many.berth.internal", DNS_T_A, 1232, false, 0, &rep, &len);
	T_OK(!(rep.flags & DNS_F_TC) && rep.an == 40 && rep.ar == 1, "EDNS 1232: all 40 and OPT");
	ask(r, "127.0.0.1", "many.berth.internal", DNS_T_A, 9000, false, 0, &rep, &len);
	T_OK(len <= DNS_EDNS_PAYLOAD, "a larger EDNS size is capped at 1232");

	/* --- upstream answers, relaying, the cache --- */
	{
		uint8_t qb[512], up[600], out[600], rel[600];
		struct dns_query q;
		size_t ql = mkquery(qb, "Www.Example.com", DNS_T_A, 1232), ul, rl, clen;
		struct dns_cache *c;
		const uint8_t *cm;
		uint32_t age;
		int rc;

		dns_query_parse(qb, ql, &q);
		ul = dns_upstream_query(&q, 0x4242, up, sizeof(up));
		T_EQ(dns_get16(up), 0x4242, "upstream query carries our id");
		T_OK(!memcmp(up + 12, "\003www\007example\003com", 17), "and the question lower-cased");
		ul = upstream_answer(up, &q, 0x4242, DNS_R_NOERROR, 300, 100, 50);
		memcpy(out, up, ul);
		T_EQ(dns_upstream_check(&q, 0x4243, out, ul), -1, "wrong id: ignored");
		memcpy(out, up, ul);
		out[13] = 'x';
		T_EQ(dns_upstream_check(&q, 0x4242, out, ul), -1, "another question: ignored");
		memcpy(out, up, ul);
		out[2] &= 0x7f;
		T_EQ(dns_upstream_check(&q, 0x4242, out, ul), -1, "not a response: ignored");
		memcpy(out, up, ul);
		rc = dns_upstream_check(&q, 0x4242, out, ul);
		T_EQ(rc, (int)ul - 11, "good answer: accepted, its OPT cut");
		T_EQ(dns_get16(out + 10), 0, "ARCOUNT without the OPT");
		T_EQ(dns_cache_ttl(out, (size_t)rc), 100, "positive TTL: least of answer and authority");
		rl = dns_relay_reply(&q, out, (size_t)rc, 30, 1232, rel, sizeof(rel));
		T_OK(rl > 0 && parse_reply(rel, rl, &rep) == 0, "relayed answer parses");
		T_EQ(dns_get16(rel), 0xbeef, "relayed answer has the client's id");
		T_OK(!memcmp(rel + 12, "\003Www\007Example\003com", 17), "and the client's case");
		T_EQ(dns_get32(rel + 12 + 17 + 4 + 2 + 4), 270, "TTL less the 30 s the answer aged");
		T_OK(rep.ar == 1 && (rep.flags & DNS_F_RA), "our OPT added, RA set");
		rl = dns_relay_reply(&q, out, (size_t)rc, 0, 40, rel, sizeof(rel));
		T_OK(rl > 0 && parse_reply(rel, rl, &rep) == 0 && (rep.flags & DNS_F_TC) && rep.an == 0,
		     "relayed answer too big for the client: TC=1, question only");
		/* an upstream that is the authority for the name says AA; berth
		 * relaying or caching it is not */
		memcpy(out, up, ul);
		out[2] |= DNS_F_AA >> 8;
		rc = dns_upstream_check(&q, 0x4242, out, ul);
		rl = dns_relay_reply(&q, out, (size_t)rc, 0, 1232, rel, sizeof(rel));
		T_OK(rl > 0 && parse_reply(rel, rl, &rep) == 0 && rep.an == 1 &&
		     !(rep.flags & DNS_F_AA), "an upstream's AA is not relayed");
		rl = dns_relay_reply(&q, out, (size_t)rc, 30, 1232, rel, sizeof(rel));
		T_OK(rl > 0 && parse_reply(rel, rl, &rep) == 0 && !(rep.flags & DNS_F_AA),
		     "nor served from the cache");
		memcpy(out, up, ul);
		out[3] = (out[3] & 0xf0) | DNS_R_SERVFAIL;
		T_EQ(dns_upstream_check(&q, 0x4242, out, ul), 0, "SERVFAIL from upstream: try the next");
		ul = upstream_answer(up, &q, 0x4242, DNS_R_NXDOMAIN, 0, 100, 50);
		rc = dns_upstream_check(&q, 0x4242, up, ul);
		T_OK(rc > 0, "NXDOMAIN is a usable answer");
		T_EQ(dns_cache_ttl(up, (size_t)rc), 50, "negative TTL: SOA minimum (RFC 2308)");
		ul = upstream_answer(up, &q, 0x4242, DNS_R_NXDOMAIN, 0, 0, 0);
		rc = dns_upstream_check(&q, 0x4242, up, ul);
		T_EQ(dns_cache_ttl(up, (size_t)rc), 0, "NXDOMAIN without SOA is not cached");

		c = dns_cache_new(2);
		ul = upstream_answer(up, &q, 0x4242, DNS_R_NOERROR, 300, 0, 0);
		rc = dns_upstream_check(&q, 0x4242, up, ul);
		dns_cache_put(c, &q, up, (size_t)rc, 300, 1000);
		cm = dns_cache_get(c, &q, 6000, &clen, &age);
		T_OK(cm && clen == (size_t)rc && age == 5, "cached answer found, 5 s old");
		T_OK(!dns_cache_get(c, &q, 1000 + 300 * 1000, &clen, &age), "expired after its TTL");
		T_EQ(dns_cache_count(c), 0, "and dropped");
		dns_cache_put(c, &q, up, (size_t)rc, 300, 1000);
		q.qtype = DNS_T_AAAA;
		dns_cache_put(c, &q, up, (size_t)rc, 300, 1000);
		q.qtype = DNS_T_A;
		T_OK(dns_cache_get(c, &q, 1000, &clen, &age) != NULL, "A entry used (most recent now)");
		q.qtype = DNS_T_MX;
		dns_cache_put(c, &q, up, (size_t)rc, 300, 1000);
		T_EQ(dns_cache_count(c), 2, "bounded at 2 entries");
		q.qtype = DNS_T_AAAA;
		T_OK(!dns_cache_get(c, &q, 1000, &clen, &age), "least recently used (AAAA) evicted");
		q.qtype = DNS_T_A;
		T_OK(dns_cache_get(c, &q, 1000, &clen, &age) != NULL, "A kept");
		dns_cache_free(c);
	}

	/* --- memory for 1,000 containers --- */
	{
		struct dns_records *big = dns_records_new("berth.internal", 10, NULL);
		struct ip_prefix p;
		struct ip_addr a;
		char name[32];
		size_t mem;

		ip_prefix_parse("10.88.0.0/16", &p, NULL);
		dns_records_add_network(big, "default", &p, 1, NULL);
		for (int i = 0; i < 1000; i++) {
			snprintf(name, sizeof(name), "container-%d", i);
			ip_from_v4(&a, 0x0a580100u + (uint32_t)i);
			dns_records_add_container(big, name, "default", &a, 1, i % 10 ? NULL : "svc", NULL);
		}
		mem = dns_records_memory(big);
		printf("# 1000 containers: %zu bytes of records\n", mem);
		T_OK(mem < 128 * 1024, "1,000 containers take under 128 KiB of records (%zu bytes "
		     "each)", mem / 1000);
		ask(big, "127.0.0.1", "container-999.berth.internal", DNS_T_A, 0, false, 0, &rep, NULL);
		T_STREQ(rep.ans[0], "A 10.88.4.231", "the last one resolves");
		dns_records_free(big);
	}
	{
		struct err e = { 0 };
		struct dns_records *x = dns_records_new("bad..domain", 10, &e);
		struct ip_addr a;

		T_OK(!x, "a bad domain is refused");
		T_STREQ(e.msg, "DNS domain 'bad..domain' is not a valid domain name", "with its name");
		x = dns_records_new("berth.internal", 10, &e);
		ip_parse("10.0.0.1", &a, NULL);
		T_EQ(dns_records_add_container(x, "c", "nonet", &a, 1, NULL, &e), -ENOENT,
		     "container on an undeclared network: ENOENT");
		T_STREQ(e.msg, "DNS: container 'c': unknown network 'nonet'", "naming both");
		T_EQ(dns_records_add_container(x, "a.b", "nonet", &a, 1, NULL, &e), -EINVAL,
		     "dotted container name: EINVAL");
		T_EQ(dns_records_add_srv(x, "web", 80, "tpc", &e), -EINVAL, "SRV protocol typo: EINVAL");
		T_STREQ(e.msg, "DNS: SRV for 'web': protocol 'tpc' must be tcp, udp or sctp", "message");
		dns_records_free(x);
	}
	{
		int fast, total;

		T_EQ(fast_matches_general(r, &fast, &total), 0,
		     "the fast path's replies are byte for byte the general builder's");
		T_OK(fast > 100 && fast < total, "... over %d queries, %d of them A/AAAA answers", total,
		     fast);
		vip_services(r);
		T_EQ(fast_matches_general(r, &fast, &total), 0,
		     "with services with VIPs too, the fast path's replies are the general builder's");
		T_OK(fast > 100 && fast < total, "... over %d queries, %d of them A/AAAA answers", total,
		     fast);
	}
	dns_records_free(r);
	return t_done();
}
