/* fuzz_json.c - the JSON reader on arbitrary bytes: a parse either fails
 * with a message naming a byte, or every token is readable; the document
 * written back out (strings through buf_json_string) parses again to the
 * same text, and every key is found again by json_get. */
#include "lib/lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Write t back as JSON; false when a string holds a NUL (not writable). */
static bool emit(const struct json_doc *d, const struct json_tok *t, struct buf *out)
{
	static char s[JSON_MAX_SIZE + 1];
	struct err e;
	const struct json_tok *c;

	switch (t->type) {
	case JSON_NULL: buf_puts(out, "null"); return true;
	case JSON_TRUE: buf_puts(out, "true"); return true;
	case JSON_FALSE: buf_puts(out, "false"); return true;
	case JSON_NUMBER:
		buf_append(out, d->text + t->start, t->end - t->start);
		return true;
	case JSON_STRING:
		if (json_string(d, t, s, sizeof(s), &e) < 0)
			return false;
		if (!json_str_eq(d, t, s))
			abort();            /* what json_string gave must compare equal */
		buf_json_string(out, s);
		return true;
	default:
		break;
	}
	buf_puts(out, t->type == JSON_OBJECT ? "{" : "[");
	uint32_t n = 0;
	for (c = json_first(d, t); c; c = json_next(d, t, c), n++) {
		if (n)
			buf_puts(out, ",");
		if (!emit(d, c, out))
			return false;
		if (t->type == JSON_OBJECT) {
			if (c->type != JSON_STRING || json_string(d, c, s, sizeof(s), &e) < 0)
				return false;
			if (json_get(d, t, s) != c + 1)
				abort();    /* a key must find its own value */
			buf_puts(out, ":");
			if (!emit(d, c + 1, out))
				return false;
		}
	}
	if (n != t->n)
		abort();
	buf_puts(out, t->type == JSON_OBJECT ? "}" : "]");
	return true;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct json_doc d = { 0 }, d2 = { 0 };
	struct buf a, b;
	struct err e;
	long long v;

	if (size > JSON_MAX_SIZE)
		return 0;
	if (json_parse(&d, (const char *)data, size, &e) < 0) {
		if (strncmp(e.msg, "byte ", 5) != 0 || json_root(&d))
			abort();
		json_free(&d);
		return 0;
	}
	for (size_t i = 0; i < d.tok.n; i++) {
		const struct json_tok *t = &d.tok.v[i];

		if (t->end <= t->start || t->end > size || t->next <= i || t->next > d.tok.n)
			abort();
		if (t->type == JSON_NUMBER)
			json_int(&d, t, -1000, 1000, &v, &e);
	}
	buf_init(&a);
	buf_init(&b);
	if (emit(&d, json_root(&d), &a) && a.len <= JSON_MAX_SIZE) {
		if (json_parse(&d2, a.data, a.len, &e) < 0)
			abort();            /* what we write, we read */
		if (!emit(&d2, json_root(&d2), &b) || a.len != b.len || memcmp(a.data, b.data, a.len))
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	json_free(&d);
	json_free(&d2);
	return 0;
}
