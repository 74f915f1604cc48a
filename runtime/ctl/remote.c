/* remote.c - the control protocol over mutual TLS: the daemon's listener (a
 * transport of the connection server in conn.c: BearSSL engines driven from
 * the event loop, the client's key, rate-limited logging) and the CLI's
 * transport behind ctl_call(). */
#include "runtime/ctl/conn.h"
#include "runtime/ctl/tls.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* What a listener serves with: shared by the connections that started with
 * it, so a reload can swap it while they finish (refcounted). */
struct remote_creds {
	int refs;
	struct tls_creds creds;
	struct tls_anchors anchors;
	uint8_t (*pins)[32];        /* NULL: any key the CA signed */
	size_t n_pins;
	uint8_t (*ro)[32];          /* read-only keys */
	size_t n_ro;
	uint8_t digest[32];         /* of all the above: did a reload change it? */
};

static void digest_add(br_sha256_context *h, const void *p, size_t n)
{
	uint64_t len = n;

	br_sha256_update(h, &len, sizeof(len));     /* framed: no ambiguity */
	if (n)
		br_sha256_update(h, p, n);
}

static void creds_digest(struct remote_creds *c)
{
	const struct tls_creds *k = &c->creds;
	br_sha256_context h;

	br_sha256_init(&h);
	for (size_t i = 0; i < k->chain_len; i++)
		digest_add(&h, k->chain[i].data, k->chain[i].data_len);
	if (k->key_type == BR_KEYTYPE_EC)
		digest_add(&h, k->ec.x, k->ec.xlen);
	else
		digest_add(&h, k->rsa.p, k->rsa.plen);
	for (size_t i = 0; i < c->anchors.n; i++) {
		const br_x509_trust_anchor *ta = &c->anchors.v[i];

		digest_add(&h, ta->dn.data, ta->dn.len);
		if (ta->pkey.key_type == BR_KEYTYPE_EC)
			digest_add(&h, ta->pkey.key.ec.q, ta->pkey.key.ec.qlen);
		else
			digest_add(&h, ta->pkey.key.rsa.n, ta->pkey.key.rsa.nlen);
	}
	digest_add(&h, c->pins, c->n_pins * 32);
	digest_add(&h, c->ro, c->n_ro * 32);
	br_sha256_out(&h, c->digest);
}

/* A TLS client: a connection of the connection server (conn.h) plus its
 * engine. */
struct remote_conn {
	struct conn c;
	struct remote_creds *creds;
	char peer[IP_STRLEN + 8];
	bool established;           /* handshake done */
	bool close_sent;            /* close_notify queued */
	uint32_t poll;              /* what the engine waits for (0: nothing) */
	br_ssl_server_context sc;
	struct tls_x509 x509;
	unsigned char iobuf[BR_SSL_BUFSIZE_MONO];   /* half duplex: request, then reply */
};

/* Kinds of refusal for the log limiter (BearSSL codes are below 1024). */
enum { RL_PIN = 1024, RL_FULL, RL_TOO_LONG, RL_IDLE, RL_IO };

struct remote_server {
	struct conn_server cs;      /* handler, ctx and log too */
	struct remote_creds *creds; /* for new clients */
	struct ip_addr addr;
	uint16_t port;
	char addrstr[IP_STRLEN + 8];
	struct { int kind; uint64_t last_ms; unsigned suppressed; } rate[8];
	struct remote_server *next_retired;
};

static void creds_put(struct remote_creds *c)
{
	if (!c || --c->refs > 0)
		return;
	tls_creds_free(&c->creds);
	tls_anchors_free(&c->anchors);
	free(c->pins);
	free(c->ro);
	free(c);
}

static struct remote_creds *creds_load(const struct cfg_remote *cfg, struct err *e)
{
	struct remote_creds *c = calloc(1, sizeof(*c));

	if (!c) {
		err_set(e, ENOMEM, "out of memory");
		return NULL;
	}
	c->refs = 1;
	if (tls_load_chain(cfg->cert, "[remote] cert", &c->creds, e) < 0 ||
	    tls_load_key(cfg->key, "[remote] key", &c->creds, e) < 0 ||
	    tls_load_anchors(cfg->client_ca, "[remote] client_ca", &c->anchors, e) < 0) {
		creds_put(c);
		return NULL;
	}
	if (tls_creds_check(&c->creds, e) < 0) {
		err_wrap(e, "[remote] key %s and cert %s", cfg->key, cfg->cert);
		creds_put(c);
		return NULL;
	}
	if (cfg->n_read_only) {
		c->ro = malloc(cfg->n_read_only * 32);
		if (!c->ro)
			abort();
		memcpy(c->ro, cfg->read_only, cfg->n_read_only * 32);
		c->n_ro = cfg->n_read_only;
	}
	if (cfg->n_clients) {       /* pinned: the listed keys plus the read-only ones */
		c->pins = malloc((cfg->n_clients + cfg->n_read_only) * 32);
		if (!c->pins)
			abort();
		memcpy(c->pins, cfg->clients, cfg->n_clients * 32);
		if (cfg->n_read_only)
			memcpy(c->pins + cfg->n_clients, cfg->read_only, cfg->n_read_only * 32);
		c->n_pins = cfg->n_clients + cfg->n_read_only;
	}
	creds_digest(c);
	return c;
}

/* ---- logging, once per kind per window ------------------------------------ */

static void srv_log_limited(struct remote_server *s, int kind, enum log_level lvl,
			    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void srv_log_limited(struct remote_server *s, int kind, enum log_level lvl,
			    const char *fmt, ...)
{
	uint64_t now = loop_now_ms();
	size_t slot = 0;
	char msg[512];
	va_list ap;

	for (size_t i = 0; i < ARRAY_SIZE(s->rate); i++) {
		if (s->rate[i].kind == kind) {
			slot = i;
			break;
		}
		if (s->rate[i].last_ms < s->rate[slot].last_ms)
			slot = i;   /* else reuse the stalest slot */
	}
	if (s->rate[slot].kind == kind && s->rate[slot].last_ms &&
	    now - s->rate[slot].last_ms < REMOTE_LOG_EVERY_MS) {
		s->rate[slot].suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!s->cs.log)
		;
	else if (s->rate[slot].kind == kind && s->rate[slot].suppressed)
		s->cs.log(s->cs.ctx, lvl, "%s (and %u more like this since the last report)", msg,
			  s->rate[slot].suppressed);
	else
		s->cs.log(s->cs.ctx, lvl, "%s", msg);
	s->rate[slot].kind = kind;
	s->rate[slot].last_ms = now;
	s->rate[slot].suppressed = 0;
}

/* ---- one connection: the TLS transport ---------------------------------- */

static struct remote_server *conn_remote(const struct conn *c)
{
	return container_of(c->srv, struct remote_server, cs);
}

/* The engine stopped: say why once (rate-limited) unless it was a clean end
 * or the client got as far as a request. Returns 0 for a clean end. */
static int tls_closed(struct remote_conn *t)
{
	struct remote_server *s = conn_remote(&t->c);
	int err = br_ssl_engine_last_error(&t->sc.eng);

	if (err == BR_ERR_OK)
		return 0;
	if (t->c.state != CONN_READING)
		return -EPROTO;
	if (t->x509.pin_failed) {
		char h[80];

		srv_log_limited(s, RL_PIN, LOG_WARN, "remote client %s refused: its key %s is not "
				"in [remote] clients or read_only", t->peer,
				tls_spki_format(t->x509.spki, h));
	} else if (err == BR_ERR_IO) {
		srv_log_limited(s, RL_IO, LOG_INFO, "remote client %s closed the connection during "
				"the handshake", t->peer);
	} else {
		srv_log_limited(s, err, LOG_WARN, "remote client %s refused: TLS handshake failed: %s",
				t->peer, tls_strerror(err));
	}
	return -EPROTO;
}

/* Move records between the socket and the engine until the engine offers
 * goal (BR_SSL_RECVAPP: a client's bytes; BR_SSL_SENDAPP: room for ours; 0:
 * only send what is queued). Returns goal's bits; 0 at the end of the
 * stream (or, for goal 0, once everything is sent); -EAGAIN with t->poll
 * saying what to wait for; or -errno. Application data nobody asked for
 * (after the request line) is dropped. */
static int tls_pump(struct remote_conn *t, unsigned goal)
{
	br_ssl_engine_context *eng = &t->sc.eng;
	int fd = t->c.fd.fd;

	t->poll = 0;
	for (;;) {
		unsigned st = br_ssl_engine_current_state(eng);
		unsigned char *p;
		size_t len;
		ssize_t n;

		if (st & BR_SSL_CLOSED)
			return tls_closed(t);
		if (!t->established && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
			t->established = true;
			for (size_t i = 0; t->x509.have_spki && i < t->creds->n_ro; i++)
				if (!memcmp(t->creds->ro[i], t->x509.spki, 32))
					t->c.read_only = true;
		}
		if (st & BR_SSL_SENDREC) {
			p = br_ssl_engine_sendrec_buf(eng, &len);
			n = send(fd, p, len, MSG_NOSIGNAL);
			if (n > 0) {
				br_ssl_engine_sendrec_ack(eng, (size_t)n);
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN)
				return -errno;
			t->poll = EPOLLOUT;
		}
		if (st & goal)
			return (int)(st & goal);
		if (st & BR_SSL_RECVAPP) {
			br_ssl_engine_recvapp_buf(eng, &len);
			br_ssl_engine_recvapp_ack(eng, len);
			continue;
		}
		if (t->poll)
			return -EAGAIN;
		if (!goal)
			return 0;
		if (!(st & BR_SSL_RECVREC)) {
			t->poll = EPOLLIN;
			return -EAGAIN;
		}
		p = br_ssl_engine_recvrec_buf(eng, &len);
		n = recv(fd, p, len, 0);
		if (n > 0) {
			br_ssl_engine_recvrec_ack(eng, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			t->poll = EPOLLIN;
			return -EAGAIN;
		}
		if (n == 0 && !t->established && t->c.state == CONN_READING)
			srv_log_limited(conn_remote(&t->c), RL_IO, LOG_INFO, "remote client %s closed "
					"the connection during the handshake", t->peer);
		return n == 0 ? 0 : -errno;
	}
}

static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);
	int ret = tls_pump(t, BR_SSL_RECVAPP);
	unsigned char *p;
	size_t n;

	if (ret <= 0)
		return ret;
	p = br_ssl_engine_recvapp_buf(&t->sc.eng, &n);
	if (n > len)
		n = len;
	memcpy(buf, p, n);
	br_ssl_engine_recvapp_ack(&t->sc.eng, n);
	return (ssize_t)n;
}

static ssize_t tls_write(struct conn *c, const void *buf, size_t len)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);
	int ret = tls_pump(t, BR_SSL_SENDAPP);
	unsigned char *p;
	size_t n;

	if (ret <= 0)
		return ret == 0 ? -EPIPE : ret;
	p = br_ssl_engine_sendapp_buf(&t->sc.eng, &n);
	if (n > len)
		n = len;
	memcpy(p, buf, n);
	br_ssl_engine_sendapp_ack(&t->sc.eng, n);
	return (ssize_t)n;
}

/* The reply is in the engine: flush it, then close_notify says it is complete. */
static int tls_end(struct conn *c)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);

	if (!t->close_sent) {
		br_ssl_engine_flush(&t->sc.eng, 0);
		br_ssl_engine_close(&t->sc.eng);
		t->close_sent = true;
	}
	return tls_pump(t, 0);
}

static uint32_t tls_events(struct conn *c, uint32_t base)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);

	return t->poll ? t->poll : base;
}

static const char *tls_admit(struct conn *c, const char *line)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);
	struct remote_server *s = conn_remote(c);

	if (s->cs.log) {
		char h[80], cmd[32];

		snprintf(cmd, sizeof(cmd), "%.*s", (int)strcspn(line, " "), line);
		s->cs.log(s->cs.ctx, LOG_DEBUG, "remote client %s (key %s%s): %s", t->peer,
		       tls_spki_format(t->x509.spki, h), c->read_only ? ", read-only" : "", cmd);
	}
	return NULL;
}

static void tls_note(struct conn *c, enum conn_note what)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);
	struct remote_server *s = conn_remote(c);

	switch (what) {
	case CONN_NOTE_TOO_LONG:
		srv_log_limited(s, RL_TOO_LONG, LOG_WARN, "remote client %s refused: request longer "
				"than %d bytes", t->peer, CTL_REQ_MAX);
		break;
	case CONN_NOTE_TIMEOUT:
		if (c->state == CONN_READING)
			srv_log_limited(s, RL_IDLE, LOG_INFO, "remote client %s timed out after %d ms "
					"without a request", t->peer, REMOTE_IDLE_MS);
		break;
	case CONN_NOTE_EVICTED:
		srv_log_limited(s, RL_FULL, LOG_WARN, "too many remote clients (limit %d): closing "
				"the one idle longest (%s)", REMOTE_MAX_CONNS, t->peer);
		break;
	}
}

static void conn_engine_init(struct remote_conn *c, struct remote_creds *cr)
{
	br_ssl_server_context *sc = &c->sc;

	br_ssl_server_zero(sc);
	tls_engine_setup(&sc->eng);
	if (cr->creds.key_type == BR_KEYTYPE_EC)
		br_ssl_server_set_single_ec(sc, cr->creds.chain, cr->creds.chain_len, &cr->creds.ec,
					    BR_KEYTYPE_SIGN, cr->creds.issuer_key_type,
					    &br_ec_p256_m31, br_ecdsa_i31_sign_asn1);
	else
		br_ssl_server_set_single_rsa(sc, cr->creds.chain, cr->creds.chain_len, &cr->creds.rsa,
					     BR_KEYTYPE_SIGN, br_rsa_i31_private,
					     br_rsa_i31_pkcs1_sign);
	tls_x509_init(&c->x509, &cr->anchors);
	c->x509.pins = (const uint8_t (*)[32])cr->pins;
	c->x509.n_pins = cr->n_pins;
	br_ssl_engine_set_x509(&sc->eng, &c->x509.vtable);
	/* Naming the CAs makes the server ask for a client certificate; without
	 * BR_OPT_TOLERATE_NO_CLIENT_AUTH a client that sends none fails. */
	br_ssl_server_set_trust_anchor_names_alt(sc, cr->anchors.v, cr->anchors.n);
	br_ssl_engine_set_buffer(&sc->eng, c->iobuf, sizeof(c->iobuf), 0);
	br_ssl_server_reset(sc);
}

static void peer_format(int fd, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct ip_addr a = { 0 };
	char ip[IP_STRLEN];

	snprintf(buf, size, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		ip_from_bytes(&a, AF_INET, &in->sin_addr);
		snprintf(buf, size, "%s:%u", ip_format(&a, ip), ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		ip_from_bytes(&a, AF_INET6, &in6->sin6_addr);
		snprintf(buf, size, "[%s]:%u", ip_format(&a, ip), ntohs(in6->sin6_port));
	}
}

static int tls_open(struct conn *c)
{
	struct remote_conn *t = container_of(c, struct remote_conn, c);
	struct remote_server *s = conn_remote(c);

	/* Handshake flights go out as several small records: without this,
	 * Nagle and delayed ACKs add ~40 ms per flight. */
	setsockopt(c->fd.fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	t->creds = s->creds;        /* a reload may swap s->creds: this one finishes with these */
	t->creds->refs++;
	peer_format(c->fd.fd, t->peer, sizeof(t->peer));
	conn_engine_init(t, t->creds);
	return 0;
}

static void tls_release(struct conn *c)
{
	creds_put(container_of(c, struct remote_conn, c)->creds);
}

static const struct conn_ops remote_tls_ops = {
	.size = sizeof(struct remote_conn),
	.open = tls_open,
	.read = tls_read,
	.write = tls_write,
	.end = tls_end,
	.events = tls_events,
	.admit = tls_admit,
	.note = tls_note,
	.release = tls_release,
};

/* ---- the listener --------------------------------------------------------- */

static int srv_listen(struct remote_server *s, const struct cfg_remote *cfg, struct err *e)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd, one = 1, ret;
	char ip[IP_STRLEN];

	if (cfg->addr.family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(cfg->port);
		memcpy(&in6->sin6_addr, cfg->addr.b, 16);
		sl = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(cfg->port);
		memcpy(&in->sin_addr, cfg->addr.b, 4);
		sl = sizeof(*in);
	}
	snprintf(s->addrstr, sizeof(s->addrstr), cfg->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 ip_format(&cfg->addr, ip), cfg->port);
	fd = socket(cfg->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "remote listener socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cfg->addr.family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		ret = err_sys(e, errno, "[remote] listen %s", s->addrstr);
		close(fd);
		return ret;
	}
	if (listen(fd, 256) < 0) {
		ret = err_sys(e, errno, "[remote] listen %s", s->addrstr);
		close(fd);
		return ret;
	}
	if (cfg->port == 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)   /* tests */
		snprintf(s->addrstr, sizeof(s->addrstr), cfg->addr.family == AF_INET6 ? "[%s]:%u" :
			 "%s:%u", ip, ntohs(cfg->addr.family == AF_INET6 ?
					    ((struct sockaddr_in6 *)&ss)->sin6_port :
					    ((struct sockaddr_in *)&ss)->sin_port));
	if ((ret = conn_server_listen(&s->cs, fd, e)) < 0)     /* closes fd */
		return ret;
	s->addr = cfg->addr;
	s->port = cfg->port;
	return 0;
}

struct remote_server *remote_server_open(struct loop *l, const struct cfg_remote *cfg,
					 ctl_handler_fn *handler, void *ctx,
					 ctl_log_fn *log, struct err *e)
{
	struct remote_server *s = calloc(1, sizeof(*s));

	if (!s) {
		err_set(e, ENOMEM, "out of memory");
		return NULL;
	}
	conn_server_init(&s->cs, l, &remote_tls_ops, REMOTE_MAX_CONNS, REMOTE_IDLE_MS, handler,
			 ctx, log);
	s->creds = creds_load(cfg, e);
	if (!s->creds || srv_listen(s, cfg, e) < 0) {
		remote_server_close(s);
		return NULL;
	}
	snprintf(s->cs.what, sizeof(s->cs.what), "remote listener %s", s->addrstr);
	return s;
}

int remote_server_update(struct remote_server *s, const struct cfg_remote *cfg, struct err *e)
{
	struct remote_creds *c = creds_load(cfg, e);
	bool moved = !ip_equal(&cfg->addr, &s->addr) || cfg->port != s->port, same;

	if (!c)
		return -1;
	same = !moved && !memcmp(c->digest, s->creds->digest, sizeof(c->digest));
	if (moved) {
		struct ip_addr old_addr = s->addr;
		struct cfg_remote old = { .addr = old_addr, .port = s->port };

		conn_server_unlisten(&s->cs);
		if (srv_listen(s, cfg, e) < 0) {
			struct err ignore;

			srv_listen(s, &old, &ignore);   /* the port was ours a moment ago */
			creds_put(c);
			return -1;
		}
		snprintf(s->cs.what, sizeof(s->cs.what), "remote listener %s", s->addrstr);
	}
	creds_put(s->creds);
	s->creds = c;           /* new clients; those connected finish with the old */
	return same ? 0 : 1;
}

/* Retired servers still finishing their clients (closed at shutdown). */
static struct remote_server *retired_servers;

static void remote_server_drained(struct conn_server *cs)
{
	remote_server_close(container_of(cs, struct remote_server, cs));
}

void remote_server_retire(struct remote_server *s)
{
	s->next_retired = retired_servers;
	retired_servers = s;
	conn_server_retire(&s->cs, remote_server_drained);
}

void remote_server_close_retired(void)
{
	while (retired_servers)
		remote_server_close(retired_servers);
}

void remote_server_close(struct remote_server *s)
{
	if (!s)
		return;
	if (s->cs.retired) {
		for (struct remote_server **pp = &retired_servers; *pp; pp = &(*pp)->next_retired) {
			if (*pp == s) {
				*pp = s->next_retired;
				break;
			}
		}
	}
	conn_server_close(&s->cs);
	creds_put(s->creds);
	free(s);
}

const char *remote_server_addr(const struct remote_server *s)
{
	return s->addrstr;
}

void remote_fuzz_handshake(const struct tls_creds *creds, const struct tls_anchors *a,
			   const uint8_t *data, size_t len)
{
	struct remote_creds cr = { .refs = 1, .creds = *creds, .anchors = *a };
	struct remote_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	conn_engine_init(c, &cr);
	for (int rounds = 0; rounds < 1000; rounds++) {
		br_ssl_engine_context *eng = &c->sc.eng;
		unsigned st = br_ssl_engine_current_state(eng);
		unsigned char *p;
		size_t n;

		if (st & BR_SSL_CLOSED)
			break;
		if (st & BR_SSL_SENDREC) {
			p = br_ssl_engine_sendrec_buf(eng, &n);
			br_ssl_engine_sendrec_ack(eng, n);     /* to nowhere */
		} else if (st & BR_SSL_RECVAPP) {
			p = br_ssl_engine_recvapp_buf(eng, &n);
			br_ssl_engine_recvapp_ack(eng, n);
		} else if ((st & BR_SSL_RECVREC) && len) {
			p = br_ssl_engine_recvrec_buf(eng, &n);
			if (n > len)
				n = len;
			memcpy(p, data, n);
			br_ssl_engine_recvrec_ack(eng, n);
			data += n;
			len -= n;
		} else {
			break;
		}
	}
	free(c);
}

/* ---- the CLI's transport -------------------------------------------------- */

static int sock_read(void *ctx, unsigned char *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(*(int *)ctx, buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		return n <= 0 ? -1 : (int)n;
	}
}

static int sock_write(void *ctx, const unsigned char *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		return n <= 0 ? -1 : (int)n;
	}
}

/* Split HOST:PORT or [V6]:PORT. */
static int split_hostport(const char *s, char *host, size_t hsize, char *port, size_t psize,
			  struct err *e)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl;

	if (!colon || !colon[1] || strlen(colon + 1) >= psize)
		goto bad;
	hl = (size_t)(colon - s);
	if (h[0] == '[') {
		if (hl < 3 || h[hl - 1] != ']')
			goto bad;
		h++;
		hl -= 2;
	} else if (memchr(h, ':', hl)) {
		goto bad;
	}
	if (hl == 0 || hl >= hsize)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
bad:
	return err_set(e, EINVAL, "-r %s: expected HOST:PORT or [IPV6]:PORT", s);
}

static int remote_connect(const char *host, const char *port, const char *where, struct err *e)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = REMOTE_CALL_TIMEOUT_S };
	int fd = -1, en = 0, rc;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc)
		return err_set(e, EHOSTUNREACH, "cannot reach berth at %s: %s", where, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			en = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		en = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		err_set(e, en, "cannot reach berth at %s: %s (is [remote] configured?)", where,
			strerror(en));
		return -en;
	}
	return fd;
}

struct remote_client {
	br_ssl_client_context cc;
	struct tls_x509 x509;
	br_sslio_context io;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
};

int remote_call(const struct ctl_remote *r, bool json, int argc, char *const *argv,
		struct buf *body, struct err *e)
{
	struct tls_creds creds = { 0 };
	struct tls_anchors anchors = { 0 };
	struct remote_client *cl = NULL;
	char host[256], port[16], req[CTL_REQ_MAX + 1];
	struct ip_addr ip;
	struct buf reply;
	bool is_ip, sent;
	int fd = -1, n, ret, err;

	buf_init(&reply);
	if (!r->cert || !r->key || !r->ca)
		return err_set(e, EINVAL, "-r needs --cert, --key and --ca");
	if ((ret = split_hostport(r->host, host, sizeof(host), port, sizeof(port), e)) < 0)
		return ret;
	n = ctl_encode_request(req, sizeof(req), json, argc, argv);
	if (n < 0)
		return err_set(e, E2BIG, "request too long (max %d bytes)", CTL_REQ_MAX);
	if ((ret = tls_load_chain(r->cert, "--cert", &creds, e)) < 0 ||
	    (ret = tls_load_key(r->key, "--key", &creds, e)) < 0 ||
	    (ret = tls_load_anchors(r->ca, "--ca", &anchors, e)) < 0)
		goto out;
	if ((ret = tls_creds_check(&creds, e)) < 0) {
		err_wrap(e, "--key %s and --cert %s", r->key, r->cert);
		goto out;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		ret = err_set(e, ENOMEM, "out of memory");
		goto out;
	}
	if ((fd = remote_connect(host, port, r->host, e)) < 0) {
		ret = fd;
		goto out;
	}
	is_ip = ip_parse(host, &ip, NULL) == 0;
	br_ssl_client_zero(&cl->cc);
	tls_engine_setup(&cl->cc.eng);
	tls_x509_init(&cl->x509, &anchors);
	if (is_ip) {                /* BearSSL matches DNS names only */
		cl->x509.check_ip = true;
		cl->x509.ip = ip;
	}
	br_ssl_engine_set_x509(&cl->cc.eng, &cl->x509.vtable);
	if (creds.key_type == BR_KEYTYPE_EC)
		br_ssl_client_set_single_ec(&cl->cc, creds.chain, creds.chain_len, &creds.ec,
					    BR_KEYTYPE_SIGN, creds.issuer_key_type, &br_ec_p256_m31,
					    br_ecdsa_i31_sign_asn1);
	else
		br_ssl_client_set_single_rsa(&cl->cc, creds.chain, creds.chain_len, &creds.rsa,
					     br_rsa_i31_pkcs1_sign);
	br_ssl_engine_set_buffer(&cl->cc.eng, cl->iobuf, sizeof(cl->iobuf), 1);
	br_ssl_client_reset(&cl->cc, is_ip ? NULL : host, 0);
	br_sslio_init(&cl->io, &cl->cc.eng, sock_read, &fd, sock_write, &fd);
	/* BearSSL sends application data only once the handshake is complete
	 * (no False Start), so a failed write is a failed handshake. */
	sent = br_sslio_write_all(&cl->io, req, (size_t)n) == 0 && br_sslio_flush(&cl->io) == 0;
	for (;;) {
		unsigned char chunk[4096];
		int k = br_sslio_read(&cl->io, chunk, sizeof(chunk));

		if (k < 0)
			break;
		buf_append(&reply, chunk, (size_t)k);
	}
	err = br_ssl_engine_last_error(&cl->cc.eng);
	if (err != BR_ERR_OK) {
		if (cl->x509.ip_failed)
			ret = err_set(e, EPROTO, "TLS handshake with %s failed: the server's certificate "
				      "does not name %s", r->host, host);
		else if (err == BR_ERR_IO && !sent)
			ret = err_set(e, EPROTO, "TLS handshake with %s failed: the server closed the "
				      "connection (its log says why: a client certificate it does not "
				      "trust, an expired one, or a key it does not allow)", r->host);
		else if (sent)
			ret = err_set(e, EPROTO, "berth at %s: the TLS connection broke (%s)", r->host,
				      tls_strerror(err));
		else
			ret = err_set(e, EPROTO, "TLS handshake with %s failed: %s", r->host,
				      tls_strerror(err));
		goto out;
	}
	ret = ctl_parse_reply(&reply, r->host, body, e);
out:
	if (fd >= 0)
		close(fd);
	free(cl);
	tls_creds_free(&creds);
	tls_anchors_free(&anchors);
	buf_free(&reply);
	return ret;
}
