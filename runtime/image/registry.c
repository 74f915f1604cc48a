/* registry.c - the OCI distribution API (v2), client side: one repository's
 * manifests and blobs over http.c, with the Bearer token and Basic flows,
 * bounded retries with back-off, and blobs as streams whose broken
 * transfers resume with a Range request unseen by their reader (which
 * checks the digest; a manifest's is checked here). */
#include "runtime/image/image_int.h"

#include <bearssl.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REGISTRY_BACKOFF_MS 500         /* the first wait; doubled per try... */
#define REGISTRY_BACKOFF_MAX_MS 8000    /* ...up to this */
#define REGISTRY_RETRY_AFTER_MAX_S 60   /* a 429's Retry-After is honoured up to this */
#define REGISTRY_ERROR_BODY_MAX 65536   /* an error response's JSON */
#define REGISTRY_AUTH_FILE_MAX JSON_MAX_SIZE
#define REGISTRY_CHUNK (64 * 1024)

static const char manifest_accept[] =
	"application/vnd.oci.image.index.v1+json, "
	"application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json";

struct registry {
	struct image_ref ref;
	char name[600];                 /* "127.0.0.1:5000/app": how errors name it */
	char base[300];                 /* "https://registry-1.docker.io" */
	char auth_file[PATH_MAX];       /* "" when none was given */
	char *basic;                    /* "Basic ..." from the auth file, or NULL */
	char *authz;                    /* what requests carry (a token or basic), or NULL */
	struct http_client *http;
	atomic_bool *cancel;
};

/* What one attempt learnt beyond its error: is another worth it, and when. */
struct attempt {
	bool transient;
	int wait_ms;                    /* the server's Retry-After; -1: none */
};

/* ---- credentials (auth.json) -------------------------------------------------- */

/* An auth.json key as a "registry[/path]" prefix: "https://index.docker.io/v1/"
 * is "docker.io", "quay.io/org" stays. */
static void auth_key_normalise(const char *key, char *out, size_t size)
{
	size_t n;

	if (!strncasecmp(key, "https://", 8))
		key += 8;
	else if (!strncasecmp(key, "http://", 7))
		key += 7;
	snprintf(out, size, "%s", key);
	n = strlen(out);
	while (n && out[n - 1] == '/')
		out[--n] = '\0';
	if (n >= 3 && (!strcmp(out + n - 3, "/v1") || !strcmp(out + n - 3, "/v2")))
		out[n -= 3] = '\0';
	if (!strncmp(out, "index.docker.io", 15) && (!out[15] || out[15] == '/'))
		memmove(out, out + 6, strlen(out + 6) + 1);
	else if (!strncmp(out, "registry-1.docker.io", 20) && (!out[20] || out[20] == '/'))
		memmove(out, out + 11, strlen(out + 11) + 1);
}

/* r->basic from the entry of auth_file that fits r best (the longest
 * matching "registry[/repo prefix]" key); none is fine. */
static int auth_load(struct registry *r, const char *path, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *auths, *k, *best = NULL;
	char target[600], raw[600], key[600], b64[1024], plain[800], enc[1100];
	size_t best_len = 0;
	struct buf b;
	ssize_t n;
	int fd, ret = 0;

	snprintf(target, sizeof(target), "%s/%s", r->ref.registry, r->ref.repo);
	buf_init(&b);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_sys(e, errno, "auth file %s", path);
	for (;;) {
		char chunk[4096];

		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (b.len + (size_t)n > REGISTRY_AUTH_FILE_MAX) {
			n = -1;
			errno = EFBIG;
			break;
		}
		buf_append(&b, chunk, (size_t)n);
	}
	if (n < 0) {
		ret = err_sys(e, errno, "auth file %s", path);
		close(fd);
		goto out;
	}
	close(fd);
	if ((ret = json_parse(&d, b.data ? b.data : "", b.len, e)) < 0) {
		err_wrap(e, "auth file %s", path);
		goto out;
	}
	auths = json_get(&d, json_root(&d), "auths");
	for (k = json_first(&d, auths); k; k = json_next(&d, auths, k)) {
		size_t kl;

		if (json_string(&d, k, raw, sizeof(raw), NULL) < 0)
			continue;
		auth_key_normalise(raw, key, sizeof(key));
		kl = strlen(key);
		if (!kl || strncmp(target, key, kl) || (target[kl] && target[kl] != '/') ||
		    (!strchr(key, '/') && strlen(r->ref.registry) != kl))
			continue;
		if (kl > best_len) {
			best = k + 1;
			best_len = kl;
		}
	}
	if (!best)
		goto out;
	k = json_get(&d, best, "auth");
	if (!k) {
		ret = err_set(e, EINVAL, "auth file %s: the entry for %s has no \"auth\" (only "
			      "base64 user:password entries are supported)", path, r->ref.registry);
		goto out;
	}
	if ((ret = json_string(&d, k, b64, sizeof(b64), e)) < 0) {
		err_wrap(e, "auth file %s: %s: auth", path, r->ref.registry);
		goto out;
	}
	n = base64_decode(b64, strlen(b64), plain, sizeof(plain) - 1);
	if (n < 0 || !memchr(plain, ':', (size_t)n) || memchr(plain, '\0', (size_t)n)) {
		ret = err_set(e, EINVAL, "auth file %s: the auth of %s is not base64 of "
			      "user:password", path, r->ref.registry);
		goto out;
	}
	base64_encode(plain, (size_t)n, enc);
	if (asprintf(&r->basic, "Basic %s", enc) < 0)
		abort();
	ret = 0;
out:
	memset(plain, 0, sizeof(plain));
	if (b.data)
		memset(b.data, 0, b.len);
	buf_free(&b);
	json_free(&d);
	return ret;
}

/* ---- one request --------------------------------------------------------------- */

static bool registry_cancelled(const struct registry *r)
{
	return r->cancel && atomic_load(r->cancel);
}

/* "(blob unknown)" from the registry's {"errors": [{"code": "BLOB_UNKNOWN"}]}
 * body, else the status line's reason, into out. Reads (and ends) the body. */
static void status_text(struct registry *r, const struct http_head *h, char *out, size_t size)
{
	struct json_doc d = { 0 };
	const struct json_tok *errs;
	struct buf b;
	char code[64] = "";

	buf_init(&b);
	if (http_read_all(r->http, &b, REGISTRY_ERROR_BODY_MAX, NULL) == 0 && b.len &&
	    json_parse(&d, b.data, b.len, NULL) == 0 &&
	    (errs = json_get(&d, json_root(&d), "errors")) && errs->type == JSON_ARRAY &&
	    errs->n > 0)
		json_string(&d, json_get(&d, json_first(&d, errs), "code"), code, sizeof(code), NULL);
	json_free(&d);
	buf_free(&b);
	http_end(r->http);
	if (!code[0])
		snprintf(code, sizeof(code), "%s", h->reason[0] ? h->reason : "no reason given");
	for (char *p = code; *p; p++)
		*p = *p == '_' ? ' ' : (char)tolower((unsigned char)*p);
	snprintf(out, size, "%s", code);
}

static void retry_after(const struct http_head *h, struct attempt *at)
{
	const char *v = http_header(h, "Retry-After");
	char *end;
	long s;

	at->wait_ms = -1;
	if (!v)
		return;
	s = strtol(v, &end, 10);
	if (end == v || *end || s < 0)
		return;                 /* an HTTP date: our own back-off will do */
	at->wait_ms = (int)(s > REGISTRY_RETRY_AFTER_MAX_S ? REGISTRY_RETRY_AFTER_MAX_S : s) * 1000;
}

/* The status is an error: e says which, at whether to try again. */
static int status_error(struct registry *r, const struct http_head *h, const char *hint,
			struct attempt *at, struct err *e)
{
	int st = h->status, code;
	char text[128];

	at->transient = st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
	if (st == 429 || st == 503)
		retry_after(h, at);
	status_text(r, h, text, sizeof(text));
	code = st == 404 ? ENOENT : st == 401 || st == 403 ? EACCES : st == 429 ? EBUSY :
	       st == 416 ? ERANGE : st >= 500 ? EIO : EPROTO;
	return err_set(e, code, "HTTP %d (%s%s%s)", st, text, hint ? ": " : "", hint ? hint : "");
}

/* Why a 401 happened, for people: what we had to offer. */
static const char *no_creds_hint(const struct registry *r, char *buf, size_t size)
{
	if (r->auth_file[0])
		snprintf(buf, size, "no credentials for %s in %s", r->ref.registry, r->auth_file);
	else
		snprintf(buf, size, "no credentials for %s (no auth file given)", r->ref.registry);
	return buf;
}

static const char *refused_hint(const struct registry *r, char *buf, size_t size)
{
	snprintf(buf, size, "the credentials for %s in %s were refused", r->ref.registry,
		 r->auth_file);
	return buf;
}

/* "%XX" for everything but unreserved characters. */
static void url_encode(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c))
			buf_append(b, s, 1);
		else
			buf_printf(b, "%%%02X", c);
	}
}

/* Answer a Bearer challenge: a token from its realm (with the basic
 * credentials when there are some), kept in r->authz for what follows. */
static int fetch_token(struct registry *r, const struct www_auth *ch, struct attempt *at,
		       struct err *e)
{
	struct http_req req = { .authorization = r->basic };
	const struct http_head *h;
	struct json_doc d = { 0 };
	const struct json_tok *t;
	struct buf url, body;
	char hint[PATH_MAX + 300], token[8192];
	int ret;

	buf_init(&url);
	buf_init(&body);
	buf_puts(&url, ch->realm);
	buf_puts(&url, strchr(ch->realm, '?') ? "&" : "?");
	if (ch->service[0]) {
		buf_puts(&url, "service=");
		url_encode(&url, ch->service);
		buf_puts(&url, "&");
	}
	buf_puts(&url, "scope=");
	if (ch->scope[0]) {
		url_encode(&url, ch->scope);
	} else {
		buf_puts(&url, "repository%3A");
		url_encode(&url, r->ref.repo);
		buf_puts(&url, "%3Apull");
	}
	req.url = url.data;
	if ((ret = http_get(r->http, &req, &h, e)) < 0) {
		at->transient = http_transient(ret);
		goto out;
	}
	if (h->status != 200) {
		ret = status_error(r, h, h->status != 401 && h->status != 403 ? NULL : r->basic ?
				   refused_hint(r, hint, sizeof(hint)) :
				   no_creds_hint(r, hint, sizeof(hint)), at, e);
		goto out;
	}
	ret = http_read_all(r->http, &body, JSON_MAX_SIZE, e);
	if (ret < 0) {
		at->transient = http_transient(ret);
		goto out;
	}
	http_end(r->http);
	if ((ret = json_parse(&d, body.data ? body.data : "", body.len, e)) < 0)
		goto out;
	t = json_get(&d, json_root(&d), "token");
	if (!t || json_string(&d, t, token, sizeof(token), NULL) <= 0)
		t = json_get(&d, json_root(&d), "access_token");
	if (!t || json_string(&d, t, token, sizeof(token), NULL) <= 0) {
		ret = err_set(e, EPROTO, "no \"token\" in the answer");
		goto out;
	}
	free(r->authz);
	if (asprintf(&r->authz, "Bearer %s", token) < 0)
		abort();
	ret = 0;
out:
	if (ret < 0)
		err_wrap(e, "token from %.200s", ch->realm);
	memset(token, 0, sizeof(token));
	json_free(&d);
	buf_free(&body);
	buf_free(&url);
	return ret;
}

/* One attempt at GET base+path: a 401 is answered once (token or basic)
 * and the request made again. 0 with *hp a 2xx (or 206) head whose body is
 * the caller's to read; else -errno with e and at filled. */
static int api_get(struct registry *r, const char *path, const char *accept, uint64_t range,
		   const struct http_head **hp, struct attempt *at, struct err *e)
{
	char url[HTTP_URL_MAX], hint[PATH_MAX + 300];
	struct http_req req = { .url = url, .accept = accept, .range_from = range };
	bool answered = false;
	int ret;

	at->transient = false;
	at->wait_ms = -1;
	snprintf(url, sizeof(url), "%s%s", r->base, path);
	for (;;) {
		const struct http_head *h;
		const char *v;
		struct www_auth ch;

		req.authorization = r->authz;
		if ((ret = http_get(r->http, &req, &h, e)) < 0) {
			at->transient = http_transient(ret);
			return ret;
		}
		if (h->status >= 200 && h->status < 300) {
			*hp = h;
			return 0;
		}
		if (h->status != 401)
			return status_error(r, h, NULL, at, e);
		if (answered || !(v = http_header(h, "WWW-Authenticate")))
			return status_error(r, h, !r->basic ? no_creds_hint(r, hint, sizeof(hint)) :
					    refused_hint(r, hint, sizeof(hint)), at, e);
		ret = www_auth_parse(v, &ch, e);
		http_end(r->http);
		if (ret < 0)
			return err_wrap(e, "HTTP 401");
		if (ch.scheme == WWW_BASIC) {
			if (!r->basic)
				return err_set(e, EACCES, "HTTP 401 (unauthorized: %s)",
					       no_creds_hint(r, hint, sizeof(hint)));
			free(r->authz);
			r->authz = strdup(r->basic);
			if (!r->authz)
				abort();
		} else if ((ret = fetch_token(r, &ch, at, e)) < 0) {
			return ret;
		}
		answered = true;
	}
}

/* Wait before try number tries + 1: the server's word, else 0.5 s, 1 s, 2 s...
 * up to 8 s; cancellable. */
static int backoff(struct registry *r, int tries, int wait_ms, struct err *e)
{
	int ms = wait_ms >= 0 ? wait_ms : REGISTRY_BACKOFF_MS << (tries - 1 < 5 ? tries - 1 : 5);

	if (wait_ms < 0 && ms > REGISTRY_BACKOFF_MAX_MS)
		ms = REGISTRY_BACKOFF_MAX_MS;
	for (int slept = 0; slept < ms; slept += 100) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (registry_cancelled(r))
			return err_set(e, ECANCELED, "cancelled");
		nanosleep(&ts, NULL);
	}
	return registry_cancelled(r) ? err_set(e, ECANCELED, "cancelled") : 0;
}

/* "127.0.0.1:5000/app: blob sha256:...: " in front of e; the number of tries
 * after it when there were several. */
static int fail(struct registry *r, const char *what, int tries, int ret, struct err *e)
{
	err_wrap(e, "%s: %s", r->name, what);
	if (e && tries > 1) {
		size_t l = strlen(e->msg);

		snprintf(e->msg + l, sizeof(e->msg) - l, " (gave up after %d tries)", tries);
	}
	return ret;
}

/* ---- the API -------------------------------------------------------------------- */

int registry_open(struct registry **rp, const struct image_ref *ref,
		  const struct registry_opts *o, struct err *e)
{
	struct registry *r = calloc(1, sizeof(*r));
	int ret;

	*rp = NULL;
	if (!r)
		return err_set(e, ENOMEM, "out of memory");
	r->ref = *ref;
	r->cancel = o ? o->cancel : NULL;
	snprintf(r->name, sizeof(r->name), "%s/%s", ref->registry, ref->repo);
	/* docker.io is the name; the API is served elsewhere */
	snprintf(r->base, sizeof(r->base), "https://%s",
		 strcmp(ref->registry, "docker.io") ? ref->registry : "registry-1.docker.io");
	if (o && o->auth_file) {
		snprintf(r->auth_file, sizeof(r->auth_file), "%s", o->auth_file);
		if ((ret = auth_load(r, o->auth_file, e)) < 0)
			goto err;
	}
	if ((ret = http_client_new(&r->http, o ? o->ca_file : NULL, r->cancel, e)) < 0)
		goto err;
	*rp = r;
	return 0;
err:
	err_wrap(e, "%s", r->name);
	registry_close(r);
	return ret;
}

void registry_set_timeout(struct registry *r, int ms)
{
	http_client_set_timeout(r->http, ms);
}

void registry_close(struct registry *r)
{
	if (!r)
		return;
	http_client_free(r->http);
	if (r->basic)
		memset(r->basic, 0, strlen(r->basic));
	if (r->authz)
		memset(r->authz, 0, strlen(r->authz));
	free(r->basic);
	free(r->authz);
	free(r);
}

int registry_get_manifest(struct registry *r, const char *reference, struct buf *body,
			  char *media_type, char *digest, struct err *e)
{
	char path[HTTP_URL_MAX], what[200], got[IMAGE_DIGEST_SIZE];
	size_t start = body->len;
	uint8_t sha[32];
	br_sha256_context h;
	int tries, ret;

	snprintf(what, sizeof(what), "manifest %s", reference);
	snprintf(path, sizeof(path), "/v2/%s/manifests/%s", r->ref.repo, reference);
	media_type[0] = '\0';
	for (tries = 1;; tries++) {
		const struct http_head *hd;
		struct attempt at;

		body->len = start;
		ret = api_get(r, path, manifest_accept, 0, &hd, &at, e);
		if (ret == 0) {
			const char *ct = http_header(hd, "Content-Type");

			snprintf(media_type, 128, "%.*s", ct ? (int)strcspn(ct, "; \t") : 0,
				 ct ? ct : "");
			ret = http_read_all(r->http, body, IMAGE_JSON_MAX, e);
			at.transient = ret < 0 && http_transient(ret);
			http_end(r->http);
		}
		if (ret == 0)
			break;
		if (!at.transient || tries == REGISTRY_TRIES ||
		    (ret = backoff(r, tries, at.wait_ms, e)) < 0) {
			body->len = start;
			return fail(r, what, tries, ret, e);
		}
	}
	br_sha256_init(&h);
	br_sha256_update(&h, body->data + start, body->len - start);
	br_sha256_out(&h, sha);
	image_digest_format(sha, got);
	if (!strncmp(reference, "sha256:", 7) && strcmp(reference, got)) {
		body->len = start;
		return fail(r, what, 1, err_set(e, EBADMSG, "the registry sent content whose "
					       "digest is %s", got), e);
	}
	strcpy(digest, got);
	if (body->data)
		body->data[body->len] = '\0';
	return 0;
}

/* ---- a blob as a stream ------------------------------------------------------
 * One GET whose body is handed to the reader as it arrives; a transfer that
 * breaks is asked for again from the bytes already handed over (Range), and
 * a server that answers with the whole blob has that prefix skipped, so the
 * reader sees one stream. Retries as for the other requests: REGISTRY_TRIES
 * that get no further than the furthest so far. */
struct registry_blob {
	struct registry *r;
	char path[HTTP_URL_MAX];
	char what[200];
	uint64_t size;                  /* the manifest's word; 0: unknown */
	uint64_t handed;                /* bytes given to the reader */
	uint64_t best;                  /* handed when the try count last restarted */
	uint64_t skip;                  /* of the current body, before the bytes we want */
	_Atomic uint64_t *progress;     /* handed, for other threads; may be NULL */
	int tries;                      /* of the current run without progress */
	bool open;                      /* a response's body is being read */
	bool ended;
	bool no_range;                  /* the registry refused a range (416): ask for all */
	int failed;                     /* the error that ended the stream (-errno); 0 */
	struct err err;                 /* and its message */
	char *scratch;                  /* where a skipped prefix goes */
};

/* "bytes START-END/TOTAL" that starts at from. */
static bool content_range_ok(const char *v, uint64_t from)
{
	unsigned long long s, end, t;
	char tot[32], *x;

	if (!v || sscanf(v, "bytes %llu-%llu/%31s", &s, &end, tot) != 3 || s != from || end < s)
		return false;
	if (!strcmp(tot, "*"))
		return true;
	t = strtoull(tot, &x, 10);
	return !*x && end + 1 == t;
}

/* One request for the rest of the blob: b->open with b->skip set, or
 * -errno with at filled. */
static int blob_request(struct registry_blob *b, struct attempt *at, struct err *e)
{
	struct registry *r = b->r;
	uint64_t from = b->no_range ? 0 : b->handed;
	const struct http_head *hd;
	int ret;

	ret = api_get(r, b->path, NULL, from, &hd, at, e);
	if (ret == -ERANGE && from > 0) {
		/* the registry will not resume from there: the whole blob, skipped
		 * up to where we are */
		b->no_range = true;
		at->transient = true;
		at->wait_ms = 0;
		return ret;
	}
	if (ret < 0)
		return ret;
	if (hd->status == 206 && from > 0 &&
	    content_range_ok(http_header(hd, "Content-Range"), from)) {
		b->skip = 0;
	} else if (hd->status == 200) {
		/* the whole blob (Range ignored, or not asked for) */
		b->skip = b->handed;
	} else {
		ret = err_set(e, EPROTO, hd->status == 206 ? "HTTP 206 with an unexpected "
			      "Content-Range" : "HTTP %d (unexpected)", hd->status);
		http_end(r->http);
		at->transient = false;
		return ret;
	}
	b->open = true;
	return 0;
}

/* The end of the stream with an error: kept for registry_blob_error. */
static ssize_t blob_failed(struct registry_blob *b, int ret, struct err *e)
{
	if (b->open) {
		http_end(b->r->http);
		b->open = false;
	}
	fail(b->r, b->what, b->tries ? b->tries : 1, ret, e);
	b->failed = ret;
	if (e)
		b->err = *e;
	else
		err_set(&b->err, -ret, "failed");
	return ret;
}

/* The next bytes of the body into p: a count, 0 at the end, or -errno
 * (the transfer's own errors, retried, are not seen here). */
static ssize_t blob_next(struct registry_blob *b, void *p, size_t n, struct err *e)
{
	ssize_t k;

	while (b->skip > 0) {
		size_t want = b->skip < REGISTRY_CHUNK ? (size_t)b->skip : REGISTRY_CHUNK;

		k = http_read(b->r->http, b->scratch, want, e);
		if (k < 0)
			return k;
		if (k == 0)
			return err_set(e, EPROTO, "the whole blob the registry sent is shorter "
				       "than the %llu bytes it sent before",
				       (unsigned long long)b->handed);
		b->skip -= (uint64_t)k;
	}
	return http_read(b->r->http, p, n, e);
}

static ssize_t blob_read(void *ctx, void *p, size_t n, struct err *e)
{
	struct registry_blob *b = ctx;
	struct registry *r = b->r;

	if (b->failed) {
		if (e)
			*e = b->err;
		return b->failed;
	}
	if (b->ended || !n)
		return 0;
	if (registry_cancelled(r))
		return blob_failed(b, err_set(e, ECANCELED, "cancelled"), e);
	for (;;) {
		struct attempt at = { .wait_ms = -1 };
		ssize_t k;
		int ret = 0;

		if (!b->open)
			ret = blob_request(b, &at, e);
		if (ret == 0) {
			k = blob_next(b, p, n, e);
			if (k > 0) {
				b->handed += (uint64_t)k;
				if (b->size && b->handed > b->size)
					return blob_failed(b, err_set(e, EPROTO, "the registry sent "
								      "more than the %llu bytes "
								      "of the manifest",
								      (unsigned long long)b->size), e);
				if (b->progress)
					atomic_store(b->progress, b->handed);
				return k;
			}
			if (k == 0) {
				http_end(r->http);
				b->open = false;
				if (b->size && b->handed != b->size)
					return blob_failed(b, err_set(e, EPROTO, "the registry sent "
								      "%llu bytes, not the %llu of "
								      "the manifest",
								      (unsigned long long)b->handed,
								      (unsigned long long)b->size), e);
				b->ended = true;
				return 0;
			}
			ret = (int)k;
			at.transient = http_transient(ret);
			http_end(r->http);
			b->open = false;
		}
		if (b->handed > b->best) {
			/* further than ever: the next failure starts the count again (a
			 * server that fails at the same place each time still runs out) */
			b->best = b->handed;
			b->tries = 0;
		}
		if (!at.transient || b->tries == REGISTRY_TRIES)
			return blob_failed(b, ret, e);
		if ((ret = backoff(r, b->tries ? b->tries : 1, at.wait_ms, e)) < 0)
			return blob_failed(b, ret, e);
		b->tries++;
	}
}

int registry_blob_open(struct registry *r, const char *digest, uint64_t size,
		       _Atomic uint64_t *progress, struct registry_blob **bp, struct err *e)
{
	struct registry_blob *b;
	int ret;

	*bp = NULL;
	if (!image_digest_valid(digest))
		return fail(r, "blob", 1, err_set(e, EINVAL, "'%.80s' is not a sha256 digest",
						  digest), e);
	if (!(b = calloc(1, sizeof(*b))) || !(b->scratch = malloc(REGISTRY_CHUNK))) {
		free(b);
		return err_set(e, ENOMEM, "out of memory");
	}
	b->r = r;
	b->size = size;
	b->progress = progress;
	b->tries = 1;
	snprintf(b->what, sizeof(b->what), "blob %s", digest);
	snprintf(b->path, sizeof(b->path), "/v2/%s/blobs/%s", r->ref.repo, digest);
	if (progress)
		atomic_store(progress, 0);
	/* the first request now, so that a missing blob is an error of the
	 * open (nothing is made for it yet) */
	for (;;) {
		struct attempt at = { .wait_ms = -1 };

		if ((ret = blob_request(b, &at, e)) == 0)
			break;
		if (!at.transient || b->tries == REGISTRY_TRIES ||
		    (ret = backoff(r, b->tries, at.wait_ms, e)) < 0) {
			blob_failed(b, ret, e);
			registry_blob_close(b);
			return ret;
		}
		b->tries++;
	}
	*bp = b;
	return 0;
}

struct image_src registry_blob_src(struct registry_blob *b)
{
	return (struct image_src){ .read = blob_read, .ctx = b };
}

const struct err *registry_blob_error(const struct registry_blob *b)
{
	return b && b->failed ? &b->err : NULL;
}

uint64_t registry_blob_bytes(const struct registry_blob *b)
{
	return b->handed;
}

void registry_blob_close(struct registry_blob *b)
{
	if (!b)
		return;
	if (b->open)
		http_end(b->r->http);
	free(b->scratch);
	free(b);
}
