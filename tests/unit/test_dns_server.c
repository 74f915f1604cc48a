/* test_dns_server.c - dns/ server API on the caller's loop: listen/unlisten,
 * errors that name the address, a UDP query answered, records swapped;
 * upstream health (a dead first upstream costs one timeout, and is used again
 * once back); accept() without a descriptor left does not spin; answers sent
 * together with UDP GSO arrive one datagram each, and a kernel that refuses
 * UDP_SEGMENT still gets them all. */
#include "dns/dns.h"
#include "t.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A free port on 127.0.0.1 (bound and closed: good enough for a test). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sl) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A query for name (A, RD) with ID 0x1234; returns its length. */
static size_t build_query(uint8_t *q, const char *name)
{
	size_t n = 12;

	memset(q, 0, 300);
	q[0] = 0x12;
	q[1] = 0x34;
	q[2] = 1;
	q[5] = 1;
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		q[n++] = (uint8_t)len;
		memcpy(q + n, p, len);
		n += len;
		p += len + (dot ? 1 : 0);
	}
	q[n++] = 0;
	q[n++] = 0;
	q[n++] = 1;
	q[n++] = 0;
	q[n++] = 1;
	return n;
}

/* An answer as text: the first A record, or an RCODE name. */
static const char *answer_str(const uint8_t *a, ssize_t got, char *buf)
{
	if (got < 12)
		return "no answer";
	if ((a[3] & 0xf) == 3)
		return "NXDOMAIN";
	if ((a[3] & 0xf) == 2)
		return "SERVFAIL";
	if (got < 4 || a[7] == 0)
		return "empty";
	snprintf(buf, 32, "%u.%u.%u.%u", a[got - 4], a[got - 3], a[got - 2], a[got - 1]);
	return buf;
}

/* Ask name (A) on 127.0.0.1:port over UDP, running the loop until the
 * answer comes (at most 2 s); returns the first A record as text, or an
 * RCODE name. */
static const char *ask(struct loop *l, uint16_t port, const char *name, char *buf)
{
	uint8_t q[300], a[600];
	size_t n = build_query(q, name);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ssize_t got = -1;

	sendto(fd, q, n, 0, (struct sockaddr *)&sa, sizeof(sa));
	for (int i = 0; i < 100 && got < 0; i++) {
		loop_run_once(l, 20);
		got = recv(fd, a, sizeof(a), 0);
	}
	close(fd);
	return answer_str(a, got, buf);
}

static struct dns_records *records(const char *name, const char *ip)
{
	struct dns_records *r = dns_records_new("berth.internal", 5, NULL);
	struct ip_prefix p;
	struct ip_addr a;

	ip_prefix_parse("10.88.0.0/16", &p, NULL);
	dns_records_add_network(r, "default", &p, 1, NULL);
	ip_parse(ip, &a, NULL);
	dns_records_add_container(r, name, "default", &a, 1, NULL, NULL);
	return r;
}

/* n queries for name sent at once from two sockets, then the loop run until
 * the answers are in; *whole gets the datagrams that are one whole answer
 * (its query's ID, the question and one A record), *other the rest. */
static void burst(struct loop *l, uint16_t port, const char *name, int n, int *whole, int *other)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd[2] = { socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0),
		      socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0) };
	bool seen[256] = { false };
	uint8_t q[300], a[4096];
	size_t qlen = build_query(q, name);

	*whole = *other = 0;
	for (int i = 0; i < n && i < 256; i++) {
		q[0] = 0;
		q[1] = (uint8_t)i;
		sendto(fd[i % 2], q, qlen, 0, (struct sockaddr *)&sa, sizeof(sa));
	}
	for (int round = 0; round < 100 && *whole + *other < n; round++) {
		loop_run_once(l, 20);
		for (int k = 0; k < 2; k++) {
			ssize_t got;

			while ((got = recv(fd[k], a, sizeof(a), 0)) >= 0) {
				if ((size_t)got == qlen + 16 && a[0] == 0 && !seen[a[1]] &&
				    a[7] == 1 && !memcmp(a + 12, q + 12, qlen - 12)) {
					seen[a[1]] = true;
					(*whole)++;
				} else {
					(*other)++;
				}
			}
		}
	}
	close(fd[0]);
	close(fd[1]);
}

static int gso_refused;
static void gso_log(void *ctx, enum dns_log_level lvl, const char *msg)
{
	(void)ctx;
	(void)lvl;
	gso_refused += strstr(msg, "segmentation offload refused") != NULL;
}

/* Answers to one socket go out together (UDP GSO) and still arrive one
 * datagram each; a kernel that refuses (here: a socket without UDP
 * checksums, which UDP_SEGMENT needs) gets them one by one, none lost. */
static void test_udp_gso(struct loop *l)
{
	struct dns_server *s = dns_server_new(l, &(struct dns_config){ .log = gso_log }, NULL);
	uint16_t port = free_port();
	struct ip_addr lo;
	int whole, other, one = 1, udp_fd = -1;

	ip_parse("127.0.0.1", &lo, NULL);
	dns_server_set_records(s, records("gamma", "10.88.3.3"));
	dns_server_listen(s, &lo, port, NULL);
	burst(l, port, "gamma.berth.internal", 64, &whole, &other);
	T_OK(whole == 64 && other == 0, "64 queries at once from two sockets: 64 whole answers, "
	     "one datagram each (%d, %d other)", whole, other);
	T_EQ(gso_refused, 0, "the kernel took the grouped sends");
	for (int fd = 3; fd < 1024 && udp_fd < 0; fd++) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int type = 0;
		socklen_t tl = sizeof(type);

		if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 && sa.sin_family == AF_INET &&
		    ntohs(sa.sin_port) == port &&
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_DGRAM)
			udp_fd = fd;
	}
	T_OK(udp_fd >= 0 && setsockopt(udp_fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)) == 0,
	     "the listener's UDP socket made to refuse UDP_SEGMENT");
	burst(l, port, "gamma.berth.internal", 64, &whole, &other);
	T_OK(whole == 64 && other == 0, "refused: still 64 whole answers (%d, %d other)", whole,
	     other);
	T_EQ(gso_refused, 1, "the refusal noticed once (then one send per answer)");
	burst(l, port, "gamma.berth.internal", 64, &whole, &other);
	T_OK(whole == 64 && other == 0 && gso_refused == 1, "and the next batches too (%d, %d other)",
	     whole, other);
	dns_server_free(s);
}

/* Run the loop for ms milliseconds; returns the callbacks it ran. */
static long run_for(struct loop *l, unsigned ms)
{
	uint64_t end = loop_now_ms() + ms;
	long n = 0;

	while (loop_now_ms() < end) {
		int r = loop_run_once(l, (int)(end - loop_now_ms()));

		if (r > 0)
			n += r;
	}
	return n;
}

/* A fake upstream on the test's own loop: a UDP socket on 127.0.0.1 that
 * counts the queries it gets and, while on, answers each with A addr. Off,
 * it is a black hole. */
struct fake_up {
	struct loop_fd lf;
	uint16_t port;
	bool on;
	uint8_t addr[4];
	unsigned seen;
};

static void on_fake_up(struct loop_fd *f, uint32_t events)
{
	struct fake_up *u = container_of(f, struct fake_up, lf);
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	uint8_t m[600];
	ssize_t n;
	size_t p = 12;

	(void)events;
	while ((n = recvfrom(f->fd, m, 512, 0, (struct sockaddr *)&peer, &pl)) >= 12) {
		u->seen++;
		if (!u->on)
			continue;
		while (p < (size_t)n && m[p])
			p += 1 + m[p];
		p += 5;             /* root label, type, class */
		m[2] = 0x81;        /* QR RD, RA NOERROR */
		m[3] = 0x80;
		m[6] = 0, m[7] = 1, m[8] = 0, m[9] = 0, m[10] = 0, m[11] = 0;
		memcpy(m + p, "\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4", 12);
		memcpy(m + p + 12, u->addr, 4);
		sendto(f->fd, m, p + 16, 0, (struct sockaddr *)&peer, pl);
		p = 12;
	}
}

static void fake_up_open(struct loop *l, struct fake_up *u, const uint8_t addr[4], bool on)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(u, 0, sizeof(*u));
	memcpy(u->addr, addr, 4);
	u->on = on;
	u->lf.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	u->lf.cb = on_fake_up;
	bind(u->lf.fd, (struct sockaddr *)&sa, sl);
	getsockname(u->lf.fd, (struct sockaddr *)&sa, &sl);
	u->port = ntohs(sa.sin_port);
	loop_fd_add(l, &u->lf, EPOLLIN, NULL);
}

static void fake_up_close(struct loop *l, struct fake_up *u)
{
	loop_fd_del(l, &u->lf);
	close(u->lf.fd);
}

/* What the server logged, one line each. */
static char logged[4096];

static void log_to_buffer(void *ctx, enum dns_log_level lvl, const char *msg)
{
	size_t n = strlen(logged);

	(void)ctx;
	(void)lvl;
	snprintf(logged + n, sizeof(logged) - n, "%s\n", msg);
}

static unsigned count_lines(const char *needle)
{
	unsigned n = 0;

	for (const char *p = logged; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_upstream_health(struct loop *l)
{
	static const uint8_t live_addr[4] = { 192, 0, 2, 44 }, back_addr[4] = { 192, 0, 2, 33 };
	struct dns_config cfg = { .upstream_timeout_ms = 300, .log = log_to_buffer };
	struct fake_up hole, live;
	struct dns_upstream ups[DNS_MAX_UPSTREAMS + 1];
	struct dns_upstream_health h;
	struct dns_server *s;
	struct dns_stats st;
	struct ip_addr lo;
	struct err e = { 0 };
	uint16_t port = free_port();
	uint64_t t0, worst = 0;
	char buf[32], name[32], want[128];
	bool all_live = true;

	logged[0] = '\0';
	ip_parse("127.0.0.1", &lo, NULL);
	fake_up_open(l, &hole, back_addr, false);
	fake_up_open(l, &live, live_addr, true);
	s = dns_server_new(l, &cfg, &e);
	memset(ups, 0, sizeof(ups));
	for (size_t i = 0; i < ARRAY_SIZE(ups); i++)
		ups[i].addr = lo;
	ups[0].port = hole.port;
	ups[1].port = live.port;
	T_EQ(dns_server_set_upstreams(s, ups, ARRAY_SIZE(ups), &e), -EINVAL,
	     "more than DNS_MAX_UPSTREAMS upstreams: EINVAL");
	T_EQ(dns_server_set_upstreams(s, ups, 2, &e), 0, "two upstreams: a black hole, then a live one");
	T_EQ(dns_server_listen(s, &lo, port, &e), 0, "listen on 127.0.0.1:%u", port);

	t0 = loop_now_ms();
	T_STREQ(ask(l, port, "first.example", buf), "192.0.2.44",
		"first lookup: the second upstream answers");
	T_OK(loop_now_ms() - t0 >= 300, "... after the black hole's timeout (%llu ms)",
	     (unsigned long long)(loop_now_ms() - t0));
	T_EQ(dns_server_upstream_health(s, 0, &h), 0, "the black hole's health");
	T_OK(h.down && h.timeouts == 1, "it is down after one timeout");
	snprintf(want, sizeof(want), "dns: upstream 127.0.0.1:%u does not answer", hole.port);
	T_EQ(count_lines(want), 1, "the log says so, once");
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "next%d.example", i);
		t0 = loop_now_ms();
		all_live &= !strcmp(ask(l, port, name, buf), "192.0.2.44");
		if (loop_now_ms() - t0 > worst)
			worst = loop_now_ms() - t0;
	}
	T_OK(all_live && worst < 100, "five more uncached lookups: the live upstream at once "
	     "(slowest %llu ms)", (unsigned long long)worst);
	T_EQ(hole.seen, 1, "the black hole was asked once");
	T_EQ(dns_server_upstream_health(s, 1, &h), 0, "the live one's health");
	T_OK(!h.down && h.answers == 6 && h.srtt_ms < 100, "it answered 6, smoothed RTT < 100 ms");
	T_EQ(dns_server_upstream_health(s, 2, &h), -ENOENT, "no third upstream");

	/* it comes back: the first lookup after the back-off window still goes
	 * to the live one, and probes the first in the background */
	hole.on = true;
	run_for(l, 1100);
	T_STREQ(ask(l, port, "probe.example", buf), "192.0.2.44",
		"after the window: answered by the live upstream, no waiting");
	run_for(l, 50);
	dns_server_stats(s, &st);
	T_EQ(st.upstream_probes, 1, "one probe went to the first upstream");
	T_OK(dns_server_upstream_health(s, 0, &h) == 0 && !h.down, "it answered: up again");
	snprintf(want, sizeof(want), "dns: upstream 127.0.0.1:%u answers again", hole.port);
	T_EQ(count_lines(want), 1, "the log says so");
	T_STREQ(ask(l, port, "again.example", buf), "192.0.2.33", "the first upstream is used again");

	/* down again; the same list set again (a reload) keeps what we know */
	hole.on = false;
	T_STREQ(ask(l, port, "down.example", buf), "192.0.2.44", "it goes silent: one more timeout");
	T_EQ(dns_server_set_upstreams(s, ups, 2, &e), 0, "the same upstreams set again");
	T_OK(dns_server_upstream_health(s, 0, &h) == 0 && h.down, "the first is still known down");
	t0 = loop_now_ms();
	T_STREQ(ask(l, port, "after-reload.example", buf), "192.0.2.44", "... and skipped");
	T_OK(loop_now_ms() - t0 < 100, "... at once (%llu ms)", (unsigned long long)(loop_now_ms() - t0));
	ups[0] = ups[1];
	T_EQ(dns_server_set_upstreams(s, ups, 1, &e), 0, "the black hole leaves the list");
	T_STREQ(ask(l, port, "one.example", buf), "192.0.2.44", "the live one answers alone");
	dns_server_free(s);
	fake_up_close(l, &hole);
	fake_up_close(l, &live);
}

/* With no descriptor left, a queued TCP connection must not make the loop
 * call accept() again and again: it pauses, says so once, and serves the
 * client once descriptors are free. */
static void test_accept_emfile(struct loop *l)
{
	struct dns_config cfg = { .log = log_to_buffer };
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct rlimit old, low;
	struct dns_server *s;
	struct ip_addr lo;
	struct err e = { 0 };
	uint16_t port = free_port();
	int fill[1024], nfill = 0, c, fd;
	uint8_t q[302], a[600];
	size_t n;
	ssize_t got = -1;
	long calls;
	char buf[32], want[128];

	logged[0] = '\0';
	ip_parse("127.0.0.1", &lo, NULL);
	s = dns_server_new(l, &cfg, &e);
	T_EQ(dns_server_listen(s, &lo, port, &e), 0, "listen on 127.0.0.1:%u", port);
	dns_server_set_records(s, records("alpha", "10.88.1.1"));
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* use up every descriptor under a soft limit of 256 */
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = 256;
	T_OK(setrlimit(RLIMIT_NOFILE, &low) == 0, "soft descriptor limit 256");
	while (nfill < (int)ARRAY_SIZE(fill) && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fill[nfill++] = fd;
	T_OK(errno == EMFILE, "every descriptor taken (%d opened)", nfill);
	sa.sin_port = htons(port);
	T_OK(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0, "a client connects (queued)");
	calls = run_for(l, 1000);
	T_OK(calls < 30, "one second at EMFILE: %ld loop callbacks (no spinning)", calls);
	snprintf(want, sizeof(want), "dns: cannot accept TCP connections on 127.0.0.1:%u: %s (EMFILE)",
		 port, strerror(EMFILE));
	T_EQ(count_lines(want), 1, "said once in the log");
	while (nfill)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &old);
	n = build_query(q + 2, "alpha.berth.internal");
	q[0] = 0;
	q[1] = (uint8_t)n;
	send(c, q, n + 2, MSG_NOSIGNAL);
	fcntl(c, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 100 && got < 0; i++) {
		loop_run_once(l, 20);
		got = recv(c, a, sizeof(a), 0);
	}
	T_STREQ(got > 2 ? answer_str(a + 2, got - 2, buf) : "no answer", "10.88.1.1",
		"descriptors free: the queued client is answered over TCP");
	snprintf(want, sizeof(want), "dns: accepting TCP connections on 127.0.0.1:%u again", port);
	T_EQ(count_lines(want), 1, "the log says it accepts again");
	close(c);
	dns_server_free(s);
}

int main(void)
{
	struct loop l;
	struct err e = { 0 };
	struct dns_server *s;
	struct ip_addr lo;
	struct dns_stats st;
	uint16_t port = free_port();
	char buf[32], want[128];
	int blocker;

	T_OK(port != 0, "found a free port on 127.0.0.1 (%u)", port);
	T_OK(loop_init(&l, &e) == 0, "loop_init");
	s = dns_server_new(&l, NULL, &e);
	T_OK(s != NULL, "dns_server_new");
	ip_parse("127.0.0.1", &lo, NULL);
	dns_server_set_records(s, records("alpha", "10.88.1.1"));
	T_EQ(dns_server_listen(s, &lo, port, &e), 0, "listen on 127.0.0.1:%u", port);
	T_STREQ(ask(&l, port, "alpha.berth.internal", buf), "10.88.1.1", "a UDP query is answered");
	dns_server_set_records(s, records("beta", "10.88.2.2"));
	T_STREQ(ask(&l, port, "beta.berth.internal", buf), "10.88.2.2", "new records answer at once");
	T_STREQ(ask(&l, port, "alpha.berth.internal", buf), "NXDOMAIN", "old names are gone");
	T_STREQ(ask(&l, port, "example.com", buf), "SERVFAIL", "no upstream: SERVFAIL");
	dns_server_stats(s, &st);
	T_EQ(st.queries, 4, "4 queries counted");
	T_EQ(st.nxdomain, 1, "1 NXDOMAIN counted");
	T_EQ(st.servfail, 1, "1 SERVFAIL counted");

	T_EQ(dns_server_listen(s, &lo, port, &e), -EEXIST, "listening twice on one address: EEXIST");
	snprintf(want, sizeof(want), "listen on 127.0.0.1:%u: already listening", port);
	T_STREQ(e.msg, want, "the error names the address");
	T_EQ(dns_server_unlisten(s, &lo, port), 0, "unlisten");
	T_EQ(dns_server_unlisten(s, &lo, port), -ENOENT, "unlisten again: ENOENT");
	T_STREQ(ask(&l, port, "beta.berth.internal", buf), "no answer", "no answer after unlisten");
	T_EQ(dns_server_listen(s, &lo, port, &e), 0, "the port is free again after unlisten");
	dns_server_unlisten(s, &lo, port);

	/* someone else holds the UDP port */
	blocker = socket(AF_INET, SOCK_DGRAM, 0);
	{
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		T_OK(bind(blocker, (struct sockaddr *)&sa, sizeof(sa)) == 0, "another socket takes the port");
	}
	T_EQ(dns_server_listen(s, &lo, port, &e), -EADDRINUSE, "port in use: EADDRINUSE");
	snprintf(want, sizeof(want), "listen on 127.0.0.1:%u/udp: %s (EADDRINUSE)", port,
		 strerror(EADDRINUSE));
	T_STREQ(e.msg, want, "the error names address, port and protocol");
	close(blocker);
	{
		struct ip_addr v6;
		ip_parse("::1", &v6, NULL);
		e.msg[0] = '\0';
		if (dns_server_listen(s, &v6, port, &e) == 0) {
			T_OK(1, "IPv6 listener on [::1]:%u", port);
			dns_server_unlisten(s, &v6, port);
		} else {
			snprintf(want, sizeof(want), "listen on [::1]:%u/", port);
			T_OK(!strncmp(e.msg, want, strlen(want)), "IPv6 errors are bracketed: %s", e.msg);
		}
	}
	dns_server_free(s);
	test_udp_gso(&l);
	test_upstream_health(&l);
	test_accept_emfile(&l);
	loop_free(&l);
	return t_done();
}
