/* fuzz_http.c - what a registry sends, on arbitrary bytes: the response head
 * parser (a head either parses into a status in range and headers that are
 * found again by name, or is refused with a reason), the WWW-Authenticate
 * parser, and URLs as a Location header would carry them. The first byte
 * picks the target, so one corpus serves all three. */
#include "runtime/image/image_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct http_head h;

static void fuzz_head(const char *p, size_t n)
{
	struct err e;
	int ret = http_parse_head(&h, p, n, &e);

	if (ret == -EAGAIN || ret == -EMSGSIZE)
		return;
	if (ret < 0) {
		if (ret != -EPROTO || !e.msg[0])
			abort();
		return;
	}
	if (h.status < 100 || h.status > 599 || h.len > n || h.len > HTTP_HEAD_MAX || h.n > HTTP_HEADERS_MAX)
		abort();
	for (size_t i = 0; i < h.n; i++) {
		if (!h.h[i].name[0] || !h.h[i].value)
			abort();
		if (!http_header(&h, h.h[i].name))
			abort();        /* every header is found by its own name */
	}
}

static void fuzz_auth(const char *s)
{
	struct www_auth a;
	struct err e;

	if (www_auth_parse(s, &a, &e) < 0) {
		if (a.scheme != WWW_NONE || !e.msg[0])
			abort();
		return;
	}
	if (a.scheme == WWW_NONE || (a.scheme == WWW_BEARER && !a.realm[0]))
		abort();
}

static void fuzz_url(const char *s)
{
	static char out[HTTP_URL_MAX];
	struct http_url u;
	struct err e;

	if (http_url_parse(s, &u, &e) == 0 && (!u.host[0] || u.path[0] != '/'))
		abort();
	if (http_url_resolve("https://registry.example:5000/v2/app/blobs/x?y", s, out, &e) == 0)
		(void)http_url_parse(out, &u, &e);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *s;

	if (size < 1 || size > 2 * HTTP_HEAD_MAX)
		return 0;
	s = malloc(size);       /* NUL-terminated copy, and the exact bytes for the head */
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0: fuzz_head(s, size - 1); break;
	case 1: fuzz_auth(s); break;
	case 2: fuzz_url(s); break;
	}
	free(s);
	return 0;
}
