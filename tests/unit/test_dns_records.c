/* test_dns_records.c - dns/ records changed in place, container by container
 * and service by service: after any sequence of set and remove, every query
 * is answered byte for byte as by a set built from scratch with the same
 * containers and services with VIPs (in any order, through either way of
 * building); a removed name, address or service stops answering at once. */
#include "dns/dns_int.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

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

/* ---- the model: what the containers are ---------------------------------- */

#define NNAMES 14
#define NNETS 3
static const char *const names[NNAMES] = {
	"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "C11", "web", "db-1",
};
static const char *const services[] = { NULL, NULL, "web", "db", "c3", "C5", "Web", "x_y" };
static const char *const netnames[NNETS] = { "n0", "n1", "n2" };
static const char *const subnets4[NNETS] = { "10.90.0.0/24", "10.91.0.0/24", "10.92.0.0/24" };
static const char *const subnets6[NNETS] = { "fd90::/64", NULL, "fd92::/64" };
static const struct { uint16_t first, last; const char *proto; } portpool[] = {
	{ 80, 80, "tcp" }, { 80, 81, "tcp" }, { 53, 53, "udp" }, { 443, 443, "tcp" },
	{ 5000, 5002, "sctp" },
};

struct mctr {
	bool present;
	const char *service;
	struct dns_ctr_net nets[NNETS];
	size_t nnets;
	struct dns_ctr_ports ports[3];
	size_t nports;
};
static struct mctr model[NNAMES];

/* Services with virtual IPs: their VIPs come from a small pool too (two
 * services, or a service and a container, sometimes share one: the PTR then
 * goes by name), one of them inside n0's subnet. */
#define NSVCS 3
static const char *const svcnames[NSVCS] = { "vs0", "vs1", "Vs2" };
static const char *const vips4[] = { "10.96.0.1", "10.96.0.2", "10.96.0.3", "10.90.0.2" };
static const char *const vips6[] = { "fd96::1", "fd96::2", "fd90::1" };
struct msvc {
	bool present;
	const char *network;
	struct ip_addr vips[2];
	size_t nvips;
	struct dns_ctr_ports ports[3];
	size_t nports;
};
static struct msvc smodel[NSVCS];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11) % n;
}

/* A small pool of addresses per network, so that two containers sometimes
 * hold the same one (the PTR then goes by name). */
static void pool_addr(unsigned net, bool v6, unsigned i, struct ip_addr *a)
{
	char s[64];

	if (v6)
		snprintf(s, sizeof(s), "fd9%u::%u", net, i + 1);
	else
		snprintf(s, sizeof(s), "10.9%u.0.%u", net, i + 1);
	ip_parse(s, a, NULL);
}

static void random_ctr(struct mctr *m)
{
	memset(m, 0, sizeof(*m));
	m->present = true;
	m->service = services[rnd(ARRAY_SIZE(services))];
	for (unsigned n = 0; n < NNETS; n++) {
		struct dns_ctr_net *cn;

		if (rnd(3) == 0)
			continue;
		cn = &m->nets[m->nnets++];
		cn->network = netnames[n];
		if (rnd(5))
			pool_addr(n, false, rnd(7), &cn->addrs[cn->naddrs++]);
		if (subnets6[n] && rnd(2))
			pool_addr(n, true, rnd(4), &cn->addrs[cn->naddrs++]);
	}
	m->nports = rnd(4);
	for (size_t i = 0; i < m->nports; i++) {
		unsigned p = rnd(ARRAY_SIZE(portpool));

		m->ports[i] = (struct dns_ctr_ports){ portpool[p].first, portpool[p].last,
						      portpool[p].proto };
	}
}

static void random_svc(struct msvc *m)
{
	bool v4 = rnd(5) != 0, v6 = !v4 || rnd(2);
	bool v6_first = rnd(2);

	memset(m, 0, sizeof(*m));
	m->present = true;
	m->network = netnames[rnd(NNETS)];
	if (v6 && v6_first)
		ip_parse(vips6[rnd(ARRAY_SIZE(vips6))], &m->vips[m->nvips++], NULL);
	if (v4)
		ip_parse(vips4[rnd(ARRAY_SIZE(vips4))], &m->vips[m->nvips++], NULL);
	if (v6 && !v6_first)
		ip_parse(vips6[rnd(ARRAY_SIZE(vips6))], &m->vips[m->nvips++], NULL);
	m->nports = rnd(4);
	for (size_t i = 0; i < m->nports; i++) {
		unsigned p = rnd(ARRAY_SIZE(portpool));

		m->ports[i] = (struct dns_ctr_ports){ portpool[p].first, portpool[p].last,
						      portpool[p].proto };
	}
}

static struct dns_service describe_svc(unsigned i)
{
	struct dns_service s = { .name = svcnames[i], .network = smodel[i].network,
				 .nvips = smodel[i].nvips, .ports = smodel[i].ports,
				 .nports = smodel[i].nports };

	memcpy(s.vips, smodel[i].vips, sizeof(s.vips));
	return s;
}

static struct dns_ctr describe(unsigned i)
{
	return (struct dns_ctr){ .name = names[i], .service = model[i].service,
				 .nets = model[i].nets, .nnets = model[i].nnets,
				 .ports = model[i].ports, .nports = model[i].nports };
}

static struct dns_records *empty_set(void)
{
	struct dns_records *r = dns_records_new("berth.internal", 10, NULL);

	for (unsigned n = 0; n < NNETS; n++) {
		struct ip_prefix p[2];
		size_t np = 0;

		ip_prefix_parse(subnets4[n], &p[np++], NULL);
		if (subnets6[n])
			ip_prefix_parse(subnets6[n], &p[np++], NULL);
		dns_records_add_network(r, netnames[n], p, np, NULL);
	}
	return r;
}

/* The model's containers and services from scratch, in a random order; old:
 * the first way of building containers (a call per network, SRV per port
 * and name). */
static struct dns_records *from_scratch(bool old)
{
	struct dns_records *r = empty_set();
	unsigned order[NNAMES + NSVCS];

	for (unsigned i = 0; i < NNAMES + NSVCS; i++)
		order[i] = i;
	for (unsigned i = NNAMES + NSVCS - 1; i > 0; i--) {
		unsigned j = rnd(i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned k = 0; k < NNAMES + NSVCS; k++) {
		unsigned i = order[k];
		const struct mctr *m;

		if (i >= NNAMES) {
			struct dns_service sv = describe_svc(i - NNAMES);

			if (smodel[i - NNAMES].present && dns_records_set_service(r, &sv, NULL) < 0)
				printf("#   from scratch: %s refused\n", svcnames[i - NNAMES]);
			continue;
		}
		m = &model[i];
		if (!m->present)
			continue;
		if (!old) {
			struct dns_ctr c = describe(i);

			if (dns_records_set_container(r, &c, NULL) < 0)
				printf("#   from scratch: %s refused\n", names[i]);
			continue;
		}
		for (size_t n = 0; n < m->nnets; n++)
			dns_records_add_container(r, names[i], m->nets[n].network, m->nets[n].addrs,
						  m->nets[n].naddrs, m->service, NULL);
		for (size_t p = 0; p < m->nports; p++)
			for (unsigned port = m->ports[p].first; port <= m->ports[p].last; port++) {
				if (m->service)
					dns_records_add_srv(r, m->service, (uint16_t)port,
							    m->ports[p].proto, NULL);
				dns_records_add_srv(r, names[i], (uint16_t)port, m->ports[p].proto,
						    NULL);
			}
	}
	return r;
}

/* ---- the questions ----------------------------------------------------------- */

struct question {
	char name[80];
	uint16_t type;
};
static struct question qs[2048];
static size_t nqs;
static const char *const srcs[] = { "127.0.0.1", "10.90.0.1", "10.91.0.3", "10.92.0.200",
				    "fd92::2", "10.91.0.7", "10.96.0.1" };

static void add_q(const char *name, uint16_t type)
{
	if (nqs < ARRAY_SIZE(qs)) {
		snprintf(qs[nqs].name, sizeof(qs[nqs].name), "%s", name);
		qs[nqs++].type = type;
	}
}

static void make_questions(void)
{
	static const char *const labels[] = { "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8",
		"c9", "c10", "c11", "web", "db-1", "db", "x_y", "WEB", "nope", "vs0", "vs1", "vs2",
		"VS1" };
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_ANY, DNS_T_SRV };
	char s[96];

	for (size_t l = 0; l < ARRAY_SIZE(labels); l++) {
		for (size_t t = 0; t < ARRAY_SIZE(types); t++) {
			snprintf(s, sizeof(s), "%s.berth.internal", labels[l]);
			add_q(s, types[t]);
			add_q(labels[l], types[t]);
		}
		snprintf(s, sizeof(s), "_80._tcp.%s.berth.internal", labels[l]);
		add_q(s, DNS_T_SRV);
		snprintf(s, sizeof(s), "_81._tcp.%s.berth.internal", labels[l]);
		add_q(s, DNS_T_SRV);
		snprintf(s, sizeof(s), "_53._udp.%s.berth.internal", labels[l]);
		add_q(s, DNS_T_ANY);
		snprintf(s, sizeof(s), "_5001._sctp.%s.berth.internal", labels[l]);
		add_q(s, DNS_T_SRV);
		snprintf(s, sizeof(s), "_443._tcp.%s.berth.internal", labels[l]);
		add_q(s, DNS_T_SRV);
		snprintf(s, sizeof(s), "_tcp.%s.berth.internal", labels[l]);
		add_q(s, DNS_T_SRV);
	}
	for (unsigned n = 0; n < NNETS; n++) {
		for (unsigned i = 0; i < 8; i++) {
			snprintf(s, sizeof(s), "%u.0.9%u.10.in-addr.arpa", i + 1, n);
			add_q(s, DNS_T_PTR);
		}
		for (unsigned i = 0; subnets6[n] && i < 5; i++) {
			struct ip_addr a;
			size_t o = 0;

			pool_addr(n, true, i, &a);
			for (int k = 31; k >= 0; k--)
				o += (size_t)snprintf(s + o, sizeof(s) - o, "%x.",
						      k % 2 ? a.b[k / 2] & 0xf : a.b[k / 2] >> 4);
			snprintf(s + o, sizeof(s) - o, "ip6.arpa");
			add_q(s, DNS_T_PTR);
		}
	}
	for (unsigned i = 0; i < 5; i++) {   /* the VIP pool and a free address of the range */
		snprintf(s, sizeof(s), "%u.0.96.10.in-addr.arpa", i);
		add_q(s, i % 2 ? DNS_T_PTR : DNS_T_ANY);
	}
	add_q("2.0.90.10.in-addr.arpa", DNS_T_ANY);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(s, sizeof(s), "%u.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.d.f."
			 "ip6.arpa", i);
		add_q(s, DNS_T_PTR);
	}
	add_q("0.96.10.in-addr.arpa", DNS_T_PTR);
	add_q("berth.internal", DNS_T_SOA);
	add_q("berth.internal", DNS_T_NS);
}

/* Ask both sets question i from source src; 0 when the replies are the same
 * bytes (and the same action). */
static int compare_one(struct dns_records *a, struct dns_records *b, size_t i, size_t src,
		       uint32_t rotate, int edns)
{
	uint8_t q[512], o1[DNS_MSG_MAX], o2[DNS_MSG_MAX];
	struct ip_addr s, local;
	struct dns_ctx c1 = { .rec = a, .src = &s, .local = &local, .rotate = rotate,
			      .stats = &st };
	struct dns_ctx c2 = c1;
	struct dns_query d1, d2;
	size_t len = mkquery(q, qs[i].name, qs[i].type, edns), l1 = 0, l2 = 0;
	enum dns_action a1, a2;

	ip_parse(srcs[src], &s, NULL);
	ip_parse("10.90.0.254", &local, NULL);
	c2.rec = b;
	a1 = dns_answer(&c1, q, len, &d1, o1, sizeof(o1), &l1);
	a2 = dns_answer(&c2, q, len, &d2, o2, sizeof(o2), &l2);
	if (a1 == a2 && (a1 != DNS_REPLY || (l1 == l2 && !memcmp(o1, o2, l1))))
		return 0;
	printf("#   differs: %s type %u from %s rotate %u edns %d\n", qs[i].name, qs[i].type,
	       srcs[src], rotate, edns);
	return 1;
}

static int compare_all(struct dns_records *live, struct dns_records *fresh)
{
	int diff = 0;

	fresh->serial = live->serial;
	for (size_t i = 0; i < nqs && diff < 5; i++)
		for (size_t s = 0; s < ARRAY_SIZE(srcs); s++)
			for (uint32_t rot = 0; rot < 2; rot++)
				diff += compare_one(live, fresh, i, s, rot, rot ? 1232 : 0);
	return diff;
}

static int compare_some(struct dns_records *live, struct dns_records *fresh, unsigned n)
{
	int diff = 0;

	fresh->serial = live->serial;
	for (unsigned k = 0; k < n && diff < 5; k++)
		diff += compare_one(live, fresh, rnd((uint32_t)nqs), rnd(ARRAY_SIZE(srcs)), rnd(3),
				    rnd(2) ? 1232 : 0);
	return diff;
}

/* ---- what a user sees ------------------------------------------------------------ */

static int ask(struct dns_records *r, const char *name, uint16_t t, char *first, size_t n)
{
	uint8_t q[512], out[DNS_MSG_MAX];
	struct ip_addr s, local;
	struct dns_ctx c = { .rec = r, .src = &s, .local = &local, .stats = &st };
	struct dns_query dq;
	size_t len = mkquery(q, name, t, 0), ol = 0, p = DNS_HDR_LEN, nl;
	uint8_t nb[DNS_NAME_MAX];
	struct dns_rr rr;

	ip_parse("127.0.0.1", &s, NULL);
	ip_parse("10.90.0.254", &local, NULL);
	*first = 0;
	if (dns_answer(&c, q, len, &dq, out, sizeof(out), &ol) != DNS_REPLY)
		return -1;
	if (dns_get16(out + 6) && dns_name_read(out, ol, &p, nb, &nl) == 0 && (p += 4) &&
	    dns_rr_read(out, ol, &p, &rr) == 0) {
		if (rr.type == DNS_T_A)
			inet_ntop(AF_INET, out + rr.rdata, first, (socklen_t)n);
		else if (rr.type == DNS_T_PTR || rr.type == DNS_T_SRV) {
			size_t at = rr.rdata + (rr.type == DNS_T_SRV ? 6 : 0);

			dns_name_read(out, ol, &at, nb, &nl);
			dns_name_str(nb, first, n);
		}
	}
	return out[3] & 0xf;
}

static void user_visible(void)
{
	struct dns_records *r = empty_set();
	struct dns_ctr_net net = { .network = "n0", .naddrs = 1 };
	struct dns_ctr_ports http = { 80, 80, "tcp" };
	struct dns_ctr c = { .name = "web1", .service = "web", .nets = &net, .nnets = 1,
			     .ports = &http, .nports = 1 };
	struct err e = { 0 };
	char got[300];

	ip_parse("10.90.0.5", &net.addrs[0], NULL);
	T_EQ(dns_records_set_container(r, &c, &e), 0, "a container is set");
	T_EQ(ask(r, "web1.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NOERROR,
	     "its name resolves");
	T_STREQ(got, "10.90.0.5", "to its address");
	ask(r, "5.0.90.10.in-addr.arpa", DNS_T_PTR, got, sizeof(got));
	T_STREQ(got, "web1.berth.internal.", "its address has its PTR");
	ask(r, "_80._tcp.web.berth.internal", DNS_T_SRV, got, sizeof(got));
	T_STREQ(got, "web1.berth.internal.", "its service has the SRV of its port");

	c.service = "api";
	T_EQ(dns_records_set_container(r, &c, &e), 0, "its service renamed");
	T_EQ(ask(r, "web.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "the old service name is NXDOMAIN at once");
	T_EQ(ask(r, "_80._tcp.web.berth.internal", DNS_T_SRV, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "and its SRV");
	ask(r, "api.berth.internal", DNS_T_A, got, sizeof(got));
	T_STREQ(got, "10.90.0.5", "the new one resolves");
	ask(r, "_80._tcp.api.berth.internal", DNS_T_SRV, got, sizeof(got));
	T_STREQ(got, "web1.berth.internal.", "with the SRV");

	ip_parse("10.90.0.6", &net.addrs[0], NULL);
	T_EQ(dns_records_set_container(r, &c, &e), 0, "its address changed");
	T_EQ(ask(r, "5.0.90.10.in-addr.arpa", DNS_T_PTR, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "the old address's PTR is NXDOMAIN");
	ask(r, "6.0.90.10.in-addr.arpa", DNS_T_PTR, got, sizeof(got));
	T_STREQ(got, "web1.berth.internal.", "the new one's is the container");

	T_EQ(dns_records_remove_container(r, "WEB1"), 0, "removed (any case)");
	T_EQ(ask(r, "web1.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "its name is NXDOMAIN at once");
	T_EQ(ask(r, "6.0.90.10.in-addr.arpa", DNS_T_PTR, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "its PTR too");
	T_EQ(ask(r, "api.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "its service too (it was the only member)");
	T_EQ(dns_records_remove_container(r, "web1"), -ENOENT, "removing it again: ENOENT");
	T_EQ(r->nodes_live, 0, "no name is left behind");
	T_EQ(r->naddr_tab, 0, "no address is left behind");

	c.name = "a.b";
	T_EQ(dns_records_set_container(r, &c, &e), -EINVAL, "a dotted name is refused");
	c.name = "web1";
	net.network = "nonet";
	T_EQ(dns_records_set_container(r, &c, &e), -ENOENT, "an unknown network is refused");
	T_STREQ(e.msg, "DNS: container 'web1': unknown network 'nonet'", "naming both");
	T_EQ(r->nodes_live, 0, "a refused container leaves nothing");
	dns_records_free(r);
}

/* A set holds at most 65535 names, services counted: past that a service is
 * refused with ENOSPC, the names already there keep answering, and room
 * made by a removal is room again. */
static void service_limits(void)
{
	struct dns_records *r = empty_set();
	struct dns_service sv = { .network = "n1", .nvips = 1 };
	struct dns_ctr_ports p = { 80, 80, "tcp" };
	struct err e = { 0 };
	char name[32], got[300];
	unsigned n = 0;
	size_t mem0 = dns_records_memory(r);
	int rc;

	sv.name = name;
	sv.ports = &p;
	sv.nports = 1;
	for (;;) {
		snprintf(name, sizeof(name), "s%u", n);
		ip_from_v4(&sv.vips[0], 0x0b000000u + n);
		rc = dns_records_set_service(r, &sv, &e);
		if (rc < 0 || n > 70000)
			break;
		n++;
	}
	T_EQ(rc, -ENOSPC, "services are set until the set is full, then ENOSPC");
	T_OK(n >= 65534 && n <= 65535, "after %u names", n);
	T_STREQ(e.msg, "DNS: service 's65534': no room for its names (the set holds as many names "
		"as it can)", "saying so");
	T_OK(dns_records_memory(r) > mem0 + (size_t)n * 40, "their memory is counted (%zu bytes)",
	     dns_records_memory(r));
	T_EQ(ask(r, "s65534.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "the refused one has no name");
	ask(r, "s65533.berth.internal", DNS_T_A, got, sizeof(got));
	T_STREQ(got, "11.0.255.253", "the last one set resolves");
	ask(r, "_80._tcp.s0.berth.internal", DNS_T_SRV, got, sizeof(got));
	T_STREQ(got, "s0.berth.internal.", "the first one's SRV is still there");
	T_EQ(dns_records_remove_service(r, "s7"), 0, "one removed");
	T_EQ(dns_records_set_service(r, &sv, &e), 0, "and the refused one fits now");
	ask(r, "254.255.0.11.in-addr.arpa", DNS_T_PTR, got, sizeof(got));
	T_STREQ(got, "s65534.berth.internal.", "its VIP has its PTR");
	dns_records_free(r);
}

/* The guard holds whichever comes first: a container's name (or its
 * `service =`) and a VIP service's name never meet in one node. */
static void service_guard(void)
{
	struct dns_records *r = empty_set();
	struct dns_ctr_net net = { .network = "n0", .naddrs = 1 };
	struct dns_ctr c = { .name = "web1", .service = "grp", .nets = &net, .nnets = 1 };
	struct dns_service sv = { .name = "web1", .network = "n0", .nvips = 1 };
	struct err e = { 0 };
	char got[300];

	ip_parse("10.90.0.5", &net.addrs[0], NULL);
	ip_parse("10.96.0.9", &sv.vips[0], NULL);
	dns_records_set_container(r, &c, NULL);
	T_EQ(dns_records_set_service(r, &sv, &e), -EEXIST, "container first, then a service of its "
	     "name: EEXIST");
	sv.name = "GRP";
	T_EQ(dns_records_set_service(r, &sv, &e), -EEXIST, "nor of its group's name");
	dns_records_remove_container(r, "web1");
	T_EQ(dns_records_set_service(r, &sv, &e), 0, "the group gone, the name is free");
	T_EQ(dns_records_set_container(r, &c, &e), -EEXIST, "service first: the container whose "
	     "group it would be is refused");
	T_EQ(ask(r, "web1.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "and has no name");
	ask(r, "grp.berth.internal", DNS_T_A, got, sizeof(got));
	T_STREQ(got, "10.96.0.9", "the service answers its VIP, not the container's address");
	dns_records_add_srv(r, "grp", 443, "tcp", NULL);
	T_EQ(dns_records_remove_service(r, "grp"), 0, "removed");
	T_EQ(ask(r, "grp.berth.internal", DNS_T_A, got, sizeof(got)), DNS_R_NXDOMAIN,
	     "NXDOMAIN at once, though a static SRV of the name stays");
	T_EQ(ask(r, "9.0.96.10.in-addr.arpa", DNS_T_PTR, got, sizeof(got)), -1,
	     "its VIP's PTR is forwarded again");
	dns_records_free(r);
}

/* The cost of one change does not depend on how many containers the set has:
 * set and remove one container among 300, then among 3,000 (CPU time, so
 * that other processes on the machine do not count). */
static double change_us(unsigned n)
{
	struct dns_records *r = empty_set();
	struct dns_ctr_net net = { .network = "n1", .naddrs = 1 };
	struct dns_ctr c = { .nets = &net, .nnets = 1 };
	struct timespec t0, t1;
	char name[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "ctr-%u", i);
		c.name = name;
		c.service = i % 10 ? NULL : "svc";
		ip_from_v4(&net.addrs[0], 0x0a000000u + i);
		dns_records_set_container(r, &c, NULL);
	}
	c.name = "extra";
	c.service = NULL;
	ip_from_v4(&net.addrs[0], 0x0b000001u);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (int k = 0; k < 2000; k++) {
		dns_records_set_container(r, &c, NULL);
		dns_records_remove_container(r, "extra");
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	dns_records_free(r);
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 2000 / 1e3;
}

int main(void)
{
	struct dns_records *live = empty_set();
	int diff_some = 0, diff_full = 0, refused = 0, fulls = 0;
	unsigned ops = 1500, sets = 0, removes = 0, svc_sets = 0, svc_removes = 0;

	user_visible();
	service_guard();
	service_limits();
	make_questions();
	for (unsigned op = 0; op < ops; op++) {
		unsigned i = rnd(NNAMES), what = rnd(10);
		struct dns_records *fresh;

		if (rnd(4) == 0) {          /* a service instead */
			unsigned k = rnd(NSVCS);
			struct dns_service sv;

			if (what < 5 || !smodel[k].present) {
				random_svc(&smodel[k]);
				sv = describe_svc(k);
				refused += dns_records_set_service(live, &sv, NULL) < 0;
				svc_sets++;
			} else if (what < 8) {
				refused += dns_records_remove_service(live, svcnames[k]) != 0;
				smodel[k].present = false;
				svc_removes++;
			} else {
				sv = describe_svc(k);   /* the same again */
				refused += dns_records_set_service(live, &sv, NULL) < 0;
				svc_sets++;
			}
		} else if (what < 6 || (what < 8 && !model[i].present)) {
			struct dns_ctr c;

			random_ctr(&model[i]);
			c = describe(i);
			refused += dns_records_set_container(live, &c, NULL) < 0;
			sets++;
		} else if (what < 9) {
			int rc = dns_records_remove_container(live, names[i]);

			if (rc != (model[i].present ? 0 : -ENOENT))
				refused++;
			model[i].present = false;
			removes++;
		} else if (model[i].present) {
			struct dns_ctr c = describe(i);   /* the same again */

			refused += dns_records_set_container(live, &c, NULL) < 0;
			sets++;
		}
		fresh = from_scratch(op % 2);
		diff_some += compare_some(live, fresh, 200);
		if (op % 100 == 99) {
			diff_full += compare_all(live, fresh);
			fulls++;
		}
		dns_records_free(fresh);
	}
	T_EQ(refused, 0, "%u sets and %u removes (of present and absent containers), %u sets and %u "
	     "removes of services with VIPs, all as expected", sets, removes, svc_sets, svc_removes);
	T_EQ(diff_some, 0, "after each of %u changes, 200 random queries answered byte for byte as "
	     "by a set built from scratch", ops);
	T_EQ(diff_full, 0, "and every one of %zu queries x %zu sources x 2, %d times", nqs,
	     ARRAY_SIZE(srcs), fulls);
	for (unsigned i = 0; i < NNAMES; i++)
		if (model[i].present)
			dns_records_remove_container(live, names[i]);
	for (unsigned i = 0; i < NSVCS; i++)
		if (smodel[i].present)
			dns_records_remove_service(live, svcnames[i]);
	T_EQ(live->nodes_live, 0, "every container and service removed: no name left");
	T_EQ(live->naddr_tab, 0, "no address left");
	T_EQ(live->keys_len - live->keys_dead, 0, "no label left");
	dns_records_free(live);

	{
		double small = change_us(300), big = change_us(3000);

		printf("# set + remove one container: %.2f us among 300, %.2f us among 3000\n", small,
		       big);
		T_OK(big < small * 4 + 5, "a change costs the same among 3,000 containers as among 300");
	}
	return t_done();
}
