/* test_http.c - the pieces of the registry client that read what a server
 * sends: response heads, WWW-Authenticate challenges, URLs and redirects,
 * and base64 (auth files). */
#include "runtime/image/image_int.h"
#include "t.h"

static struct http_head h;

static void test_head(void)
{
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			 "content-length:  12 \r\nX-Empty:\r\nDocker-Content-Digest: sha256:x\r\n\r\nBODY";
	struct err e;

	T_EQ(http_parse_head(&h, ok, strlen(ok), &e), 0, "a response head parses");
	T_EQ(h.status, 200, "status");
	T_EQ(h.minor, 1, "HTTP/1.1");
	T_STREQ(h.reason, "OK", "reason");
	T_EQ(h.len, strlen(ok) - 4, "the body starts after the blank line");
	T_STREQ(http_header(&h, "CONTENT-LENGTH"), "12", "headers are found in any case, "
		"without the spaces around the value");
	T_STREQ(http_header(&h, "x-empty"), "", "an empty value is a value");
	T_OK(http_header(&h, "Location") == NULL, "a missing header is NULL");

	T_EQ(http_parse_head(&h, ok, 30, &e), -EAGAIN, "an incomplete head asks for more");
	T_EQ(http_parse_head(&h, "HTTP/1.0 404\n\n", 14, &e), 0, "bare LFs and no reason are fine");
	T_EQ(h.status, 404, "status 404");
	T_STREQ(h.reason, "", "and the reason is empty");
	T_EQ(h.minor, 0, "HTTP/1.0");

	static const struct { const char *in, *why; } bad[] = {
		{ "HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x response" },
		{ "HTTP/1.1 20 OK\r\n\r\n", "not an HTTP/1.x response" },
		{ "HTTP/1.1 600 What\r\n\r\n", "out of range" },
		{ "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "malformed header line" },
		{ "HTTP/1.1 200 OK\r\n: x\r\n\r\n", "malformed header line" },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "folded header line" },
		{ "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "bare CR" },
		{ "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", "control character" },
		{ "SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x response" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		T_EQ(http_parse_head(&h, bad[i].in, strlen(bad[i].in), &e), -EPROTO,
		     "malformed head %zu is refused", i);
		T_OK(strstr(e.msg, bad[i].why) != NULL, "because: %s", e.msg);
	}
	{
		static char big[HTTP_HEAD_MAX + 100];
		struct buf b;

		memset(big, 'a', sizeof(big));
		memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
		T_EQ(http_parse_head(&h, big, sizeof(big), &e), -EMSGSIZE,
		     "a head over 16 KiB is refused");
		buf_init(&b);
		buf_puts(&b, "HTTP/1.1 200 OK\r\n");
		for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
			buf_printf(&b, "X-%d: y\r\n", i);
		buf_puts(&b, "\r\n");
		T_EQ(http_parse_head(&h, b.data, b.len, &e), -EPROTO, "too many header lines are refused");
		buf_free(&b);
	}
}

static void test_www_auth(void)
{
	struct www_auth a;
	struct err e;

	T_EQ(www_auth_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
			    "scope=\"repository:library/busybox:pull\"", &a, &e), 0, "Docker Hub's challenge");
	T_EQ(a.scheme, WWW_BEARER, "Bearer");
	T_STREQ(a.realm, "https://auth.docker.io/token", "realm");
	T_STREQ(a.service, "registry.docker.io", "service");
	T_STREQ(a.scope, "repository:library/busybox:pull", "scope");

	T_EQ(www_auth_parse("Basic realm=\"Registry Realm\"", &a, &e), 0, "a Basic challenge");
	T_EQ(a.scheme, WWW_BASIC, "Basic");
	T_STREQ(a.realm, "Registry Realm", "with its realm");

	T_EQ(www_auth_parse("Basic realm=x, Bearer realm=\"https://r/t\" , scope=\"a,b\",error=invalid_token",
			    &a, &e), 0, "two challenges, tokens and quoted commas");
	T_EQ(a.scheme, WWW_BEARER, "Bearer is preferred");
	T_STREQ(a.realm, "https://r/t", "its realm");
	T_STREQ(a.scope, "a,b", "a comma inside quotes stays");
	T_STREQ(a.error, "invalid_token", "error as a token");

	T_EQ(www_auth_parse("bearer REALM=\"https://x/\\\"q\\\"\"", &a, &e), 0,
	     "scheme and parameter names in any case; escapes in quoted strings");
	T_STREQ(a.realm, "https://x/\"q\"", "unescaped");

	T_EQ(www_auth_parse("Negotiate abc==, Basic realm=r", &a, &e), 0, "a token68 challenge is skipped");
	T_EQ(a.scheme, WWW_BASIC, "for the Basic one");

	T_EQ(www_auth_parse("Digest realm=\"x\", nonce=\"y\"", &a, &e), -EINVAL, "Digest alone is refused");
	T_STREQ(e.msg, "the registry asks for Digest authentication (Basic or Bearer supported)",
		"and the error says so");
	T_EQ(www_auth_parse("Bearer service=\"x\"", &a, &e), -EINVAL, "Bearer without a realm");
	T_STREQ(e.msg, "a Bearer challenge without a realm", "is unusable");
	T_EQ(www_auth_parse("Basic realm=x, Bearer or=y", &a, &e), 0,
	     "a Bearer challenge without a realm beside a Basic one");
	T_EQ(a.scheme, WWW_BASIC, "the Basic one is used");
	T_EQ(www_auth_parse("Bearer realm=\"unterminated", &a, &e), -EINVAL, "an open quote");
	T_OK(strstr(e.msg, "malformed WWW-Authenticate") != NULL, "is malformed: %s", e.msg);
	T_EQ(www_auth_parse("", &a, &e), -EINVAL, "empty");
	T_EQ(www_auth_parse("Bearer realm=x y", &a, &e), -EINVAL, "junk after a value");
}

static void test_url(void)
{
	struct http_url u;
	char out[HTTP_URL_MAX];
	struct err e;

	T_EQ(http_url_parse("https://registry-1.docker.io/v2/library/busybox/manifests/latest", &u, &e),
	     0, "a URL parses");
	T_STREQ(u.host, "registry-1.docker.io", "host");
	T_STREQ(u.port, "443", "default port");
	T_STREQ(u.authority, "registry-1.docker.io", "Host header without the default port");
	T_STREQ(u.path, "/v2/library/busybox/manifests/latest", "path");
	T_EQ(http_url_parse("https://127.0.0.1:5000?a=b#frag", &u, &e), 0, "port, query, fragment");
	T_STREQ(u.authority, "127.0.0.1:5000", "authority with the port");
	T_STREQ(u.path, "/?a=b", "the query gets a path; the fragment goes");
	T_EQ(http_url_parse("https://[::1]:5000/x", &u, &e), 0, "an IPv6 literal");
	T_STREQ(u.host, "::1", "host without brackets");
	T_STREQ(u.authority, "[::1]:5000", "authority with them");
	T_EQ(http_url_parse("http://h/x", &u, &e), -EPROTO, "plain HTTP is refused");
	T_EQ(http_url_parse("ftp://h/x", &u, &e), -EINVAL, "other schemes too");
	T_EQ(http_url_parse("https://u:p@h/x", &u, &e), -EINVAL, "user info too");
	T_EQ(http_url_parse("https://h:99999/x", &u, &e), -EINVAL, "a port out of range");
	T_EQ(http_url_parse("https://h:/x", &u, &e), -EINVAL, "an empty port");
	T_EQ(http_url_parse("https://h/a b", &u, &e), -EINVAL, "a space in the path");
	T_EQ(http_url_parse("https:///x", &u, &e), -EINVAL, "no host");

	T_EQ(http_url_resolve("https://a:1/v2/x/blobs/y", "https://b:2/z?q", out, &e), 0, "absolute");
	T_STREQ(out, "https://b:2/z?q", "is taken as it is");
	T_EQ(http_url_resolve("https://a:1/v2/x", "//cdn/z", out, &e), 0, "scheme-relative");
	T_STREQ(out, "https://cdn/z", "gets https");
	T_EQ(http_url_resolve("https://a:1/v2/x?old", "/other?new", out, &e), 0, "absolute path");
	T_STREQ(out, "https://a:1/other?new", "keeps the origin");
	T_EQ(http_url_resolve("https://a:1/v2/x/y?old", "z", out, &e), 0, "relative path");
	T_STREQ(out, "https://a:1/v2/x/z", "from the directory");
	T_EQ(http_url_resolve("https://a:1", "z", out, &e), 0, "relative to a bare origin");
	T_STREQ(out, "https://a:1/z", "from the root");
	T_EQ(http_url_resolve("https://a/p?x", "?y", out, &e), 0, "a query alone");
	T_STREQ(out, "https://a/p?y", "replaces the query");
}

static void test_base64(void)
{
	static const struct { const char *plain, *enc; } v[] = {   /* RFC 4648 §10 */
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
		{ "user:p@ss:w0rd", "dXNlcjpwQHNzOncwcmQ=" },
	};
	char enc[64], dec[64];

	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		ssize_t n;

		T_EQ(base64_encode(v[i].plain, strlen(v[i].plain), enc), strlen(v[i].enc),
		     "encode '%s': length", v[i].plain);
		T_STREQ(enc, v[i].enc, "encode '%s'", v[i].plain);
		n = base64_decode(v[i].enc, strlen(v[i].enc), dec, sizeof(dec));
		T_EQ(n, strlen(v[i].plain), "decode '%s': length", v[i].enc);
		T_OK(n >= 0 && !memcmp(dec, v[i].plain, (size_t)n), "decode '%s'", v[i].enc);
	}
	T_EQ(base64_decode("Zm8", 3, dec, sizeof(dec)), 2, "padding may be left out");
	T_EQ(base64_decode("Zm9v", 4, dec, 2), -ERANGE, "output larger than the buffer");
	T_EQ(base64_decode("Zm=8", 4, dec, sizeof(dec)), -EINVAL, "padding in the middle");
	T_EQ(base64_decode("Zg=", 3, dec, sizeof(dec)), -EINVAL, "short padding");
	T_EQ(base64_decode("Zh==", 4, dec, sizeof(dec)), -EINVAL, "non-zero unused bits");
	T_EQ(base64_decode("Z", 1, dec, sizeof(dec)), -EINVAL, "a lone character");
	T_EQ(base64_decode("Zm9v\n", 5, dec, sizeof(dec)), -EINVAL, "a character outside the alphabet");
}

int main(void)
{
	test_head();
	test_www_auth();
	test_url();
	test_base64();
	return t_done();
}
