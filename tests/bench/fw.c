/* fw.c - firewall benchmarks (tests/bench/fw.sh runs them in a sandbox).
 *
 *   fw update N        table inet berth with N selected containers; time a
 *                      label change (one container to a new label set: map
 *                      elements and that set's chains) and a second policy
 *                      selecting all N added and removed (its chains and
 *                      the label set's), p50/p99 over 50 runs
 *   fw load POLICIES CONTAINERS SERVER CLIENT
 *                      load POLICIES policies over CONTAINERS containers;
 *                      the last policy selects SERVER and lets CLIENT in
 *                      on every TCP port; stays until killed
 *   fw rr SECONDS ADDR PORT     TCP request/response and connect rate to
 *                      ADDR:PORT (a server `fw serve PORT` in another netns)
 *   fw serve PORT
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "net/fw.h"
#include "net/nat.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void addr4(struct ip_addr *a, uint32_t host_order)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->b[0] = (uint8_t)(host_order >> 24);
	a->b[1] = (uint8_t)(host_order >> 16);
	a->b[2] = (uint8_t)(host_order >> 8);
	a->b[3] = (uint8_t)host_order;
}

static struct fw_port any_tcp = { IPPROTO_TCP, true, 0, 0 }, any_udp = { IPPROTO_UDP, true, 0, 0 };

/*
 * A model: n_ctr containers 10.78.0.0 + i (the first two may be given
 * addresses), n_pol policies; policy i selects set i (n_ctr / n_pol
 * containers each: labels group=i) and allows ingress from set n_pol (the
 * "clients": container 1, which also has the label role=client). With
 * extra, one more policy selects set 0 too and lets the clients in on UDP.
 */
static void build(struct fw_model *m, size_t n_ctr, size_t n_pol, bool extra, const char *server,
		  const char *client)
{
	static struct fw_network net = { .name = "bench", .bridge = "br-bench" };

	memset(m, 0, sizeof(*m));
	m->networks = malloc(sizeof(net));
	*m->networks = net;
	m->n_networks = 1;
	m->containers = calloc(n_ctr, sizeof(*m->containers));
	m->ifaces = calloc(n_ctr, sizeof(*m->ifaces));
	m->n_ifaces = n_ctr;
	m->sets = calloc(n_pol + 1, sizeof(*m->sets));
	m->policies = calloc(n_pol + 1, sizeof(*m->policies));
	for (size_t i = 0; i <= n_pol; i++) {
		char what[32];

		snprintf(what, sizeof(what), i < n_pol ? "group=%zu" : "role=client", i);
		m->sets[i].what = strdup(what);
	}
	m->n_sets = n_pol + 1;
	for (size_t i = 0; i < n_ctr; i++) {
		struct fw_container *c = &m->containers[i];
		struct fw_iface *fi = &m->ifaces[i];
		char *name = malloc(16);
		size_t group;

		/* eth0 of container X is the host's bh-X: fw.sh names the two
		 * real veths bh-srv and bh-cli */
		snprintf(name, 16, "c%u", (unsigned)(i % 1000000));
		if (i == 0 && server)
			snprintf(name, 16, "srv");
		if (i == 1 && client)
			snprintf(name, 16, "cli");
		c->name = name;
		c->ifs = fi;
		c->n_ifs = 1;
		snprintf(fi->ifname, sizeof(fi->ifname), "eth0");
		fi->n_addrs = 1;
		if (i == 0 && server)
			ip_parse(server, &fi->addrs[0], NULL);
		else if (i == 1 && client)
			ip_parse(client, &fi->addrs[0], NULL);
		else
			addr4(&fi->addrs[0], (10u << 24 | 78u << 16) + (uint32_t)i);
		/* the server in the last policy */
		group = !n_pol ? 0 : i == 0 && server ? n_pol - 1 : i % n_pol;
		fw_set_add_addr(&m->sets[group], &fi->addrs[0]);
		if (i == 1)
			fw_set_add_addr(&m->sets[n_pol], &fi->addrs[0]);
		c->identity = 2 * (group + 1) + (i == 1);
	}
	m->n_containers = n_ctr;
	for (size_t i = 0; i < n_pol; i++) {
		struct fw_policy *p = &m->policies[i];
		char *name = malloc(16);

		snprintf(name, 16, "p%u", (unsigned)(i % 1000000));
		p->name = name;
		p->file = "bench";
		p->select = (unsigned)i;
		p->isolates = p->has_rules = FW_INGRESS;
		p->rules = calloc(1, sizeof(*p->rules));
		p->rules[0] = (struct fw_rule){ .dir = FW_INGRESS, .name = "clients", .n_ports = 1,
						.ports = &any_tcp };
		p->rules[0].peers = calloc(1, sizeof(struct fw_peer));
		p->rules[0].peers[0] = (struct fw_peer){ .kind = FW_PEER_SET, .set = (unsigned)n_pol };
		p->rules[0].n_peers = 1;
		p->n_rules = 1;
	}
	m->n_policies = n_pol;
	if (extra) {
		struct fw_policy *p = &m->policies[m->n_policies++];

		*p = m->policies[0];
		p->name = strdup("extra");
		p->rules = calloc(1, sizeof(*p->rules));
		p->rules[0] = m->policies[0].rules[0];
		p->rules[0].ports = &any_udp;
		p->rules[0].peers = calloc(1, sizeof(struct fw_peer));
		p->rules[0].peers[0] = m->policies[0].rules[0].peers[0];
	}
	if (fw_model_finish(m) < 0)
		abort();
}

static struct fw_model live;

static int open_table(struct nat **t, struct nat_part *part)
{
	struct err e = { 0 };

	if (nat_open(t, NULL, NULL, NULL, &e) < 0) {
		fprintf(stderr, "fw: %s\n", e.msg);
		return -1;
	}
	fw_attach(*t, part, &live);
	if (nat_sync(*t, &e) < 0) {
		fprintf(stderr, "fw: %s\n", e.msg);
		return -1;
	}
	return 0;
}

static void report(const char *what, size_t n, double *v, size_t k)
{
	qsort(v, k, sizeof(*v), cmp_double);
	printf("  N=%-5zu %-34s p50 %7.3f ms  p99 %7.3f ms\n", n, what, v[k / 2], v[k * 99 / 100]);
}

static int update(size_t n)
{
	static struct nat_part part;
	struct nat *t;
	struct fw_model m2;
	double lab[50], pol[50];
	struct err e = { 0 };

	build(&live, n, 1, false, NULL, NULL);
	if (open_table(&t, &part) < 0)
		return 1;
	for (int r = 0; r < 50; r++) {
		double t0;
		struct ip_addr a;

		/* a container's labels change: it leaves the selected set */
		build(&m2, n, 1, false, NULL, NULL);
		addr4(&a, (10u << 24 | 78u << 16) + (uint32_t)(r % n));
		for (size_t i = 0; i < m2.sets[0].addrs.n; i++)
			if (ip_equal(&m2.sets[0].addrs.v[i], &a)) {
				memmove(&m2.sets[0].addrs.v[i], &m2.sets[0].addrs.v[i + 1],
					(m2.sets[0].addrs.n - i - 1) * sizeof(a));
				m2.sets[0].addrs.n--;
				break;
			}
		m2.containers[r % n].identity = 1;
		if (fw_model_finish(&m2) < 0)
			abort();
		t0 = now_ms();
		if (fw_apply(t, &live, &m2, &e) < 0 || fw_apply(t, &m2, &live, &e) < 0) {
			fprintf(stderr, "fw: %s\n", e.msg);
			return 1;
		}
		lab[r] = (now_ms() - t0) / 2;
		fw_model_free(&m2);

		/* a second policy selecting all N added, then removed */
		build(&m2, n, 1, true, NULL, NULL);
		t0 = now_ms();
		if (fw_apply(t, &live, &m2, &e) < 0 || fw_apply(t, &m2, &live, &e) < 0) {
			fprintf(stderr, "fw: %s\n", e.msg);
			return 1;
		}
		pol[r] = (now_ms() - t0) / 2;
		fw_model_free(&m2);
	}
	report("label change (map elements)", n, lab, 50);
	report("policy added or removed (chains)", n, pol, 50);
	fw_remove(t);
	nat_close(t, false);
	return 0;
}

static int load(size_t n_pol, size_t n_elem, const char *server, const char *client)
{
	static struct nat_part part;
	struct nat *t;

	build(&live, n_elem, n_pol, false, server, client);
	if (open_table(&t, &part) < 0)
		return 1;
	printf("loaded\n");
	fflush(stdout);
	pause();
	return 0;
}

static int serve(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 512) < 0)
		return 1;
	signal(SIGCHLD, SIG_IGN);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept(l, NULL, NULL);
		char b;

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (read(c, &b, 1) == 1 && write(c, &b, 1) == 1)
			;
		close(c);
	}
}

static int rr(double seconds, const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	double end;
	long n_rr = 0, n_crr = 0;
	int s, one = 1;
	char b = 'x';
	struct timeval tmo = { 2, 0 };      /* a dropped SYN fails in 2 s, not 2 min */

	inet_pton(AF_INET, addr, &a.sin_addr);
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("connect");
		return 1;
	}
	end = now_ms() + seconds * 1000;
	while (now_ms() < end && write(s, &b, 1) == 1 && read(s, &b, 1) == 1)
		n_rr++;
	close(s);
	end = now_ms() + seconds * 1000;
	while (now_ms() < end) {
		struct linger lg = { 1, 0 };    /* RST: no TIME_WAIT pile-up */

		s = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0 || write(s, &b, 1) != 1 ||
		    read(s, &b, 1) != 1) {
			perror("crr");
			return 1;
		}
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(s);
		n_crr++;
	}
	printf("rr %.0f crr %.0f\n", n_rr / seconds, n_crr / seconds);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "update"))
		return update((size_t)atol(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "load"))
		return load((size_t)atol(argv[2]), (size_t)atol(argv[3]), argv[4], argv[5]);
	if (argc == 5 && !strcmp(argv[1], "rr"))
		return rr(atof(argv[2]), argv[3], atoi(argv[4]));
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]));
	fprintf(stderr, "usage: fw update N | load POLICIES ELEMENTS SERVER CLIENT | rr SECONDS ADDR PORT"
		" | serve PORT\n");
	return 2;
}
