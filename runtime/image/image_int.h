/* image_int.h - declarations shared by the files of runtime/image/ only (and
 * their tests): the HTTP client under registry.c and the parsers it is made
 * of, exposed so that they can be tested and fuzzed on their own. */
#ifndef BERTH_IMAGE_INT_H
#define BERTH_IMAGE_INT_H

#include "runtime/image/image.h"

#include <stdatomic.h>
#include <sys/types.h>

/* ---- HTTP/1.1 over TLS (http.c) ---------------------------------------------
 * A blocking client for one thread: GET only, HTTPS only (BearSSL, TLS 1.2,
 * SNI and the server's name checked; an IP-address host is checked against
 * the certificate's iPAddress names), bodies framed by Content-Length,
 * chunked or the connection's end. One connection is kept open between
 * requests to the same host and port. Every wait is bounded by the client's
 * timeout (REGISTRY_TIMEOUT_MS without a byte moving) and ends early when
 * *cancel becomes true (-ECANCELED). Transport errors use the codes a
 * caller can sort: ECONNREFUSED, ECONNRESET (also a connection closed too
 * early), ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EAGAIN (a name server that
 * did not answer) are worth another try; EPROTO (TLS refused, a malformed
 * response), ENXIO (no such host) are not. */
#define HTTP_HEAD_MAX 16384             /* bytes of a response's status line and headers */
#define HTTP_HEADERS_MAX 128            /* header lines in one response */
#define HTTP_REDIRECTS_MAX 5
#define HTTP_URL_MAX 4096
#define HTTP_CONNECT_TIMEOUT_MS 10000   /* per address of the host */

/* A response head, parsed in place into text. */
struct http_head {
	int status;                     /* 100..599 */
	int minor;                      /* HTTP/1.minor */
	const char *reason;             /* "" when none */
	struct { const char *name, *value; } h[HTTP_HEADERS_MAX];
	size_t n;
	size_t len;                     /* bytes of the head in the input, blank line included */
	char text[HTTP_HEAD_MAX + 1];
};

/* Parse the head at the start of p[0..len): 0 with h->len set (the body
 * follows); -EAGAIN when p does not hold a whole head yet; -EMSGSIZE when
 * the head is, or would be, longer than HTTP_HEAD_MAX; -EPROTO with the
 * reason in e when it is not an HTTP/1.x response head. */
int http_parse_head(struct http_head *h, const char *p, size_t len, struct err *e);
/* The value of the first header called name (any case), or NULL. */
const char *http_header(const struct http_head *h, const char *name);

/* A URL the client can fetch: https://HOST[:PORT][/PATH][?QUERY]. */
struct http_url {
	char host[256];                 /* without the brackets of an IPv6 literal */
	char port[8];                   /* "443" unless given */
	char authority[272];            /* for the Host header: "host", "host:5000", "[::1]:5000" */
	char path[HTTP_URL_MAX];        /* "/..." with the query, without a fragment */
};
int http_url_parse(const char *s, struct http_url *u, struct err *e);
/* Resolve ref (a Location header) against base, into out (HTTP_URL_MAX). */
int http_url_resolve(const char *base, const char *ref, char *out, struct err *e);

/* A WWW-Authenticate challenge: the first Bearer one, else the first Basic. */
enum www_scheme { WWW_NONE, WWW_BASIC, WWW_BEARER };
struct www_auth {
	enum www_scheme scheme;
	char realm[1024], service[256], scope[1024], error[64];
};
/* 0, or -EINVAL (malformed, or no Basic or Bearer challenge) with why in e. */
int www_auth_parse(const char *s, struct www_auth *a, struct err *e);

struct http_client;
/* anchors from ca_file (NULL: /etc/ssl/certs/ca-certificates.crt). */
int http_client_new(struct http_client **c, const char *ca_file, atomic_bool *cancel,
		    struct err *e);
void http_client_free(struct http_client *c);
/* Milliseconds a wait may last without a byte moving (REGISTRY_TIMEOUT_MS). */
void http_client_set_timeout(struct http_client *c, int ms);

struct http_req {
	const char *url;
	const char *authorization;      /* NULL: none; dropped on a redirect to another host */
	const char *accept;             /* NULL: none */
	uint64_t range_from;            /* > 0: "Range: bytes=N-" */
};
/* GET r->url and read the response's head, following up to HTTP_REDIRECTS_MAX
 * redirects (301, 302, 303, 307, 308). On 0, *head is the final response's
 * (valid until the next request) and its body is read with http_read; end
 * every response with http_end. Errors name the host and the step. */
int http_get(struct http_client *c, const struct http_req *r, const struct http_head **head,
	     struct err *e);
/* The URL the final response came from (after redirects). */
const char *http_url(const struct http_client *c);
/* Body bytes: a count, 0 at the end, or -errno (a connection closed before
 * the end is -ECONNRESET, "...after N of M bytes"). */
ssize_t http_read(struct http_client *c, void *p, size_t n, struct err *e);
/* The whole body into b (appended): 0, -EFBIG past max bytes, or -errno. */
int http_read_all(struct http_client *c, struct buf *b, size_t max, struct err *e);
/* Content-Length of the body; -1 when not given (chunked, or until close). */
int64_t http_length(const struct http_client *c);
/* Done with the response: the connection stays for the next request when
 * the body was read to its end (a short rest is read here), else it closes. */
void http_end(struct http_client *c);
/* Is this an error a later try may not see (see above)? */
bool http_transient(int code);

/* ---- registries (registry.c) ---------------------------------------------- */

/* The wait without a byte moving, instead of REGISTRY_TIMEOUT_MS (tests). */
void registry_set_timeout(struct registry *r, int ms);

#endif
