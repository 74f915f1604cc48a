/* server.c - the DNS server's sockets: UDP and TCP listeners, TCP connections
 * with pipelining, and forwarded queries in flight, all on the caller's loop. */
#include "dns/dns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UDP_BATCH 32                /* datagrams per recvmmsg/sendmmsg */
#define UDP_QMAX DNS_EDNS_PAYLOAD   /* a longer UDP query arrives cut: FORMERR */
#define TCP_WBUF_HIGH (128 * 1024)  /* stop reading a client that does not read */
#define ACCEPT_PAUSE_MS 200         /* no descriptor for accept(): wait this long */
#define UP_RETRY_MIN_MS 1000        /* a down upstream is probed after this, */
#define UP_RETRY_MAX_MS 30000       /* doubling while it stays silent, up to this */
#define UDP_GSO_MAX 64              /* the kernel's UDP_MAX_SEGMENTS */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103             /* linux/udp.h: cmsg, the GSO segment size */
#endif

union sa {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

struct dns_listener {
	struct dns_server *s;
	struct ip_addr addr;
	uint16_t port;
	struct loop_fd udp, tcp;
	struct loop_timer accept_pause;     /* tcp is off the loop while it runs */
	struct dns_listener *next;
};

/* An upstream and what we learnt about it. Allocated one by one so that the
 * probe's loop handles stay put when the list is replaced. */
struct upstream {
	struct dns_server *s;
	struct dns_upstream addr;
	unsigned fails;             /* timeouts/refusals since its last answer; 0: up */
	uint64_t retry_ms;          /* down: probe it from then on */
	unsigned backoff;           /* the window is UP_RETRY_MIN_MS << backoff */
	uint32_t srtt_ms;
	uint64_t answers, timeouts;
	/* the probe of a down upstream in flight (probe.fd >= 0): a copy of a
	 * real query, whose answer only tells us the upstream is back */
	struct loop_fd probe;
	struct loop_timer probe_timer;
	uint16_t probe_id;
	uint64_t probe_sent_ms;
	struct dns_query probe_q;
};

struct dns_conn {
	struct loop_fd lf;
	struct loop_timer idle;
	struct dns_server *s;
	struct dns_listener *ln;
	struct ip_addr peer;
	uint8_t *rbuf, *wbuf;
	size_t rlen, rcap, wlen, woff, wcap;
	uint64_t active_ms;         /* when the client last sent something */
	unsigned pending;           /* forwarded queries not answered yet */
	uint32_t events;
	bool eof, dead;
	struct dns_conn *prev, *next;
};

struct dns_fwd {
	struct loop_fd lf;
	struct loop_timer timer;
	struct dns_server *s;
	struct dns_listener *ln;    /* UDP client: answered through ln (NULL: gone) */
	union sa peer;
	socklen_t peerlen;
	struct dns_conn *conn;      /* TCP client (NULL: gone or UDP) */
	int up;                     /* index of the upstream being tried; -1: it
				       left the list (or none yet) */
	uint64_t tried;             /* bit i: upstream i was asked */
	uint64_t sent_ms;           /* when the UDP query went to it */
	uint16_t id;
	/* the same upstream over TCP after a truncated UDP answer */
	uint8_t *tbuf;              /* query to send, then the answer read */
	size_t tlen, toff;          /* bytes in tbuf; sent or received so far */
	bool tcp, tcp_sending;
	struct dns_fwd *prev, *next;
	struct dns_query q;
};

/* One round of UDP: queries in with one recvmmsg, answers out with one
 * sendmmsg (half the system calls per query of recvfrom + sendto). The
 * message headers are built whole (compound literals), so their padding
 * is zero and the kernel reads them as its own (see send_batch). */
struct udp_batch {
	struct dns_listener *ln;    /* the listener being served; NULL outside */
	unsigned nin;               /* in[] the last recvmmsg filled */
	unsigned nout;
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec iiov[UDP_BATCH], oiov[UDP_BATCH];
	union sa ipeer[UDP_BATCH], opeer[UDP_BATCH];
	/* answers to one client of one length, as one UDP GSO send (gso_group) */
	struct mmsghdr gout[UDP_BATCH];
	struct iovec giov[UDP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} gcmsg[UDP_BATCH];
	uint8_t ibuf[UDP_BATCH][UDP_QMAX];
	uint8_t obuf[UDP_BATCH][DNS_EDNS_PAYLOAD];
};

struct dns_server {
	struct loop *loop;
	struct udp_batch *ub;       /* allocated on the first UDP query */
	bool no_gso;                /* the kernel refused UDP_SEGMENT: one send per answer */
	struct dns_config cfg;
	struct dns_records *rec;
	struct upstream **ups;
	size_t nups;
	bool accept_starved;        /* said that accept() has no descriptor */
	struct dns_cache *cache;
	struct dns_listener *listeners;
	struct dns_conn *conns;
	unsigned nconns;
	struct dns_fwd *fwds;
	unsigned nfwds;
	struct dns_stats st;
	uint32_t rotate;
	uint8_t buf[DNS_MSG_MAX + 1];
	uint8_t out[DNS_MSG_MAX];
};

static void on_udp(struct loop_fd *f, uint32_t events);
static void on_accept(struct loop_fd *f, uint32_t events);
static void on_conn(struct loop_fd *f, uint32_t events);
static void on_conn_idle(struct loop_timer *t);
static void on_fwd(struct loop_fd *f, uint32_t events);
static void on_fwd_timeout(struct loop_timer *t);
static void on_accept_resume(struct loop_timer *t);
static void on_probe(struct loop_fd *f, uint32_t events);
static void on_probe_timeout(struct loop_timer *t);

static void __attribute__((format(printf, 3, 4)))
dns_log(const struct dns_server *s, enum dns_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->cfg.log)
		s->cfg.log(s->cfg.log_ctx, lvl, msg);
	else if (lvl <= DNS_LOG_INFO)
		fprintf(stderr, "berth: %s: %s\n", names[lvl], msg);
}

static void sa_from_ip(union sa *u, socklen_t *len, const struct ip_addr *a, uint16_t port)
{
	memset(u, 0, sizeof(*u));
	if (a->family == AF_INET6) {
		u->in6.sin6_family = AF_INET6;
		u->in6.sin6_port = htons(port);
		memcpy(&u->in6.sin6_addr, a->b, 16);
		*len = sizeof(u->in6);
	} else {
		u->in.sin_family = AF_INET;
		u->in.sin_port = htons(port);
		memcpy(&u->in.sin_addr, a->b, 4);
		*len = sizeof(u->in);
	}
}

static void ip_from_sa(struct ip_addr *a, const union sa *u)
{
	if (u->sa.sa_family == AF_INET6) {
		const uint8_t *b = u->in6.sin6_addr.s6_addr;
		static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (!memcmp(b, v4mapped, 12))
			ip_from_bytes(a, AF_INET, b + 12);
		else
			ip_from_bytes(a, AF_INET6, b);
	} else {
		ip_from_bytes(a, AF_INET, &u->in.sin_addr);
	}
}

static const char *addr_port_str(const struct ip_addr *a, uint16_t port, char *buf, size_t n)
{
	char ip[IP_STRLEN];

	if (a->family == AF_INET6)
		snprintf(buf, n, "[%s]:%u", ip_format(a, ip), port);
	else
		snprintf(buf, n, "%s:%u", ip_format(a, ip), port);
	return buf;
}

struct dns_server *dns_server_new(struct loop *l, const struct dns_config *c, struct err *e)
{
	struct dns_server *s = calloc(1, sizeof(*s));

	if (!s) {
		err_sys(e, ENOMEM, "DNS server");
		return NULL;
	}
	s->loop = l;
	if (c)
		s->cfg = *c;
	if (!s->cfg.upstream_timeout_ms)
		s->cfg.upstream_timeout_ms = 2000;
	if (!s->cfg.cache_entries)
		s->cfg.cache_entries = 4096;
	if (!s->cfg.max_pending)
		s->cfg.max_pending = 512;
	if (!s->cfg.tcp_max_conns)
		s->cfg.tcp_max_conns = 64;
	if (!s->cfg.tcp_idle_ms)
		s->cfg.tcp_idle_ms = 10000;
	s->cache = dns_cache_new(s->cfg.cache_entries);
	if (!s->cache) {
		free(s);
		err_sys(e, ENOMEM, "DNS cache");
		return NULL;
	}
	return s;
}

void dns_server_set_records(struct dns_server *s, struct dns_records *r)
{
	/* One pointer swap between two loop callbacks: every query is answered
	 * from one whole set, and the sockets never close. */
	struct dns_records *old = s->rec;

	s->rec = r;
	dns_records_free(old);
}

struct dns_records *dns_server_records(struct dns_server *s)
{
	return s->rec;
}

static const char *up_str(const struct upstream *u, char *buf, size_t n)
{
	return addr_port_str(&u->addr.addr, u->addr.port, buf, n);
}

static void probe_close(struct upstream *u)
{
	if (u->probe.fd < 0)
		return;
	loop_timer_cancel(u->s->loop, &u->probe_timer);
	loop_fd_del(u->s->loop, &u->probe);
	close(u->probe.fd);
	u->probe.fd = -1;
}

static struct upstream *up_new(struct dns_server *s, const struct dns_upstream *a)
{
	struct upstream *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->s = s;
	u->addr = *a;
	if (!u->addr.port)
		u->addr.port = 53;
	u->probe = (struct loop_fd){ .fd = -1, .cb = on_probe };
	u->probe_timer.cb = on_probe_timeout;
	return u;
}

static void up_free(struct upstream *u)
{
	probe_close(u);
	free(u);
}

/* Remap a set of upstream indexes (bit i: index i) through map (old index
 * to new one, -1: gone). */
static uint64_t remap_tried(uint64_t tried, const int *map, size_t n)
{
	uint64_t out = 0;

	for (size_t i = 0; i < n; i++)
		if ((tried & (1ull << i)) && map[i] >= 0)
			out |= 1ull << map[i];
	return out;
}

int dns_server_set_upstreams(struct dns_server *s, const struct dns_upstream *u, size_t n,
			     struct err *e)
{
	int keep[DNS_MAX_UPSTREAMS];    /* new index: the old one it keeps, or -1 */
	int map[DNS_MAX_UPSTREAMS];     /* old index: its new one, or -1 */
	struct upstream **nu;

	if (n > DNS_MAX_UPSTREAMS)
		return err_set(e, EINVAL, "DNS upstreams: %zu given, at most %d", n,
			       DNS_MAX_UPSTREAMS);
	for (size_t i = 0; i < n; i++)
		if (u[i].addr.family != AF_INET && u[i].addr.family != AF_INET6)
			return err_set(e, EINVAL, "DNS upstream %zu: no address", i + 1);
	nu = calloc(n ? n : 1, sizeof(*nu));
	if (!nu)
		return err_sys(e, ENOMEM, "DNS upstreams");
	for (size_t j = 0; j < s->nups; j++)
		map[j] = -1;
	/* an upstream that stays keeps what we know of it (a reload does not
	 * make a dead upstream cost a timeout again) */
	for (size_t i = 0; i < n; i++) {
		uint16_t port = u[i].port ? u[i].port : 53;

		keep[i] = -1;
		for (size_t j = 0; j < s->nups && keep[i] < 0; j++)
			if (map[j] < 0 && s->ups[j]->addr.port == port &&
			    ip_equal(&s->ups[j]->addr.addr, &u[i].addr)) {
				keep[i] = (int)j;
				map[j] = (int)i;
			}
		nu[i] = keep[i] >= 0 ? s->ups[keep[i]] : up_new(s, &u[i]);
		if (!nu[i]) {
			for (size_t k = 0; k < i; k++)
				if (keep[k] < 0)
					up_free(nu[k]);
			free(nu);
			return err_sys(e, ENOMEM, "DNS upstreams");
		}
	}
	/* queries in flight keep going: the upstream they wait for, and which
	 * ones they asked, in the new list's indexes */
	for (struct dns_fwd *f = s->fwds; f; f = f->next) {
		f->up = f->up >= 0 ? map[f->up] : -1;
		f->tried = remap_tried(f->tried, map, s->nups);
	}
	for (size_t j = 0; j < s->nups; j++)
		if (map[j] < 0)
			up_free(s->ups[j]);
	free(s->ups);
	s->ups = nu;
	s->nups = n;
	return 0;
}

int dns_server_upstream_health(const struct dns_server *s, size_t i,
			       struct dns_upstream_health *h)
{
	const struct upstream *u;

	if (i >= s->nups)
		return -ENOENT;
	u = s->ups[i];
	*h = (struct dns_upstream_health){
		.down = u->fails > 0, .fails = u->fails, .srtt_ms = u->srtt_ms,
		.answers = u->answers, .timeouts = u->timeouts,
	};
	return 0;
}

void dns_server_stats(const struct dns_server *s, struct dns_stats *st)
{
	*st = s->st;
	st->cache_size = dns_cache_count(s->cache);
}

/* ---- replies ----------------------------------------------------------------- */

static void conn_flush(struct dns_conn *c);

static void conn_send(struct dns_conn *c, const uint8_t *m, size_t len)
{
	if (c->dead)
		return;
	if (c->wlen + 2 + len > c->wcap) {
		size_t nc = c->wcap ? c->wcap : 1024;
		uint8_t *nb;

		while (nc < c->wlen + 2 + len)
			nc *= 2;
		nb = realloc(c->wbuf, nc);
		if (!nb) {
			c->dead = true;
			loop_timer_set(c->s->loop, &c->idle, 0);
			return;
		}
		c->wbuf = nb;
		c->wcap = nc;
	}
	dns_put16(c->wbuf + c->wlen, (uint16_t)len);
	memcpy(c->wbuf + c->wlen + 2, m, len);
	c->wlen += 2 + len;
	conn_flush(c);
}

static void send_reply(struct dns_server *s, struct dns_listener *ln, struct dns_conn *c,
		       const union sa *peer, socklen_t peerlen, const uint8_t *m, size_t len)
{
	struct udp_batch *ub = s->ub;

	if (c) {
		conn_send(c, m, len);
		return;
	}
	if (ub && ub->ln && ub->ln == ln && ub->nout < UDP_BATCH && len <= DNS_EDNS_PAYLOAD) {
		unsigned i = ub->nout++;

		memcpy(ub->obuf[i], m, len);
		ub->opeer[i] = *peer;
		ub->oiov[i] = (struct iovec){ .iov_base = ub->obuf[i], .iov_len = len };
		ub->out[i].msg_hdr = (struct msghdr){ .msg_name = &ub->opeer[i], .msg_namelen = peerlen,
						      .msg_iov = &ub->oiov[i], .msg_iovlen = 1 };
		return;
	}
	if (ln && sendto(ln->udp.fd, m, len, MSG_DONTWAIT | MSG_NOSIGNAL, &peer->sa, peerlen) < 0)
		s->st.dropped++;
}

/* The batch's answers in one system call. musl's sendmmsg() on 64-bit
 * machines is a loop of sendmsg() in libc (it cannot trust the caller's
 * padding of struct msghdr); ours is zero (send_reply builds each header
 * whole), so the kernel's sendmmsg is used directly: one kernel entry for the
 * batch instead of one per answer. */
static int send_batch(int fd, struct mmsghdr *m, unsigned n)
{
	return (int)syscall(SYS_sendmmsg, fd, m, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * UDP GSO: the answers of a batch that go to one client (address and port)
 * and have one length leave as one datagram of several segments
 * (UDP_SEGMENT), so that routing, the netfilter hooks and the bridge see
 * them once; the client's socket still receives each as its own datagram
 * (the stack cuts them at the segment size before delivery, or the device
 * does). dnsperf and resolvers with a few sockets get several answers per
 * batch. Fills ub->gout from ub->out; returns the number of sends.
 */
static unsigned gso_group(struct udp_batch *ub)
{
	bool taken[UDP_BATCH] = { false };
	unsigned ng = 0, k = 0;

	for (unsigned i = 0; i < ub->nout; i++) {
		const struct msghdr *h = &ub->out[i].msg_hdr;
		size_t len = ub->oiov[i].iov_len, first = k;
		unsigned cnt = 1;

		if (taken[i])
			continue;
		ub->giov[k++] = ub->oiov[i];
		/* a segment must fit the link's MTU: 512 bytes fit every one */
		for (unsigned j = i + 1; j < ub->nout && cnt < UDP_GSO_MAX && len <= 512; j++) {
			const struct msghdr *o = &ub->out[j].msg_hdr;

			if (taken[j] || ub->oiov[j].iov_len != len || o->msg_namelen != h->msg_namelen ||
			    memcmp(o->msg_name, h->msg_name, h->msg_namelen))
				continue;
			taken[j] = true;
			ub->giov[k++] = ub->oiov[j];
			cnt++;
		}
		ub->gout[ng].msg_hdr = (struct msghdr){ .msg_name = h->msg_name,
							.msg_namelen = h->msg_namelen,
							.msg_iov = &ub->giov[first], .msg_iovlen = cnt };
		if (cnt > 1) {
			struct cmsghdr *cm = (struct cmsghdr *)ub->gcmsg[ng].buf;
			uint16_t seg = (uint16_t)len;

			memset(ub->gcmsg[ng].buf, 0, sizeof(ub->gcmsg[ng].buf));
			cm->cmsg_level = IPPROTO_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
			ub->gout[ng].msg_hdr.msg_control = ub->gcmsg[ng].buf;
			ub->gout[ng].msg_hdr.msg_controllen = sizeof(ub->gcmsg[ng].buf);
		}
		ng++;
	}
	return ng;
}

/* Send what the batch answered: grouped (gso_group) while the kernel takes
 * UDP_SEGMENT; a kernel or a device that does not (EIO, EINVAL, ENOPROTOOPT,
 * EOPNOTSUPP) gets the answers one by one from then on, this batch's too. */
static void udp_flush(struct dns_server *s, int fd)
{
	struct udp_batch *ub = s->ub;
	struct mmsghdr *m = ub->out;
	unsigned n = ub->nout, sent = 0;

	if (!s->no_gso && n > 1) {
		unsigned ng = gso_group(ub);

		if (ng < n) {
			m = ub->gout;
			n = ng;
		}
	}
	while (sent < n) {
		int r = send_batch(fd, m + sent, n - sent);

		if (r > 0) {
			sent += (unsigned)r;
			continue;
		}
		if (m == ub->gout && m[sent].msg_hdr.msg_iovlen > 1 &&
		    (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
			s->no_gso = true;
			dns_log(s, DNS_LOG_DEBUG, "dns: UDP segmentation offload refused (%s): "
				"one send per answer", strerror(errno));
			for (; sent < n; sent++) {      /* the rest of this batch, one by one */
				struct msghdr h = m[sent].msg_hdr;
				struct iovec *iov = h.msg_iov;
				size_t cnt = h.msg_iovlen;

				h.msg_control = NULL;
				h.msg_controllen = 0;
				h.msg_iovlen = 1;
				for (size_t j = 0; j < cnt; j++) {
					h.msg_iov = &iov[j];
					if (sendmsg(fd, &h, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
						s->st.dropped++;
				}
			}
			return;
		}
		/* this one failed (full buffer, gone client): its answers are lost */
		s->st.dropped += m == ub->gout ? m[sent].msg_hdr.msg_iovlen : 1;
		sent++;
	}
}

/* ---- upstream health ------------------------------------------------------------ */

/* u answered (a query sent at sent_ms, over UDP): it is up. */
static void up_answered(struct upstream *u, uint64_t sent_ms)
{
	uint64_t now = loop_now_ms();
	uint32_t rtt = now > sent_ms ? (uint32_t)(now - sent_ms) : 0;
	char where[IP_STRLEN + 16];

	/* RFC 6298's smoothing (alpha 1/8) */
	u->srtt_ms = u->answers ? (uint32_t)(((uint64_t)u->srtt_ms * 7 + rtt) / 8) : rtt;
	u->answers++;
	if (u->fails)
		dns_log(u->s, DNS_LOG_INFO, "dns: upstream %s answers again",
			up_str(u, where, sizeof(where)));
	u->fails = 0;
}

/* u timed out or refused: down; probe it again after a window that doubles
 * while it stays silent. Queries sent to it before it was found down fail
 * within the first window: they tell nothing new and do not lengthen it. */
static void up_failed(struct upstream *u)
{
	uint64_t now = loop_now_ms(), wait;
	char where[IP_STRLEN + 16];

	if (!u->fails) {
		dns_log(u->s, DNS_LOG_WARN, "dns: upstream %s does not answer: asking the "
			"other upstreams first until it does again", up_str(u, where, sizeof(where)));
		u->backoff = 0;
	} else if (now < u->retry_ms) {
		u->fails++;
		return;
	} else if (u->backoff < 5) {
		u->backoff++;
	}
	u->fails++;
	wait = (uint64_t)UP_RETRY_MIN_MS << u->backoff;
	u->retry_ms = now + (wait < UP_RETRY_MAX_MS ? wait : UP_RETRY_MAX_MS);
}

/* The upstream to ask next, among those not in tried: the first that is up,
 * in the configured order; only when every untried one is down, the first of
 * those (a down upstream is a last resort, never skipped). -1: none left. */
static int up_pick(const struct dns_server *s, uint64_t tried)
{
	int down = -1;

	for (size_t i = 0; i < s->nups; i++) {
		if (tried & (1ull << i))
			continue;
		if (!s->ups[i]->fails)
			return (int)i;
		if (down < 0)
			down = (int)i;
	}
	return down;
}

/* Send a copy of q to down upstream u, to learn in the background whether it
 * is back; no client waits for it. */
static void probe_send(struct upstream *u, const struct dns_query *q)
{
	struct dns_server *s = u->s;
	union sa sa;
	socklen_t sl;
	size_t len;
	int fd;

	if (getrandom(&u->probe_id, sizeof(u->probe_id), GRND_NONBLOCK) != sizeof(u->probe_id))
		return;
	len = dns_upstream_query(q, u->probe_id, s->out, sizeof(s->out));
	if (!len)
		return;
	fd = socket(u->addr.addr.family == AF_INET6 ? AF_INET6 : AF_INET,
		    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;             /* no descriptor: the next query tries again */
	sa_from_ip(&sa, &sl, &u->addr.addr, u->addr.port);
	u->probe.fd = fd;
	if (connect(fd, &sa.sa, sl) < 0 || send(fd, s->out, len, MSG_NOSIGNAL) < 0 ||
	    loop_fd_add(s->loop, &u->probe, EPOLLIN, NULL) < 0) {
		close(fd);
		u->probe.fd = -1;
		up_failed(u);       /* unreachable: wait a longer window */
		return;
	}
	u->probe_q = *q;
	u->probe_sent_ms = loop_now_ms();
	loop_timer_set(s->loop, &u->probe_timer, s->cfg.upstream_timeout_ms);
	s->st.upstream_probes++;
}

/* Probe every down upstream whose window is over and that no query is about
 * to ask anyway (first: the upstream this query goes to). */
static void probe_due(struct dns_server *s, const struct dns_query *q, int first)
{
	uint64_t now = loop_now_ms();

	for (size_t i = 0; i < s->nups; i++) {
		struct upstream *u = s->ups[i];

		if (u->fails && u->probe.fd < 0 && now >= u->retry_ms && (int)i != first)
			probe_send(u, q);
	}
}

static void on_probe(struct loop_fd *lf, uint32_t events)
{
	struct upstream *u = container_of(lf, struct upstream, probe);
	struct dns_server *s = u->s;

	(void)events;
	for (;;) {
		ssize_t n = recv(lf->fd, s->buf, sizeof(s->buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			probe_close(u);     /* ECONNREFUSED: still nobody there */
			up_failed(u);
			return;
		}
		/* any real answer, SERVFAIL included: someone is there again */
		if (dns_upstream_check(&u->probe_q, u->probe_id, s->buf, (size_t)n) < 0)
			continue;
		probe_close(u);
		up_answered(u, u->probe_sent_ms);
		return;
	}
}

static void on_probe_timeout(struct loop_timer *t)
{
	struct upstream *u = container_of(t, struct upstream, probe_timer);

	probe_close(u);
	u->timeouts++;
	up_failed(u);
}

/* ---- forwarding -------------------------------------------------------------- */

static void fwd_free(struct dns_fwd *f)
{
	struct dns_server *s = f->s;

	loop_timer_cancel(s->loop, &f->timer);
	if (f->lf.fd >= 0) {
		loop_fd_del(s->loop, &f->lf);
		close(f->lf.fd);
	}
	if (f->prev)
		f->prev->next = f->next;
	else
		s->fwds = f->next;
	if (f->next)
		f->next->prev = f->prev;
	if (f->conn)
		f->conn->pending--;
	s->nfwds--;
	free(f->tbuf);
	free(f);
}

/* Answer the client (msg: a checked upstream answer, or NULL: SERVFAIL). */
static void fwd_finish(struct dns_fwd *f, const uint8_t *msg, size_t len)
{
	struct dns_server *s = f->s;
	size_t olen;

	if (msg)
		olen = dns_relay_reply(&f->q, msg, len, 0, dns_reply_limit(&f->q, f->conn != NULL),
				       s->out, sizeof(s->out));
	else
		olen = 0;
	if (!olen)
		olen = dns_error_reply(&f->q, DNS_R_SERVFAIL, s->out, sizeof(s->out));
	if (olen && (f->conn || f->ln)) {
		dns_count_rcode(&s->st, s->out, olen);
		send_reply(s, f->ln, f->conn, &f->peer, f->peerlen, s->out, olen);
	}
	if (f->conn && f->conn->eof && f->conn->pending == 1)
		loop_timer_set(s->loop, &f->conn->idle, 0); /* all answered: close soon */
	fwd_free(f);
}

static void fwd_close_socket(struct dns_fwd *f)
{
	if (f->lf.fd >= 0) {
		loop_fd_del(f->s->loop, &f->lf);
		close(f->lf.fd);
		f->lf.fd = -1;
	}
	free(f->tbuf);
	f->tbuf = NULL;
	f->tcp = false;
}


/* A fresh socket to upstream f->up (a new random source port from the
 * kernel), connected so the kernel delivers only the upstream's datagrams;
 * for UDP the query (msg) goes out at once. Then the loop watches it for
 * events and the attempt's timer runs. Returns 0 or -1. */
static int fwd_open(struct dns_fwd *f, int type, const uint8_t *msg, size_t len,
		    uint32_t events)
{
	struct dns_server *s = f->s;
	const struct dns_upstream *u = &s->ups[f->up]->addr;
	union sa sa;
	socklen_t sl;
	int fd;

	fd = socket(u->addr.family == AF_INET6 ? AF_INET6 : AF_INET,
		    type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sa_from_ip(&sa, &sl, &u->addr, u->port);
	if ((connect(fd, &sa.sa, sl) < 0 && errno != EINPROGRESS) ||
	    (msg && send(fd, msg, len, MSG_NOSIGNAL) < 0)) {
		close(fd);
		return -1;
	}
	f->lf.fd = fd;
	f->lf.cb = on_fwd;
	if (loop_fd_add(s->loop, &f->lf, events, NULL) < 0) {
		close(fd);
		f->lf.fd = -1;
		return -1;
	}
	loop_timer_set(s->loop, &f->timer, s->cfg.upstream_timeout_ms);
	return 0;
}

/* Ask the same upstream again over TCP (its UDP answer was truncated):
 * a non-blocking connect, the framed query written and the framed answer
 * read as the socket allows, under the same timeout. */
static int fwd_send_tcp(struct dns_fwd *f)
{
	size_t len;

	fwd_close_socket(f);
	if (f->up < 0)
		return -1;          /* it left the list meanwhile */
	f->tbuf = malloc(2 + DNS_MSG_MAX);
	if (!f->tbuf || getrandom(&f->id, sizeof(f->id), GRND_NONBLOCK) != sizeof(f->id))
		return -1;
	len = dns_upstream_query(&f->q, f->id, f->tbuf + 2, DNS_MSG_MAX);
	if (!len)
		return -1;
	dns_put16(f->tbuf, (uint16_t)len);
	f->tlen = 2 + len;
	f->toff = 0;
	f->tcp = f->tcp_sending = true;
	return fwd_open(f, SOCK_STREAM, NULL, 0, EPOLLOUT);
}

/* Send the query to upstream f->up on a fresh socket (a new random source
 * port from the kernel) with a fresh random ID. */
static int fwd_send(struct dns_fwd *f)
{
	struct dns_server *s = f->s;
	size_t len;

	fwd_close_socket(f);
	if (f->up < 0 || getrandom(&f->id, sizeof(f->id), GRND_NONBLOCK) != sizeof(f->id))
		return -1;
	len = dns_upstream_query(&f->q, f->id, s->out, sizeof(s->out));
	if (!len)
		return -1;
	f->sent_ms = loop_now_ms();
	return fwd_open(f, SOCK_DGRAM, s->out, len, EPOLLIN);
}

/* Ask the next upstream (up_pick), or answer SERVFAIL when every one was
 * asked. f may be freed. */
static void fwd_next(struct dns_fwd *f)
{
	int i;

	while ((i = up_pick(f->s, f->tried)) >= 0) {
		f->tried |= 1ull << i;
		f->up = i;
		if (fwd_send(f) == 0)
			return;
	}
	fwd_finish(f, NULL, 0);
}

static void fwd_start(struct dns_server *s, const struct dns_query *q, struct dns_listener *ln,
		      struct dns_conn *c, const union sa *peer, socklen_t peerlen)
{
	struct dns_fwd *f;
	size_t olen;

	if (!s->nups || s->nfwds >= s->cfg.max_pending || !(f = calloc(1, sizeof(*f)))) {
		olen = dns_error_reply(q, DNS_R_SERVFAIL, s->out, sizeof(s->out));
		if (olen) {
			s->st.servfail++;
			send_reply(s, ln, c, peer, peerlen, s->out, olen);
		}
		return;
	}
	f->s = s;
	f->q = *q;
	f->lf.fd = -1;
	f->timer.cb = on_fwd_timeout;
	if (c) {
		f->conn = c;
		c->pending++;
	} else {
		f->ln = ln;
		f->peer = *peer;
		f->peerlen = peerlen;
	}
	f->next = s->fwds;
	if (s->fwds)
		s->fwds->prev = f;
	s->fwds = f;
	s->nfwds++;
	s->st.forwarded++;
	f->up = -1;
	probe_due(s, q, up_pick(s, 0));
	fwd_next(f);
}

/* A checked upstream answer (length r): cache it, answer the client. */
static void fwd_answer(struct dns_fwd *f, uint8_t *m, int r)
{
	dns_cache_put(f->s->cache, &f->q, m, (size_t)r, dns_cache_ttl(m, (size_t)r), loop_now_ms());
	fwd_finish(f, m, (size_t)r);
}

static void on_fwd_tcp(struct dns_fwd *f, uint32_t events)
{
	struct dns_server *s = f->s;
	ssize_t n;
	int r;

	if (events & EPOLLERR)
		goto fail;
	if (f->tcp_sending) {
		n = send(f->lf.fd, f->tbuf + f->toff, f->tlen - f->toff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			goto fail;
		}
		f->toff += (size_t)n;
		if (f->toff < f->tlen)
			return;
		f->tcp_sending = false;
		f->toff = 0;
		if (loop_fd_mod(s->loop, &f->lf, EPOLLIN, NULL) < 0)
			goto fail;
		return;
	}
	n = recv(f->lf.fd, f->tbuf + f->toff, 2 + DNS_MSG_MAX - f->toff, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0)
		goto fail;          /* closed before a whole answer */
	f->toff += (size_t)n;
	if (f->toff < 2 || f->toff < 2 + (size_t)dns_get16(f->tbuf))
		return;
	r = dns_upstream_check(&f->q, f->id, f->tbuf + 2, dns_get16(f->tbuf));
	if (r <= 0)
		goto fail;          /* on a stream, a wrong answer is a broken upstream */
	fwd_answer(f, f->tbuf + 2, r);
	return;
fail:
	fwd_next(f);
}

static void on_fwd(struct loop_fd *lf, uint32_t events)
{
	struct dns_fwd *f = container_of(lf, struct dns_fwd, lf);
	struct dns_server *s = f->s;

	if (f->tcp) {
		on_fwd_tcp(f, events);
		return;
	}
	for (;;) {
		ssize_t n = recv(lf->fd, s->buf, sizeof(s->buf), 0);
		int r;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			if (f->up >= 0)
				up_failed(s->ups[f->up]);
			fwd_next(f);    /* ECONNREFUSED: nobody listens there */
			return;
		}
		r = dns_upstream_check(&f->q, f->id, s->buf, (size_t)n);
		if (r < 0)
			continue;       /* not the answer to our question: ignore */
		if (f->up >= 0)
			up_answered(s->ups[f->up], f->sent_ms);
		if (r == 0) {
			fwd_next(f);
			return;
		}
		if ((s->buf[2] & (DNS_F_TC >> 8)) && fwd_send_tcp(f) == 0)
			return;     /* truncated: the whole answer over TCP */
		fwd_answer(f, s->buf, r);
		return;
	}
}

static void on_fwd_timeout(struct loop_timer *t)
{
	struct dns_fwd *f = container_of(t, struct dns_fwd, timer);

	f->s->st.upstream_timeouts++;
	/* over TCP the upstream has just answered over UDP: it is not down */
	if (f->up >= 0 && !f->tcp) {
		f->s->ups[f->up]->timeouts++;
		up_failed(f->s->ups[f->up]);
	}
	fwd_next(f);
}

/* ---- the query path ------------------------------------------------------------ */

static void handle_query(struct dns_server *s, struct dns_listener *ln, struct dns_conn *c,
			 const struct ip_addr *src, const union sa *peer, socklen_t peerlen,
			 const uint8_t *m, size_t len)
{
	struct dns_ctx ctx = {
		.rec = s->rec, .src = src, .local = ln ? &ln->addr : NULL, .tcp = c != NULL,
		.rotate = s->rotate++, .stats = &s->st,
	};
	struct dns_query q;
	const uint8_t *cached;
	size_t olen = 0, clen;
	uint32_t age;

	switch (dns_answer(&ctx, m, len, &q, s->out, sizeof(s->out), &olen)) {
	case DNS_DROP:
		return;
	case DNS_REPLY:
		send_reply(s, ln, c, peer, peerlen, s->out, olen);
		return;
	case DNS_FORWARD:
		break;
	}
	cached = dns_cache_get(s->cache, &q, loop_now_ms(), &clen, &age);
	if (cached) {
		s->st.cache_hits++;
		olen = dns_relay_reply(&q, cached, clen, age, dns_reply_limit(&q, c != NULL),
				       s->out, sizeof(s->out));
		if (olen) {
			dns_count_rcode(&s->st, s->out, olen);
			send_reply(s, ln, c, peer, peerlen, s->out, olen);
			return;
		}
	}
	fwd_start(s, &q, ln, c, peer, peerlen);
}

static void on_udp(struct loop_fd *f, uint32_t events)
{
	struct dns_listener *ln = container_of(f, struct dns_listener, udp);
	struct dns_server *s = ln->s;
	struct udp_batch *ub = s->ub;
	int n;

	(void)events;
	if (!ub) {
		ub = s->ub = malloc(sizeof(*ub));
		if (!ub)
			return;     /* level-triggered: we come back */
		for (int i = 0; i < UDP_BATCH; i++) {
			ub->iiov[i] = (struct iovec){ .iov_base = ub->ibuf[i], .iov_len = UDP_QMAX };
			ub->in[i].msg_hdr = (struct msghdr){ .msg_name = &ub->ipeer[i],
							     .msg_iov = &ub->iiov[i], .msg_iovlen = 1 };
		}
		ub->nin = UDP_BATCH;
	}
	/* the kernel wrote back only the name lengths of what it filled */
	for (unsigned i = 0; i < ub->nin; i++)
		ub->in[i].msg_hdr.msg_namelen = sizeof(ub->ipeer[i]);
	n = recvmmsg(f->fd, ub->in, UDP_BATCH, MSG_DONTWAIT, NULL);
	ub->nin = n > 0 ? (unsigned)n : 0;
	if (n <= 0)
		return;
	ub->ln = ln;
	ub->nout = 0;
	for (int i = 0; i < n; i++) {
		struct ip_addr src;

		ip_from_sa(&src, &ub->ipeer[i]);
		handle_query(s, ln, NULL, &src, &ub->ipeer[i], ub->in[i].msg_hdr.msg_namelen,
			     ub->ibuf[i], ub->in[i].msg_len);
	}
	ub->ln = NULL;
	udp_flush(s, f->fd);
}

/* ---- TCP ------------------------------------------------------------------------ */

static void conn_set_events(struct dns_conn *c, uint32_t ev)
{
	if (c->events != ev && loop_fd_mod(c->s->loop, &c->lf, ev, NULL) == 0)
		c->events = ev;
}

static void conn_close(struct dns_conn *c)
{
	struct dns_server *s = c->s;

	for (struct dns_fwd *f = s->fwds; f; f = f->next)
		if (f->conn == c)
			f->conn = NULL;     /* its answer has nowhere to go */
	loop_timer_cancel(s->loop, &c->idle);
	loop_fd_del(s->loop, &c->lf);
	close(c->lf.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static void conn_flush(struct dns_conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->lf.fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			/* close from a timer: we may be inside a callback using c */
			c->dead = true;
			loop_timer_set(c->s->loop, &c->idle, 0);
			return;
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	conn_set_events(c, (c->wlen ? EPOLLOUT : 0) |
			   (c->wlen - c->woff < TCP_WBUF_HIGH && !c->eof ? EPOLLIN : 0));
}

/* Answer every complete message in the read buffer (pipelining). */
static void conn_process(struct dns_conn *c)
{
	size_t p = 0;

	while (!c->dead && c->rlen - p >= 2 && c->wlen - c->woff < TCP_WBUF_HIGH) {
		size_t ml = dns_get16(c->rbuf + p);

		if (c->rlen - p - 2 < ml)
			break;
		handle_query(c->s, c->ln, c, &c->peer, NULL, 0, c->rbuf + p + 2, ml);
		p += 2 + ml;
	}
	if (p) {
		memmove(c->rbuf, c->rbuf + p, c->rlen - p);
		c->rlen -= p;
	}
}

static void on_conn(struct loop_fd *lf, uint32_t events)
{
	struct dns_conn *c = container_of(lf, struct dns_conn, lf);

	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(c);      /* reset or both directions shut: no one to answer */
		return;
	}
	if (events & EPOLLOUT)
		conn_flush(c);
	while (!c->dead && !c->eof && (events & EPOLLIN) &&
	       c->wlen - c->woff < TCP_WBUF_HIGH) {
		ssize_t n;

		if (c->rcap - c->rlen < 4096 && c->rcap < 2 + DNS_MSG_MAX + 4096) {
			size_t nc = c->rcap ? c->rcap * 2 : 4096;
			uint8_t *nb = realloc(c->rbuf, nc);

			if (!nb) {
				conn_close(c);
				return;
			}
			c->rbuf = nb;
			c->rcap = nc;
		}
		n = recv(lf->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n == 0) {
			c->eof = true;
		} else if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->dead = true;
			break;
		} else {
			c->rlen += (size_t)n;
			c->active_ms = loop_now_ms();
		}
		conn_process(c);
		if (c->rlen == c->rcap)
			break;      /* a full buffer and no room to answer: wait */
	}
	conn_process(c);
	if (c->dead || (c->eof && !c->pending && c->wlen == c->woff)) {
		conn_close(c);
		return;
	}
	if (c->eof)
		conn_set_events(c, c->wlen ? EPOLLOUT : 0);
	else
		conn_flush(c);
	loop_timer_set(c->s->loop, &c->idle, c->s->cfg.tcp_idle_ms);
}

static void on_conn_idle(struct loop_timer *t)
{
	struct dns_conn *c = container_of(t, struct dns_conn, idle);

	/* idle too long, broken, or half-closed with everything answered */
	if (!c->dead && c->eof && c->wlen > c->woff) {
		loop_timer_set(c->s->loop, &c->idle, c->s->cfg.tcp_idle_ms);
		c->dead = true;     /* one more idle period to drain, then go */
		return;
	}
	conn_close(c);
}

/* At the connection limit: close the connection idle the longest to make
 * room (RFC 7766 §6.2.3), one that owes its client nothing (no forwarded
 * query unanswered, nothing unsent) or is closing anyway. A client that only
 * trickles bytes in counts as active while it sends: the idle timer and this
 * order both go by its last read. Returns false when every connection is
 * busy. */
static bool conn_evict_idle(struct dns_server *s)
{
	struct dns_conn *victim = NULL;

	for (struct dns_conn *c = s->conns; c; c = c->next) {
		if (c->dead) {
			victim = c;
			break;
		}
		if (c->pending || c->wlen > c->woff)
			continue;
		/* the list runs newest first: on a tie the older one wins */
		if (!victim || c->active_ms <= victim->active_ms)
			victim = c;
	}
	if (!victim)
		return false;
	conn_close(victim);
	s->st.tcp_evicted++;
	return true;
}

/* accept() found no descriptor (or no memory) for a waiting connection. The
 * listener is level-triggered and that connection stays queued, so the loop
 * would call us again at once, forever: take the listener off the loop for
 * a moment instead. The connection waits in the backlog meanwhile. */
static void accept_pause(struct dns_listener *ln, int err)
{
	struct dns_server *s = ln->s;
	char where[IP_STRLEN + 16], name[16];

	loop_fd_del(s->loop, &ln->tcp);
	loop_timer_set(s->loop, &ln->accept_pause, ACCEPT_PAUSE_MS);
	if (s->accept_starved)
		return;             /* once per episode */
	s->accept_starved = true;
	dns_log(s, DNS_LOG_WARN, "dns: cannot accept TCP connections on %s: %s (%s); "
		"trying again every %d ms", addr_port_str(&ln->addr, ln->port, where, sizeof(where)),
		strerror(err), errno_name(err, name), ACCEPT_PAUSE_MS);
}

static void on_accept_resume(struct loop_timer *t)
{
	struct dns_listener *ln = container_of(t, struct dns_listener, accept_pause);

	if (loop_fd_add(ln->s->loop, &ln->tcp, EPOLLIN, NULL) < 0)
		loop_timer_set(ln->s->loop, t, ACCEPT_PAUSE_MS);
}

static void on_accept(struct loop_fd *f, uint32_t events)
{
	struct dns_listener *ln = container_of(f, struct dns_listener, tcp);
	struct dns_server *s = ln->s;

	(void)events;
	for (;;) {
		union sa peer;
		socklen_t pl = sizeof(peer);
		struct dns_conn *c;
		int fd = accept4(f->fd, &peer.sa, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_pause(ln, errno);
			else if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (s->accept_starved) {
			char where[IP_STRLEN + 16];

			s->accept_starved = false;
			dns_log(s, DNS_LOG_INFO, "dns: accepting TCP connections on %s again",
				addr_port_str(&ln->addr, ln->port, where, sizeof(where)));
		}
		if ((s->nconns >= s->cfg.tcp_max_conns && !conn_evict_idle(s)) ||
		    !(c = calloc(1, sizeof(*c)))) {
			close(fd);  /* every connection busy: the client retries */
			s->st.dropped++;
			continue;
		}
		c->s = s;
		c->ln = ln;
		ip_from_sa(&c->peer, &peer);
		c->lf.fd = fd;
		c->lf.cb = on_conn;
		c->idle.cb = on_conn_idle;
		c->events = EPOLLIN;
		c->active_ms = loop_now_ms();
		if (loop_fd_add(s->loop, &c->lf, EPOLLIN, NULL) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->st.tcp_conns++;
		loop_timer_set(s->loop, &c->idle, s->cfg.tcp_idle_ms);
	}
}

/* ---- listeners -------------------------------------------------------------------- */

static int open_socket(const struct ip_addr *a, uint16_t port, bool tcp, struct err *e)
{
	int fd, one = 1;
	union sa sa;
	socklen_t sl;
	char where[IP_STRLEN + 16];
	const char *proto = tcp ? "tcp" : "udp";

	addr_port_str(a, port, where, sizeof(where));
	fd = socket(a->family == AF_INET6 ? AF_INET6 : AF_INET,
		    (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "listen on %s/%s: socket", where, proto);
	/* bind before the bridge has its address (the daemon may start first) */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if (a->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (tcp)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa_from_ip(&sa, &sl, a, port);
	if (bind(fd, &sa.sa, sl) < 0 || (tcp && listen(fd, 64) < 0)) {
		int err = errno;

		close(fd);
		return err_sys(e, err, "listen on %s/%s", where, proto);
	}
	return fd;
}

int dns_server_listen(struct dns_server *s, const struct ip_addr *addr, uint16_t port,
		      struct err *e)
{
	struct dns_listener *ln;
	char where[IP_STRLEN + 16];
	int ufd, tfd;

	for (ln = s->listeners; ln; ln = ln->next)
		if (ln->port == port && ip_equal(&ln->addr, addr))
			return err_set(e, EEXIST, "listen on %s: already listening",
				       addr_port_str(addr, port, where, sizeof(where)));
	ufd = open_socket(addr, port, false, e);
	if (ufd < 0)
		return ufd;
	tfd = open_socket(addr, port, true, e);
	if (tfd < 0) {
		close(ufd);
		return tfd;
	}
	ln = calloc(1, sizeof(*ln));
	if (!ln) {
		close(ufd);
		close(tfd);
		return err_sys(e, ENOMEM, "listen on %s", addr_port_str(addr, port, where, sizeof(where)));
	}
	ln->s = s;
	ln->addr = *addr;
	ln->port = port;
	ln->udp = (struct loop_fd){ .fd = ufd, .cb = on_udp };
	ln->tcp = (struct loop_fd){ .fd = tfd, .cb = on_accept };
	ln->accept_pause.cb = on_accept_resume;
	if (loop_fd_add(s->loop, &ln->udp, EPOLLIN, e) < 0 ||
	    loop_fd_add(s->loop, &ln->tcp, EPOLLIN, e) < 0) {
		loop_fd_del(s->loop, &ln->udp);
		close(ufd);
		close(tfd);
		free(ln);
		return err_wrap(e, "listen on %s", addr_port_str(addr, port, where, sizeof(where)));
	}
	ln->next = s->listeners;
	s->listeners = ln;
	return 0;
}

static void listener_free(struct dns_server *s, struct dns_listener *ln)
{
	struct dns_conn *c, *cn;

	for (c = s->conns; c; c = cn) {
		cn = c->next;
		if (c->ln == ln)
			conn_close(c);
	}
	for (struct dns_fwd *f = s->fwds; f; f = f->next)
		if (f->ln == ln)
			f->ln = NULL;
	loop_timer_cancel(s->loop, &ln->accept_pause);
	loop_fd_del(s->loop, &ln->udp);
	loop_fd_del(s->loop, &ln->tcp);
	close(ln->udp.fd);
	close(ln->tcp.fd);
	free(ln);
}

int dns_server_unlisten(struct dns_server *s, const struct ip_addr *addr, uint16_t port)
{
	for (struct dns_listener **pp = &s->listeners; *pp; pp = &(*pp)->next) {
		struct dns_listener *ln = *pp;

		if (ln->port == port && ip_equal(&ln->addr, addr)) {
			*pp = ln->next;
			listener_free(s, ln);
			return 0;
		}
	}
	return -ENOENT;
}

void dns_server_free(struct dns_server *s)
{
	if (!s)
		return;
	while (s->listeners) {
		struct dns_listener *ln = s->listeners;

		s->listeners = ln->next;
		listener_free(s, ln);
	}
	while (s->conns)
		conn_close(s->conns);
	while (s->fwds)
		fwd_free(s->fwds);
	dns_cache_free(s->cache);
	dns_records_free(s->rec);
	free(s->ub);
	for (size_t i = 0; i < s->nups; i++)
		up_free(s->ups[i]);
	free(s->ups);
	free(s);
}
