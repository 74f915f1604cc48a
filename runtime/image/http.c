/* http.c - a small blocking HTTP/1.1 client over TLS (BearSSL) for registry
 * pulls in worker threads: GET, redirects, keep-alive to one origin,
 * Content-Length / chunked / close-delimited bodies, a timeout on every wait
 * and cancellation. The certificate loading and the validator are the
 * remote-management ones (runtime/ctl/tls.h). */
#include "runtime/image/image_int.h"
#include "runtime/ctl/tls.h"
#include "version.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_CA_DEFAULT "/etc/ssl/certs/ca-certificates.crt"
#define HTTP_LINE_MAX 4096              /* a chunk-size or trailer line */
#define HTTP_DRAIN_MAX (64 * 1024)      /* the rest of a body read to keep a connection */
#define HTTP_POLL_SLICE_MS 200          /* how often a wait looks at *cancel */

enum framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct http_client {
	struct tls_anchors anchors;
	atomic_bool *cancel;
	int timeout_ms;

	/* the connection: fd < 0 when there is none */
	int fd;
	char host[256], port[8];
	bool reusable;                  /* the last response ended cleanly */
	int io_err;                     /* what the socket saw (errno; ECONNRESET at EOF) */
	bool io_eof;
	bool established;
	br_ssl_client_context cc;
	struct tls_x509 x509;
	br_sslio_context io;
	unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];

	/* the response being read */
	struct http_head head;
	char url[HTTP_URL_MAX];
	enum framing framing;
	enum chunk_state chunk;
	int64_t length;                 /* Content-Length; -1 */
	uint64_t left;                  /* of the body or of the current chunk */
	uint64_t got;                   /* body bytes read */
	bool body_done, conn_close;
	size_t in_off, in_len;          /* read-ahead from the connection */
	unsigned char in[HTTP_HEAD_MAX + 1024];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool http_transient(int code)
{
	switch (code < 0 ? -code : code) {
	case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case EPIPE: case ETIMEDOUT:
	case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case EAGAIN:
		return true;
	}
	return false;
}

/* ---- parsing ---------------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

int http_parse_head(struct http_head *h, const char *p, size_t len, struct err *e)
{
	size_t end = 0, scan = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	char *line, *next;

	/* the head ends at the first empty line (CRLF CRLF, or bare LFs) */
	for (size_t i = 0; i < scan; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < scan && p[i + 1] == '\n') {
			end = i + 2;
			break;
		}
		if (i + 2 < scan && p[i + 1] == '\r' && p[i + 2] == '\n') {
			end = i + 3;
			break;
		}
	}
	if (!end)
		return len >= HTTP_HEAD_MAX ? -EMSGSIZE : -EAGAIN;
	memcpy(h->text, p, end);
	h->text[end] = '\0';
	h->len = end;
	h->n = 0;
	h->reason = "";
	for (size_t i = 0; i < end; i++)
		if (h->text[i] == '\0' || (h->text[i] == '\r' && h->text[i + 1] != '\n'))
			return err_set(e, EPROTO, "malformed response head (a NUL or bare CR)");

	line = h->text;
	next = strchr(line, '\n');
	*next = '\0';
	if (next > line && next[-1] == '\r')
		next[-1] = '\0';
	if (strncmp(line, "HTTP/1.", 7) || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) || (line[12] != ' ' && line[12] != '\0'))
		return err_set(e, EPROTO, "not an HTTP/1.x response (%.40s)", line);
	h->minor = line[7] - '0';
	h->status = atoi(line + 9);
	if (h->status < 100 || h->status > 599)
		return err_set(e, EPROTO, "HTTP status %d out of range", h->status);
	if (line[12])
		h->reason = trim(line + 13);
	for (line = next + 1; *line; line = next + 1) {
		char *colon;

		next = strchr(line, '\n');      /* every line ends with one: the head does */
		*next = '\0';
		if (next > line && next[-1] == '\r')
			next[-1] = '\0';
		if (!*line)
			break;                  /* the blank line */
		if (*line == ' ' || *line == '\t')
			return err_set(e, EPROTO, "folded header line in the response");
		colon = line;
		while (is_tchar((unsigned char)*colon))
			colon++;
		if (*colon != ':' || colon == line)
			return err_set(e, EPROTO, "malformed header line in the response (%.40s)", line);
		if (h->n == HTTP_HEADERS_MAX)
			return err_set(e, EPROTO, "more than %d header lines in the response",
				       HTTP_HEADERS_MAX);
		*colon = '\0';
		h->h[h->n].name = line;
		h->h[h->n].value = trim(colon + 1);
		for (const char *v = h->h[h->n].value; *v; v++)
			if ((unsigned char)*v < 0x20 && *v != '\t')
				return err_set(e, EPROTO, "control character in header %s", line);
		h->n++;
	}
	return 0;
}

const char *http_header(const struct http_head *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcasecmp(h->h[i].name, name))
			return h->h[i].value;
	return NULL;
}

/* Does the comma-separated list value hold token (any case)? */
static bool list_has(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = value; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!strncasecmp(p, token, n) && (!p[n] || strchr(" \t,;", p[n])))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

int http_url_parse(const char *s, struct http_url *u, struct err *e)
{
	const char *a, *end, *host, *port = NULL;
	size_t hl, al;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(s, "http://", 7))
		return err_set(e, EPROTO, "%.200s: plain HTTP is refused (HTTPS only)", s);
	if (strncasecmp(s, "https://", 8))
		return err_set(e, EINVAL, "%.200s: not an https:// URL", s);
	a = s + 8;
	end = a + strcspn(a, "/?#");
	al = (size_t)(end - a);
	if (memchr(a, '@', al))
		return err_set(e, EINVAL, "%.200s: user names in URLs are refused", s);
	host = a;
	if (*a == '[') {
		const char *rb = memchr(a, ']', al);

		if (!rb)
			goto bad;
		host = a + 1;
		hl = (size_t)(rb - host);
		if (rb + 1 < end) {
			if (rb[1] != ':')
				goto bad;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(a, ':', al);

		hl = colon ? (size_t)(colon - a) : al;
		if (colon)
			port = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(u->host) || al >= sizeof(u->authority))
		goto bad;
	memcpy(u->host, host, hl);
	for (size_t i = 0; i < hl; i++)
		if (!isalnum((unsigned char)u->host[i]) && !strchr(".-_:%", u->host[i]))
			goto bad;
	if (port) {
		size_t pl = (size_t)(end - port);

		if (pl == 0 || pl > 5 || strspn(port, "0123456789") < pl || atoi(port) < 1 ||
		    atoi(port) > 65535)
			goto bad;
		memcpy(u->port, port, pl);
	} else {
		strcpy(u->port, "443");
	}
	if (!strcmp(u->port, "443"))
		snprintf(u->authority, sizeof(u->authority), *a == '[' ? "[%s]" : "%s", u->host);
	else
		snprintf(u->authority, sizeof(u->authority), *a == '[' ? "[%s]:%s" : "%s:%s",
			 u->host, u->port);
	if (*end == '#' || !*end) {
		strcpy(u->path, "/");
	} else {
		size_t pl = strcspn(end, "#");

		if (*end == '?')
			u->path[0] = '/';
		if (pl + 2 > sizeof(u->path))
			return err_set(e, EINVAL, "%.200s...: URL too long", s);
		memcpy(u->path + (*end == '?'), end, pl);
	}
	for (const char *q = u->path; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return err_set(e, EINVAL, "%.200s: space or control character in the URL", s);
	return 0;
bad:
	return err_set(e, EINVAL, "%.200s: malformed host or port in the URL", s);
}

int http_url_resolve(const char *base, const char *ref, char *out, struct err *e)
{
	size_t bl;
	const char *path;
	int n;

	if (!strncasecmp(ref, "https://", 8) || !strncasecmp(ref, "http://", 7)) {
		n = snprintf(out, HTTP_URL_MAX, "%s", ref);
	} else if (ref[0] == '/' && ref[1] == '/') {
		n = snprintf(out, HTTP_URL_MAX, "https:%s", ref);
	} else {
		/* base's scheme and authority; then ref from the root, or from
		 * base's directory (a query alone replaces base's query) */
		path = base + 8 + strcspn(base + 8, "/?#");
		bl = (size_t)(path - base);
		if (ref[0] == '/') {
			n = snprintf(out, HTTP_URL_MAX, "%.*s%s", (int)bl, base, ref);
		} else if (ref[0] == '?') {
			n = snprintf(out, HTTP_URL_MAX, "%.*s%s", (int)(bl + strcspn(path, "?#")),
				     base, ref);
		} else {
			size_t dl = strcspn(path, "?#");

			while (dl && path[dl - 1] != '/')
				dl--;
			n = snprintf(out, HTTP_URL_MAX, "%.*s%s%s", (int)(bl + dl), base,
				     dl ? "" : "/", ref);
		}
	}
	if (n < 0 || n >= HTTP_URL_MAX)
		return err_set(e, EINVAL, "redirect to a URL longer than %d bytes", HTTP_URL_MAX);
	return 0;
}

/* One quoted-string or token at *p into out (truncated to size). */
static int auth_value(const char **p, char *out, size_t size)
{
	const char *s = *p;
	size_t n = 0;

	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (!*s)
				return -1;
			if (*s == '\\' && s[1])
				s++;
			if (n + 1 < size)
				out[n++] = *s;
		}
		s++;
	} else {
		while (is_tchar((unsigned char)*s) || *s == '/' || *s == ':') {
			if (n + 1 < size)
				out[n++] = *s;
			s++;
		}
		if (s == *p)
			return -1;
	}
	out[n] = '\0';
	*p = s;
	return 0;
}

/* src into dst[size], cut short when longer. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The length of the token at p (0: none). */
static size_t token_len(const char *p)
{
	size_t n = 0;

	while (is_tchar((unsigned char)p[n]))
		n++;
	return n;
}

int www_auth_parse(const char *s, struct www_auth *a, struct err *e)
{
	const char *p = s;
	char first_other[32] = "";
	bool bearer_without_realm = false;

	memset(a, 0, sizeof(*a));
	for (int rounds = 0; *p && rounds < 64; rounds++) {      /* challenges */
		enum www_scheme scheme = WWW_NONE;
		struct www_auth cur = { 0 };
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		n = token_len(p);
		if (!n)
			goto bad;
		if (n == 6 && !strncasecmp(p, "Bearer", 6))
			scheme = WWW_BEARER;
		else if (n == 5 && !strncasecmp(p, "Basic", 5))
			scheme = WWW_BASIC;
		else if (!first_other[0])
			snprintf(first_other, sizeof(first_other), "%.*s", (int)(n < 31 ? n : 31), p);
		p = skip_ows(p + n);
		/* auth-params: NAME = VALUE, separated by commas, until a token
		 * that is not followed by '=' (the next challenge) */
		for (;;) {
			const char *name = p;
			char value[1024];

			n = token_len(p);
			if (!n)
				break;
			p = skip_ows(p + n);
			if (*p != '=') {
				p = name;       /* the next challenge's scheme */
				break;
			}
			if (p[1] == '=' || p[1] == ',' || !p[1]) {
				/* token68 ("abc=="): no parameters after it */
				while (*p == '=')
					p++;
				break;
			}
			p = skip_ows(p + 1);
			if (auth_value(&p, value, sizeof(value)) < 0)
				goto bad;
#define AUTH_PARAM(k) (n == sizeof(#k) - 1 && !strncasecmp(name, #k, n)) \
			copy_str(cur.k, sizeof(cur.k), value)
			if AUTH_PARAM(realm);
			else if AUTH_PARAM(service);
			else if AUTH_PARAM(scope);
			else if AUTH_PARAM(error);
#undef AUTH_PARAM
			p = skip_ows(p);
			if (*p == ',') {
				p = skip_ows(p + 1);
				while (*p == ',')
					p = skip_ows(p + 1);
			} else if (*p) {
				goto bad;
			}
		}
		if (scheme == WWW_BEARER && !cur.realm[0]) {
			bearer_without_realm = true;    /* unusable: nowhere to get a token */
		} else if (scheme == WWW_BEARER && a->scheme != WWW_BEARER) {
			*a = cur;
			a->scheme = WWW_BEARER;
		} else if (scheme == WWW_BASIC && a->scheme == WWW_NONE) {
			*a = cur;
			a->scheme = WWW_BASIC;
		}
	}
	if (a->scheme != WWW_NONE)
		return 0;
	if (bearer_without_realm)
		return err_set(e, EINVAL, "a Bearer challenge without a realm");
	if (first_other[0])
		return err_set(e, EINVAL, "the registry asks for %s authentication (Basic or Bearer "
			       "supported)", first_other);
bad:
	memset(a, 0, sizeof(*a));
	return err_set(e, EINVAL, "malformed WWW-Authenticate header (%.80s)", s);
}

/* ---- the connection ----------------------------------------------------------- */

int http_client_new(struct http_client **cp, const char *ca_file, atomic_bool *cancel,
		    struct err *e)
{
	struct http_client *c = calloc(1, sizeof(*c));
	int ret;

	*cp = NULL;
	if (!c)
		return err_set(e, ENOMEM, "out of memory");
	c->fd = -1;
	c->cancel = cancel;
	c->timeout_ms = REGISTRY_TIMEOUT_MS;
	ret = tls_load_anchors(ca_file ? ca_file : HTTP_CA_DEFAULT, "CA bundle", &c->anchors, e);
	if (ret < 0) {
		free(c);
		return ret;
	}
	*cp = c;
	return 0;
}

void http_client_set_timeout(struct http_client *c, int ms)
{
	c->timeout_ms = ms;
}

static void conn_close(struct http_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->reusable = false;
	c->in_off = c->in_len = 0;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	conn_close(c);
	tls_anchors_free(&c->anchors);
	free(c);
}

static bool cancelled(const struct http_client *c)
{
	return c->cancel && atomic_load(c->cancel);
}

/* Wait until fd is ready for events, at most ms: 0 or -errno (-ETIMEDOUT,
 * -ECANCELED). */
static int wait_fd(struct http_client *c, int fd, short events, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		uint64_t now = now_ms();
		int n;

		if (cancelled(c))
			return -ECANCELED;
		if (now >= until)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, until - now < HTTP_POLL_SLICE_MS ? (int)(until - now) :
			 HTTP_POLL_SLICE_MS);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int sock_read(void *ctx, unsigned char *buf, size_t len)
{
	struct http_client *c = ctx;

	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		int ret;

		if (n > 0)
			return (int)n;
		if (n == 0) {
			c->io_eof = true;
			c->io_err = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			c->io_err = errno;
			return -1;
		}
		if ((ret = wait_fd(c, c->fd, POLLIN, c->timeout_ms)) < 0) {
			c->io_err = -ret;
			return -1;
		}
	}
}

static int sock_write(void *ctx, const unsigned char *buf, size_t len)
{
	struct http_client *c = ctx;

	for (;;) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		int ret;

		if (n > 0)
			return (int)n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			c->io_err = errno;
			return -1;
		}
		if ((ret = wait_fd(c, c->fd, POLLOUT, c->timeout_ms)) < 0) {
			c->io_err = -ret;
			return -1;
		}
	}
}

/* Why the TLS connection stopped, as an error naming the host: the socket's
 * error when it had one, else the engine's. */
static int conn_error(struct http_client *c, const char *doing, struct err *e)
{
	int br = br_ssl_engine_last_error(&c->cc.eng);
	char where[300];

	snprintf(where, sizeof(where), "%s:%s", c->host, c->port);
	if (c->io_err == ECANCELED)
		return err_set(e, ECANCELED, "cancelled");
	if (c->io_err == ETIMEDOUT)
		return err_set(e, ETIMEDOUT, "%s: %s: no data for %d s", where, doing,
			       c->timeout_ms / 1000);
	if (!c->established) {
		if (c->x509.ip_failed)
			return err_set(e, EPROTO, "TLS handshake with %s failed: the server's "
				       "certificate does not name %s", where, c->host);
		if (br != BR_ERR_OK && br != BR_ERR_IO)
			return err_set(e, EPROTO, "TLS handshake with %s failed: %s", where,
				       tls_strerror(br));
	}
	if (c->io_eof)
		return err_set(e, ECONNRESET, "%s: %s: the server closed the connection", where,
			       doing);
	if (c->io_err)
		return err_sys(e, c->io_err, "%s: %s", where, doing);
	return err_set(e, EPROTO, "%s: %s: TLS error: %s", where, doing, tls_strerror(br));
}

static int conn_open(struct http_client *c, const struct http_url *u, struct err *e)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res;
	struct ip_addr ip;
	bool is_ip = ip_parse(u->host, &ip, NULL) == 0;
	int rc, en = 0;

	conn_close(c);
	snprintf(c->host, sizeof(c->host), "%s", u->host);
	snprintf(c->port, sizeof(c->port), "%s", u->port);
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc == EAI_AGAIN)
		return err_set(e, EAGAIN, "resolve %s: %s", u->host, gai_strerror(rc));
	if (rc == EAI_SYSTEM)
		return err_sys(e, errno, "resolve %s", u->host);
	if (rc)
		return err_set(e, ENXIO, "resolve %s: %s", u->host, gai_strerror(rc));
	for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		socklen_t sl = sizeof(en);

		if (fd < 0) {
			en = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			en = errno;
		} else if ((rc = wait_fd(c, fd, POLLOUT, HTTP_CONNECT_TIMEOUT_MS)) < 0) {
			en = -rc;
		} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &en, &sl) < 0) {
			en = errno;
		}
		if (en) {
			close(fd);
			if (en == ECANCELED)
				break;
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
		c->fd = fd;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		if (en == ECANCELED)
			return err_set(e, ECANCELED, "cancelled");
		return err_sys(e, en ? en : EHOSTUNREACH, "connect %s:%s", u->host, u->port);
	}
	c->io_err = 0;
	c->io_eof = false;
	c->established = false;
	br_ssl_client_zero(&c->cc);
	tls_engine_setup(&c->cc.eng);
	/* Public registries' chains use P-384 keys too (and offer X25519):
	 * every curve BearSSL has, for the key exchange and for signatures. */
	br_ssl_engine_set_ec(&c->cc.eng, &br_ec_all_m31);
	tls_x509_init(&c->x509, &c->anchors);
	br_x509_minimal_set_ecdsa(&c->x509.min, &br_ec_all_m31, br_ecdsa_i31_vrfy_asn1);
	if (is_ip) {                    /* BearSSL matches DNS names only */
		c->x509.check_ip = true;
		c->x509.ip = ip;
	} else {
		c->x509.ee_optional = true;     /* public leaves with many names can be big */
	}
	br_ssl_engine_set_x509(&c->cc.eng, &c->x509.vtable);
	br_ssl_engine_set_buffer(&c->cc.eng, c->iobuf, sizeof(c->iobuf), 1);
	if (!br_ssl_client_reset(&c->cc, is_ip ? NULL : u->host, 0)) {
		conn_close(c);
		return err_set(e, EPROTO, "TLS set-up for %s failed: %s", u->host,
			       tls_strerror(br_ssl_engine_last_error(&c->cc.eng)));
	}
	br_sslio_init(&c->io, &c->cc.eng, sock_read, c, sock_write, c);
	return 0;
}

/* More bytes into in[]: the number read, 0 at the end of the stream (the
 * server's close_notify or the socket's EOF), or -errno. */
static int conn_fill(struct http_client *c, struct err *e)
{
	int n;

	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
	} else if (c->in_len == sizeof(c->in)) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_len == sizeof(c->in))
		return err_set(e, EMSGSIZE, "read buffer full");
	n = br_sslio_read(&c->io, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (n > 0) {
		c->established = true;
		c->in_len += (size_t)n;
		return n;
	}
	if (br_ssl_engine_last_error(&c->cc.eng) == BR_ERR_OK || (c->io_eof && c->established))
		return 0;
	return conn_error(c, "read", e);
}

/* ---- a request and its response -------------------------------------------- */

static int send_request(struct http_client *c, const struct http_url *u, const struct http_req *r,
			const char *auth, struct err *e)
{
	struct buf q;
	int ret = 0;

	buf_init(&q);
	buf_printf(&q, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth/%s\r\n"
		   "Accept-Encoding: identity\r\n", u->path, u->authority, BERTH_VERSION);
	if (r->accept)
		buf_printf(&q, "Accept: %s\r\n", r->accept);
	if (auth)
		buf_printf(&q, "Authorization: %s\r\n", auth);
	if (r->range_from)
		buf_printf(&q, "Range: bytes=%llu-\r\n", (unsigned long long)r->range_from);
	buf_puts(&q, "\r\n");
	if (br_sslio_write_all(&c->io, q.data, q.len) < 0 || br_sslio_flush(&c->io) < 0)
		ret = conn_error(c, "send the request", e);
	else
		c->established = true;  /* BearSSL sends data only after the handshake */
	buf_free(&q);
	return ret;
}

/* Read the response head into c->head and work out the body's framing. */
static int read_head(struct http_client *c, struct err *e)
{
	const char *v;

	for (;;) {
		int ret = http_parse_head(&c->head, (const char *)c->in + c->in_off,
					  c->in_len - c->in_off, e);

		if (ret == 0) {
			c->in_off += c->head.len;
			if (c->head.status >= 100 && c->head.status < 200)
				continue;       /* 100 Continue and friends: the real one follows */
			break;
		}
		if (ret == -EMSGSIZE)
			return err_set(e, EPROTO, "%s:%s: response head longer than %d bytes", c->host,
				       c->port, HTTP_HEAD_MAX);
		if (ret != -EAGAIN)
			return err_wrap(e, "%s:%s", c->host, c->port);
		if ((ret = conn_fill(c, e)) < 0)
			return ret;
		if (ret == 0)
			return err_set(e, ECONNRESET, "%s:%s: the server closed the connection "
				       "without a response", c->host, c->port);
	}
	c->got = 0;
	c->length = -1;
	c->body_done = false;
	c->conn_close = c->head.minor == 0 ||
		((v = http_header(&c->head, "Connection")) && list_has(v, "close"));
	if (c->head.status == 204 || c->head.status == 304) {
		c->framing = BODY_NONE;
		c->body_done = true;
	} else if ((v = http_header(&c->head, "Transfer-Encoding"))) {
		size_t n = strlen(v);

		/* chunked must be the last coding; we asked for no other */
		if (n < 7 || strcasecmp(v + n - 7, "chunked") || strchr(v, ','))
			return err_set(e, EPROTO, "%s:%s: unsupported Transfer-Encoding '%.40s'",
				       c->host, c->port, v);
		c->framing = BODY_CHUNKED;
		c->chunk = CH_SIZE;
	} else if ((v = http_header(&c->head, "Content-Length"))) {
		char *end;
		unsigned long long n;

		/* one value, digits only; a second header must agree */
		errno = 0;
		n = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end || errno || n > (1ull << 62))
			return err_set(e, EPROTO, "%s:%s: malformed Content-Length '%.40s'", c->host,
				       c->port, v);
		for (size_t i = 0; i < c->head.n; i++)
			if (!strcasecmp(c->head.h[i].name, "Content-Length") &&
			    strcmp(c->head.h[i].value, v))
				return err_set(e, EPROTO, "%s:%s: conflicting Content-Length headers",
					       c->host, c->port);
		c->framing = BODY_LENGTH;
		c->length = (int64_t)n;
		c->left = n;
		c->body_done = n == 0;
	} else {
		c->framing = BODY_CLOSE;
		c->conn_close = true;
	}
	return 0;
}

/* One exchange: on the kept connection when it goes to the same place (once
 * more on a fresh one when the server had closed it meanwhile), else on a
 * new one. */
static int exchange(struct http_client *c, const struct http_url *u, const struct http_req *r,
		    const char *auth, struct err *e)
{
	for (int round = 0; round < 2; round++) {
		bool reused = c->fd >= 0 && c->reusable && !strcmp(c->host, u->host) &&
			      !strcmp(c->port, u->port);
		int ret;

		if (cancelled(c))
			return err_set(e, ECANCELED, "cancelled");
		if (!reused && (ret = conn_open(c, u, e)) < 0)
			return ret;
		c->reusable = false;
		c->in_off = c->in_len = 0;
		ret = send_request(c, u, r, auth, e);
		if (ret == 0)
			ret = read_head(c, e);
		if (ret == 0)
			return 0;
		conn_close(c);
		if (!reused || (ret != -ECONNRESET && ret != -EPIPE))
			return ret;
	}
	return -ECONNRESET;     /* not reached */
}

int http_get(struct http_client *c, const struct http_req *r, const struct http_head **head,
	     struct err *e)
{
	struct http_url u;
	char origin[300], next[HTTP_URL_MAX];
	const char *auth = r->authorization;
	int ret;

	if (strlen(r->url) >= sizeof(c->url))
		return err_set(e, EINVAL, "URL longer than %d bytes", HTTP_URL_MAX);
	strcpy(c->url, r->url);
	for (int redirects = 0;; redirects++) {
		const char *loc;
		int st;

		if ((ret = http_url_parse(c->url, &u, e)) < 0)
			return ret;
		if (redirects == 0)
			snprintf(origin, sizeof(origin), "%s:%s", u.host, u.port);
		/* credentials go to the origin they were meant for only */
		if (auth && redirects > 0) {
			char here[300];

			snprintf(here, sizeof(here), "%s:%s", u.host, u.port);
			if (strcasecmp(here, origin))
				auth = NULL;
		}
		if ((ret = exchange(c, &u, r, auth, e)) < 0)
			return ret;
		st = c->head.status;
		if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308)
			break;
		if (!(loc = http_header(&c->head, "Location")) || !*loc)
			break;                  /* nowhere to go: the caller sees the 3xx */
		if (redirects == HTTP_REDIRECTS_MAX) {
			http_end(c);
			return err_set(e, EPROTO, "%s: more than %d redirects", r->url,
				       HTTP_REDIRECTS_MAX);
		}
		if ((ret = http_url_resolve(c->url, loc, next, e)) < 0) {
			http_end(c);
			return ret;
		}
		http_end(c);
		strcpy(c->url, next);
	}
	*head = &c->head;
	return 0;
}

const char *http_url(const struct http_client *c)
{
	return c->url;
}

int64_t http_length(const struct http_client *c)
{
	return c->length;
}

/* A line (chunk size, trailer) without its CRLF, into out. */
static int read_line(struct http_client *c, char *out, size_t size, struct err *e)
{
	for (;;) {
		unsigned char *s = c->in + c->in_off, *nl = memchr(s, '\n', c->in_len - c->in_off);
		int ret;

		if (nl) {
			size_t n = (size_t)(nl - s);

			if (n && s[n - 1] == '\r')
				n--;
			if (n >= size)
				return err_set(e, EPROTO, "%s:%s: chunk line too long", c->host, c->port);
			memcpy(out, s, n);
			out[n] = '\0';
			c->in_off += (size_t)(nl - s) + 1;
			return 0;
		}
		if (c->in_len - c->in_off >= size)
			return err_set(e, EPROTO, "%s:%s: chunk line too long", c->host, c->port);
		if ((ret = conn_fill(c, e)) < 0)
			return ret;
		if (ret == 0)
			return err_set(e, ECONNRESET, "%s:%s: the connection closed inside a chunked "
				       "body after %llu bytes", c->host, c->port,
				       (unsigned long long)c->got);
	}
}

/* Advance the chunked framing until data may be read (c->left > 0) or the
 * body ends. */
static int chunk_next(struct http_client *c, struct err *e)
{
	char line[HTTP_LINE_MAX];
	int ret;

	while (!c->body_done && !(c->chunk == CH_DATA && c->left)) {
		switch (c->chunk) {
		case CH_DATA:                   /* the chunk is read */
			c->chunk = CH_DATA_END;
			break;
		case CH_DATA_END:
			if ((ret = read_line(c, line, sizeof(line), e)) < 0)
				return ret;
			if (line[0])
				return err_set(e, EPROTO, "%s:%s: malformed chunked body (no CRLF "
					       "after a chunk)", c->host, c->port);
			c->chunk = CH_SIZE;
			break;
		case CH_SIZE: {
			char *end;
			unsigned long long n;

			if ((ret = read_line(c, line, sizeof(line), e)) < 0)
				return ret;
			errno = 0;
			n = strtoull(line, &end, 16);
			if (!isxdigit((unsigned char)line[0]) || errno || n > (1ull << 62) ||
			    (*end && *end != ';' && *end != ' ' && *end != '\t'))
				return err_set(e, EPROTO, "%s:%s: malformed chunk size '%.20s'", c->host,
					       c->port, line);
			c->left = n;
			c->chunk = n ? CH_DATA : CH_TRAILER;
			break;
		}
		case CH_TRAILER:
			if ((ret = read_line(c, line, sizeof(line), e)) < 0)
				return ret;
			if (!line[0])
				c->body_done = true;
			break;
		}
	}
	return 0;
}

ssize_t http_read(struct http_client *c, void *p, size_t n, struct err *e)
{
	size_t avail;
	int ret;

	if (c->framing == BODY_CHUNKED && (ret = chunk_next(c, e)) < 0)
		return ret;
	if (c->body_done || n == 0)
		return 0;
	if (c->in_off == c->in_len) {
		if (cancelled(c))
			return err_set(e, ECANCELED, "cancelled");
		if ((ret = conn_fill(c, e)) < 0)
			return ret;
		if (ret == 0) {
			if (c->framing == BODY_CLOSE) {
				c->body_done = true;
				return 0;
			}
			if (c->framing == BODY_LENGTH)
				return err_set(e, ECONNRESET, "%s:%s: the connection closed after %llu "
					       "of %lld bytes", c->host, c->port,
					       (unsigned long long)c->got, (long long)c->length);
			return err_set(e, ECONNRESET, "%s:%s: the connection closed inside a chunked "
				       "body after %llu bytes", c->host, c->port,
				       (unsigned long long)c->got);
		}
	}
	avail = c->in_len - c->in_off;
	if (n > avail)
		n = avail;
	if (c->framing != BODY_CLOSE && n > c->left)
		n = (size_t)c->left;
	memcpy(p, c->in + c->in_off, n);
	c->in_off += n;
	c->got += n;
	if (c->framing != BODY_CLOSE) {
		c->left -= n;
		if (c->framing == BODY_LENGTH && c->left == 0)
			c->body_done = true;
	}
	return (ssize_t)n;
}

int http_read_all(struct http_client *c, struct buf *b, size_t max, struct err *e)
{
	char chunk[4096];
	size_t start = b->len;

	if (c->length > 0 && (uint64_t)c->length > max)
		return err_set(e, EFBIG, "larger than %zu bytes (%lld)", max, (long long)c->length);
	for (;;) {
		ssize_t n = http_read(c, chunk, sizeof(chunk), e);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		if (b->len - start + (size_t)n > max)
			return err_set(e, EFBIG, "larger than %zu bytes", max);
		buf_append(b, chunk, (size_t)n);
	}
}

void http_end(struct http_client *c)
{
	char sink[4096];
	size_t drained = 0;
	struct err ignore;

	if (c->fd < 0)
		return;
	/* a short rest (an error page, a redirect's body) is read so that the
	 * connection can carry the next request */
	while (!c->body_done && !c->conn_close && drained < HTTP_DRAIN_MAX &&
	       (c->framing != BODY_LENGTH || c->left <= HTTP_DRAIN_MAX)) {
		ssize_t n = http_read(c, sink, sizeof(sink), &ignore);

		if (n <= 0)
			break;
		drained += (size_t)n;
	}
	if (c->body_done && !c->conn_close && c->in_off == c->in_len)
		c->reusable = true;
	else
		conn_close(c);
}
