/* dns_serve.c - a harness around dns/: serve a record file on given addresses
 * until SIGTERM, re-reading the file on SIGHUP.
 *
 *   dns_serve -f FILE [-l ADDR[:PORT]]... [-u ADDR[:PORT]]... [-t UPSTREAM_TIMEOUT_MS]
 *             [-c CACHE_ENTRIES] [-i TCP_IDLE_MS] [-n TCP_MAX_CONNS]
 *
 * ADDR is 127.0.0.1 or ::1 or [::1]:5353; PORT defaults to 53. Prints "ready"
 * once listening, "reloaded" after each SIGHUP (or "reload failed: ..." on
 * stderr, keeping the old records), on SIGUSR1 and at exit one line per
 * upstream ("upstream ADDR:PORT up|down fails=N srtt_ms=N answers=N
 * timeouts=N") and then one "stats ..." line. The server's own log lines go
 * to stderr. The record file, one directive per line, '#' starts a comment:
 *
 *   domain berth.internal                  (default berth.internal)
 *   ttl 10                                 (default 10)
 *   network NAME SUBNET [SUBNET...]        before its containers
 *   container NAME NETWORK ADDR [ADDR...] [service=SERVICE]
 *                                          once per network of the container
 *   srv NAME PORT PROTO                    _PORT._PROTO.NAME.DOMAIN
 */
#include "dns/dns.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_ADDRS 64

struct harness {
	struct loop loop;
	struct loop_fd sig;
	struct dns_server *srv;
	const char *file;
	struct dns_upstream ups[8];
};

static int parse_addr_port(const char *s, struct ip_addr *a, uint16_t *port, struct err *e)
{
	char buf[IP_STRLEN + 16];
	const char *colon;
	char *host = buf, *ps = NULL;

	if (strlen(s) >= sizeof(buf))
		return err_set(e, EINVAL, "'%s': too long", s);
	strcpy(buf, s);
	*port = 53;
	if (buf[0] == '[') {
		char *end = strchr(buf, ']');
		if (!end)
			return err_set(e, EINVAL, "'%s': missing ']'", s);
		*end = '\0';
		host = buf + 1;
		if (end[1] == ':')
			ps = end + 2;
	} else if ((colon = strchr(buf, ':')) && !strchr(colon + 1, ':')) {
		buf[colon - buf] = '\0';
		ps = buf + (colon - buf) + 1;
	}
	if (ps) {
		char *end;
		long v = strtol(ps, &end, 10);
		if (*end || v < 1 || v > 65535)
			return err_set(e, EINVAL, "'%s': bad port", s);
		*port = (uint16_t)v;
	}
	return ip_parse(host, a, e);
}

static struct dns_records *load(const char *file, struct err *e)
{
	FILE *f = fopen(file, "r");
	struct dns_records *r = NULL;
	char line[4096], domain[256] = "berth.internal";
	unsigned ttl = 10, lineno = 0;

	if (!f) {
		err_sys(e, errno, "open %s", file);
		return NULL;
	}
	/* domain and ttl first, wherever they are */
	while (fgets(line, sizeof(line), f)) {
		char k[32], v[256];
		if (sscanf(line, "%31s %255s", k, v) == 2) {
			if (!strcmp(k, "domain"))
				snprintf(domain, sizeof(domain), "%s", v);
			else if (!strcmp(k, "ttl"))
				ttl = (unsigned)strtoul(v, NULL, 10);
		}
	}
	rewind(f);
	r = dns_records_new(domain, ttl, e);
	if (!r)
		goto fail;
	while (fgets(line, sizeof(line), f)) {
		char *tok[MAX_ADDRS + 4], *save = NULL, *t;
		int n = 0;

		lineno++;
		if ((t = strchr(line, '#')))
			*t = '\0';
		for (t = strtok_r(line, " \t\r\n", &save); t && n < (int)ARRAY_SIZE(tok);
		     t = strtok_r(NULL, " \t\r\n", &save))
			tok[n++] = t;
		if (n == 0 || !strcmp(tok[0], "domain") || !strcmp(tok[0], "ttl"))
			continue;
		if (!strcmp(tok[0], "network") && n >= 2) {
			struct ip_prefix p[MAX_ADDRS];
			int np = 0;
			for (int i = 2; i < n && np < MAX_ADDRS; i++)
				if (ip_prefix_parse(tok[i], &p[np++], e) < 0)
					goto bad;
			if (dns_records_add_network(r, tok[1], p, (size_t)np, e) < 0)
				goto bad;
		} else if (!strcmp(tok[0], "container") && n >= 3) {
			struct ip_addr a[MAX_ADDRS];
			const char *svc = NULL;
			int na = 0;
			for (int i = 3; i < n && na < MAX_ADDRS; i++) {
				if (!strncmp(tok[i], "service=", 8))
					svc = tok[i] + 8;
				else if (ip_parse(tok[i], &a[na++], e) < 0)
					goto bad;
			}
			if (dns_records_add_container(r, tok[1], tok[2], a, (size_t)na, svc, e) < 0)
				goto bad;
		} else if (!strcmp(tok[0], "srv") && n == 4) {
			if (dns_records_add_srv(r, tok[1], (uint16_t)atoi(tok[2]), tok[3], e) < 0)
				goto bad;
		} else {
			err_set(e, EINVAL, "unknown directive '%s'", tok[0]);
			goto bad;
		}
	}
	fclose(f);
	return r;
bad:
	err_wrap(e, "%s:%u", file, lineno);
fail:
	dns_records_free(r);
	fclose(f);
	return NULL;
}

static void print_stats(struct dns_server *s, const struct dns_upstream *ups)
{
	struct dns_upstream_health h;
	struct dns_stats st;
	char ip[IP_STRLEN];

	for (size_t i = 0; dns_server_upstream_health(s, i, &h) == 0; i++)
		printf("upstream %s:%u %s fails=%u srtt_ms=%u answers=%llu timeouts=%llu\n",
		       ip_format(&ups[i].addr, ip), ups[i].port, h.down ? "down" : "up", h.fails,
		       h.srtt_ms, (unsigned long long)h.answers, (unsigned long long)h.timeouts);
	dns_server_stats(s, &st);
	printf("stats queries=%llu noerror=%llu nxdomain=%llu servfail=%llu formerr=%llu "
	       "notimp=%llu refused=%llu badvers=%llu authoritative=%llu forwarded=%llu "
	       "cache_hits=%llu timeouts=%llu truncated=%llu dropped=%llu tcp_conns=%llu "
	       "cache_size=%llu tcp_evicted=%llu probes=%llu\n",
	       (unsigned long long)st.queries, (unsigned long long)st.noerror,
	       (unsigned long long)st.nxdomain, (unsigned long long)st.servfail,
	       (unsigned long long)st.formerr, (unsigned long long)st.notimp,
	       (unsigned long long)st.refused, (unsigned long long)st.badvers,
	       (unsigned long long)st.authoritative, (unsigned long long)st.forwarded,
	       (unsigned long long)st.cache_hits, (unsigned long long)st.upstream_timeouts,
	       (unsigned long long)st.truncated, (unsigned long long)st.dropped,
	       (unsigned long long)st.tcp_conns, (unsigned long long)st.cache_size,
	       (unsigned long long)st.tcp_evicted, (unsigned long long)st.upstream_probes);
	fflush(stdout);
}

static void on_signal(struct loop_fd *f, uint32_t events)
{
	struct harness *h = container_of(f, struct harness, sig);
	struct signalfd_siginfo si;

	(void)events;
	while (read(f->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			struct err e = { 0 };
			struct dns_records *r = load(h->file, &e);

			if (!r) {
				fprintf(stderr, "reload failed: %s\n", e.msg);
				continue;
			}
			dns_server_set_records(h->srv, r);
			printf("reloaded\n");
			fflush(stdout);
		} else if (si.ssi_signo == SIGUSR1) {
			print_stats(h->srv, h->ups);
		} else {
			loop_stop(&h->loop);
		}
	}
}

int main(int argc, char **argv)
{
	struct harness h = { .file = NULL };
	struct dns_config cfg = { 0 };
	struct dns_upstream *ups = h.ups;
	struct ip_addr la[16];
	uint16_t lp[16];
	size_t nups = 0, nl = 0;
	struct err e = { 0 };
	struct dns_records *r;
	sigset_t mask;
	int opt;

	while ((opt = getopt(argc, argv, "f:l:u:t:c:i:n:")) != -1) {
		switch (opt) {
		case 'f': h.file = optarg; break;
		case 'l':
			if (nl >= ARRAY_SIZE(la) || parse_addr_port(optarg, &la[nl], &lp[nl], &e) < 0)
				goto usage;
			nl++;
			break;
		case 'u':
			if (nups >= ARRAY_SIZE(h.ups) ||
			    parse_addr_port(optarg, &ups[nups].addr, &ups[nups].port, &e) < 0)
				goto usage;
			nups++;
			break;
		case 't': cfg.upstream_timeout_ms = (unsigned)atoi(optarg); break;
		case 'c': cfg.cache_entries = (unsigned)atoi(optarg); break;
		case 'i': cfg.tcp_idle_ms = (unsigned)atoi(optarg); break;
		case 'n': cfg.tcp_max_conns = (unsigned)atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!h.file || !nl)
		goto usage;
	if (loop_init(&h.loop, &e) < 0)
		goto fail;
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	h.sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	h.sig.cb = on_signal;
	if (h.sig.fd < 0 || loop_fd_add(&h.loop, &h.sig, EPOLLIN, &e) < 0)
		goto fail;
	h.srv = dns_server_new(&h.loop, &cfg, &e);
	if (!h.srv)
		goto fail;
	r = load(h.file, &e);
	if (!r)
		goto fail;
	dns_server_set_records(h.srv, r);
	if (dns_server_set_upstreams(h.srv, ups, nups, &e) < 0)
		goto fail;
	for (size_t i = 0; i < nl; i++)
		if (dns_server_listen(h.srv, &la[i], lp[i], &e) < 0)
			goto fail;
	printf("ready\n");
	fflush(stdout);
	loop_run(&h.loop);
	print_stats(h.srv, h.ups);
	dns_server_free(h.srv);
	loop_fd_del(&h.loop, &h.sig);
	close(h.sig.fd);
	loop_free(&h.loop);
	return 0;
fail:
	fprintf(stderr, "dns_serve: %s\n", e.msg);
	if (h.srv)
		dns_server_free(h.srv);
	return 1;
usage:
	if (e.msg[0])
		fprintf(stderr, "dns_serve: %s\n", e.msg);
	fprintf(stderr, "usage: dns_serve -f FILE -l ADDR[:PORT]... [-u ADDR[:PORT]]... "
		"[-t MS] [-c N] [-i MS] [-n N]\n");
	return 2;
}
