/* json.c - lib.h's strict JSON reader: one pass checks the text and lays
 * down tokens; getters read the text in place.
 *
 * Everything a getter may meet was checked by the parser (escapes, UTF-8,
 * surrogate pairs, number grammar), so the getters decode without checking
 * again. Duplicate keys are refused, not resolved: parsers disagree on which
 * one wins, and a netconf is read by the runtime too. */
#include "lib/lib.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jp {
	const unsigned char *s;
	size_t len, pos;
	struct json_doc *d;
	struct err *e;
};

/* "byte N: MSG, found X" */
static int jp_fail(struct jp *p, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int jp_fail(struct jp *p, size_t at, const char *fmt, ...)
{
	char msg[200], found[24];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at >= p->len)
		snprintf(found, sizeof(found), "the end of the text");
	else if (p->s[at] >= 0x20 && p->s[at] < 0x7f)
		snprintf(found, sizeof(found), "'%c'", p->s[at]);
	else
		snprintf(found, sizeof(found), "byte 0x%02x", p->s[at]);
	return err_set(p->e, EINVAL, "byte %zu: %s, found %s", at, msg, found);
}

static void jp_space(struct jp *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

/* Append a token; returns its index, or -ENOMEM. */
static long jp_push(struct jp *p, enum json_type type, size_t start)
{
	struct json_tok *t;

	if (p->d->tok.n >= JSON_MAX_TOKENS)
		return err_set(p->e, E2BIG, "byte %zu: more than %u values", start,
			       JSON_MAX_TOKENS);
	t = array_push(&p->d->tok);
	if (!t)
		return err_set(p->e, ENOMEM, "out of memory");
	t->type = (uint8_t)type;
	t->start = (uint32_t)start;
	return (long)(p->d->tok.n - 1);
}

static void jp_close(struct jp *p, long i)
{
	p->d->tok.v[i].end = (uint32_t)p->pos;
	p->d->tok.v[i].next = (uint32_t)p->d->tok.n;
}

static int hex4(const unsigned char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static int jp_string(struct jp *p)
{
	size_t start = p->pos;
	long i = jp_push(p, JSON_STRING, start);

	if (i < 0)
		return (int)i;
	for (p->pos++;;) {
		unsigned char c;

		if (p->pos >= p->len)
			return jp_fail(p, start, "string never closed");
		c = p->s[p->pos];
		if (c == '"')
			break;
		if (c < 0x20)
			return jp_fail(p, p->pos, "control character in a string (escape it as \\u%04x)", c);
		if (c >= 0x80) {
			size_t n = utf8_len(p->s + p->pos, p->len - p->pos);

			if (!n)
				return jp_fail(p, p->pos, "invalid UTF-8 in a string");
			p->pos += n;
			continue;
		}
		if (c != '\\') {
			p->pos++;
			continue;
		}
		if (p->pos + 1 >= p->len)
			return jp_fail(p, start, "string never closed");
		c = p->s[p->pos + 1];
		if (c && strchr("\"\\/bfnrt", c)) {
			p->pos += 2;
			continue;
		}
		if (c != 'u')
			return jp_fail(p, p->pos, "invalid escape (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
		int cp = p->pos + 6 <= p->len ? hex4(p->s + p->pos + 2) : -1;
		if (cp < 0)
			return jp_fail(p, p->pos, "expected 4 hex digits after \\u");
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return jp_fail(p, p->pos, "\\u%04x: low surrogate without a high one before it", cp);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			int lo = p->pos + 12 <= p->len && p->s[p->pos + 6] == '\\' &&
				 p->s[p->pos + 7] == 'u' ? hex4(p->s + p->pos + 8) : -1;

			if (lo < 0xdc00 || lo > 0xdfff)
				return jp_fail(p, p->pos, "\\u%04x: high surrogate not followed by a low one", cp);
			p->pos += 6;
		}
		p->pos += 6;
	}
	p->pos++;
	jp_close(p, i);
	return 0;
}

static bool is_digit(const struct jp *p, size_t at)
{
	return at < p->len && p->s[at] >= '0' && p->s[at] <= '9';
}

static int jp_number(struct jp *p)
{
	size_t start = p->pos;
	long i = jp_push(p, JSON_NUMBER, start);

	if (i < 0)
		return (int)i;
	if (p->s[p->pos] == '-')
		p->pos++;
	if (!is_digit(p, p->pos))
		return jp_fail(p, p->pos, "expected a digit");
	if (p->s[p->pos] == '0' && is_digit(p, p->pos + 1))
		return jp_fail(p, p->pos, "a number may not start with 0");
	while (is_digit(p, p->pos))
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		if (!is_digit(p, ++p->pos))
			return jp_fail(p, p->pos, "expected a digit after '.'");
		while (is_digit(p, p->pos))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!is_digit(p, p->pos))
			return jp_fail(p, p->pos, "expected a digit in the exponent");
		while (is_digit(p, p->pos))
			p->pos++;
	}
	jp_close(p, i);
	return 0;
}

static int jp_literal(struct jp *p, const char *word, enum json_type type)
{
	size_t n = strlen(word);
	long i;

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return jp_fail(p, p->pos, "expected a value");
	if ((i = jp_push(p, type, p->pos)) < 0)
		return (int)i;
	p->pos += n;
	jp_close(p, i);
	return 0;
}

static int jp_value(struct jp *p, int depth);

/* An array or an object: the opening bracket is at p->pos. */
static int jp_container(struct jp *p, int depth)
{
	bool obj = p->s[p->pos] == '{';
	char close = obj ? '}' : ']';
	uint32_t n = 0;
	long i;
	int ret;

	if (depth >= JSON_MAX_DEPTH)
		return jp_fail(p, p->pos, "nested deeper than %d arrays and objects", JSON_MAX_DEPTH);
	if ((i = jp_push(p, obj ? JSON_OBJECT : JSON_ARRAY, p->pos)) < 0)
		return (int)i;
	p->pos++;
	jp_space(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		goto done;
	}
	for (;;) {
		jp_space(p);
		if (obj) {
			if (p->pos >= p->len || p->s[p->pos] != '"')
				return jp_fail(p, p->pos, n ? "expected a key after ','" :
					       "expected a key or '}'");
			if ((ret = jp_string(p)) < 0)
				return ret;
			jp_space(p);
			if (p->pos >= p->len || p->s[p->pos] != ':')
				return jp_fail(p, p->pos, "expected ':' after the key");
			p->pos++;
		}
		if ((ret = jp_value(p, depth + 1)) < 0)
			return ret;
		n++;
		jp_space(p);
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->s[p->pos] == close) {
			p->pos++;
			break;
		}
		return jp_fail(p, p->pos, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
done:
	jp_close(p, i);
	p->d->tok.v[i].n = n;
	return 0;
}

static int jp_value(struct jp *p, int depth)
{
	jp_space(p);
	if (p->pos >= p->len)
		return jp_fail(p, p->pos, "expected a value");
	switch (p->s[p->pos]) {
	case '{':
	case '[':
		return jp_container(p, depth);
	case '"':
		return jp_string(p);
	case 't':
		return jp_literal(p, "true", JSON_TRUE);
	case 'f':
		return jp_literal(p, "false", JSON_FALSE);
	case 'n':
		return jp_literal(p, "null", JSON_NULL);
	default:
		if (p->s[p->pos] == '-' || is_digit(p, p->pos))
			return jp_number(p);
		return jp_fail(p, p->pos, "expected a value");
	}
}

/*
 * The bytes of a checked string, unescaped, one at a time: a \u escape
 * becomes its UTF-8 bytes (queued in pend), everything else is copied.
 */
struct str_iter {
	const unsigned char *p;     /* inside the string, past its opening quote */
	unsigned char pend[4];
	int npend, ipend;
};

static int str_next(struct str_iter *it)
{
	unsigned char c = *it->p;
	unsigned long cp;

	if (it->ipend < it->npend)
		return it->pend[it->ipend++];
	if (c == '"')
		return -1;
	it->p++;
	if (c != '\\')
		return c;
	c = *it->p++;
	switch (c) {
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'u': break;
	default: return c;          /* " \ / */
	}
	cp = (unsigned long)hex4(it->p);
	it->p += 4;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned long)hex4(it->p + 2) - 0xdc00);
		it->p += 6;
	}
	it->ipend = 1;
	if (cp < 0x80) {
		it->npend = 0;
		return (int)cp;
	} else if (cp < 0x800) {
		it->pend[0] = (unsigned char)(0xc0 | cp >> 6);
		it->pend[1] = (unsigned char)(0x80 | (cp & 0x3f));
		it->npend = 2;
	} else if (cp < 0x10000) {
		it->pend[0] = (unsigned char)(0xe0 | cp >> 12);
		it->pend[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		it->pend[2] = (unsigned char)(0x80 | (cp & 0x3f));
		it->npend = 3;
	} else {
		it->pend[0] = (unsigned char)(0xf0 | cp >> 18);
		it->pend[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		it->pend[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		it->pend[3] = (unsigned char)(0x80 | (cp & 0x3f));
		it->npend = 4;
	}
	return it->pend[0];
}

static int key_cmp(const void *a, const void *b)
{
	struct str_iter x = { .p = *(const unsigned char *const *)a };
	struct str_iter y = { .p = *(const unsigned char *const *)b };

	for (;;) {
		int cx = str_next(&x), cy = str_next(&y);

		if (cx != cy)
			return cx - cy;
		if (cx < 0)
			return 0;
	}
}

/* Refuse an object with two equal keys: sort each object's keys (after the
 * opening quote) and compare neighbours; O(n log n) however many keys. */
static int jp_check_keys(struct jp *p)
{
	struct json_doc *d = p->d;
	const unsigned char **keys;
	size_t most = 0;

	for (size_t i = 0; i < d->tok.n; i++)
		if (d->tok.v[i].type == JSON_OBJECT && d->tok.v[i].n > most)
			most = d->tok.v[i].n;
	if (most < 2)
		return 0;
	keys = malloc(most * sizeof(*keys));
	if (!keys)
		return err_set(p->e, ENOMEM, "out of memory");
	for (size_t i = 0; i < d->tok.n; i++) {
		const struct json_tok *o = &d->tok.v[i];
		size_t n = 0, k = i + 1;

		if (o->type != JSON_OBJECT || o->n < 2)
			continue;
		for (; n < o->n; n++, k = d->tok.v[k + 1].next)
			keys[n] = p->s + d->tok.v[k].start + 1;
		qsort(keys, n, sizeof(*keys), key_cmp);
		for (size_t j = 1; j < n; j++) {
			if (key_cmp(&keys[j - 1], &keys[j]) != 0)
				continue;
			const unsigned char *later = keys[j] > keys[j - 1] ? keys[j] : keys[j - 1];
			char name[40];
			struct str_iter it = { .p = later };
			size_t m = 0;
			int c;

			while (m < sizeof(name) - 4 && (c = str_next(&it)) >= 0)
				name[m++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
			if (m == sizeof(name) - 4 && str_next(&it) >= 0)
				memcpy(name + m, "...", 3), m += 3;
			name[m] = '\0';
			free(keys);
			return err_set(p->e, EINVAL, "byte %zu: duplicate key \"%s\"",
				       (size_t)(later - p->s - 1), name);
		}
	}
	free(keys);
	return 0;
}

int json_parse(struct json_doc *d, const char *text, size_t len, struct err *e)
{
	struct jp p = { .s = (const unsigned char *)text, .len = len, .d = d, .e = e };
	int ret;

	d->tok.n = 0;
	d->text = text;
	d->len = len;
	if (len > JSON_MAX_SIZE)
		return err_set(e, E2BIG, "%zu bytes of JSON, more than the %u allowed", len,
			       JSON_MAX_SIZE);
	ret = jp_value(&p, 0);
	if (ret == 0) {
		jp_space(&p);
		if (p.pos < len)
			ret = jp_fail(&p, p.pos, "expected the end after the value");
	}
	if (ret == 0)
		ret = jp_check_keys(&p);
	if (ret < 0)
		d->tok.n = 0;
	return ret;
}

void json_free(struct json_doc *d)
{
	array_free(&d->tok);
	d->text = NULL;
	d->len = 0;
}

const struct json_tok *json_root(const struct json_doc *d)
{
	return d->tok.n ? &d->tok.v[0] : NULL;
}

const struct json_tok *json_first(const struct json_doc *d, const struct json_tok *t)
{
	(void)d;
	if (!t || (t->type != JSON_ARRAY && t->type != JSON_OBJECT) || !t->n)
		return NULL;
	return t + 1;
}

const struct json_tok *json_next(const struct json_doc *d, const struct json_tok *parent,
				 const struct json_tok *cur)
{
	uint32_t i = parent->type == JSON_OBJECT ? cur[1].next : cur->next;

	return i < parent->next ? &d->tok.v[i] : NULL;
}

bool json_str_eq(const struct json_doc *d, const struct json_tok *t, const char *s)
{
	struct str_iter it;
	size_t i = 0;

	if (!t || t->type != JSON_STRING)
		return false;
	it = (struct str_iter){ .p = (const unsigned char *)d->text + t->start + 1 };
	for (;; i++) {
		int c = str_next(&it), want = s[i] ? (unsigned char)s[i] : -1;

		if (c != want)
			return false;
		if (c < 0)
			return true;
	}
}

const struct json_tok *json_get(const struct json_doc *d, const struct json_tok *obj,
				const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (const struct json_tok *k = json_first(d, obj); k; k = json_next(d, obj, k))
		if (json_str_eq(d, k, key))
			return k + 1;
	return NULL;
}

const char *json_type_name(enum json_type t)
{
	static const char *const names[] = {
		[JSON_NULL] = "null", [JSON_FALSE] = "false", [JSON_TRUE] = "true",
		[JSON_NUMBER] = "a number", [JSON_STRING] = "a string",
		[JSON_ARRAY] = "an array", [JSON_OBJECT] = "an object",
	};

	return (unsigned)t < ARRAY_SIZE(names) ? names[t] : "?";
}

static int wrong_type(const struct json_tok *t, const char *want, struct err *e)
{
	return err_set(e, EINVAL, "expected %s, found %s", want,
		       t ? json_type_name(t->type) : "nothing");
}

int json_string(const struct json_doc *d, const struct json_tok *t, char *buf, size_t size,
		struct err *e)
{
	struct str_iter it;
	size_t n = 0;
	int c;

	if (!t || t->type != JSON_STRING)
		return wrong_type(t, "a string", e);
	it = (struct str_iter){ .p = (const unsigned char *)d->text + t->start + 1 };
	while ((c = str_next(&it)) >= 0) {
		if (c == 0)
			return err_set(e, EINVAL, "the string holds a NUL character (\\u0000)");
		if (n + 1 >= size)
			return err_set(e, ERANGE, "the string is longer than %zu bytes",
				       size ? size - 1 : 0);
		buf[n++] = (char)c;
	}
	if (size)
		buf[n] = '\0';
	return (int)n;
}

int json_int(const struct json_doc *d, const struct json_tok *t, long long min, long long max,
	     long long *out, struct err *e)
{
	const char *s, *end;
	unsigned long long v = 0, limit;
	bool neg;

	if (!t || t->type != JSON_NUMBER)
		return wrong_type(t, "an integer", e);
	s = d->text + t->start;
	end = d->text + t->end;
	if (memchr(s, '.', (size_t)(end - s)) || memchr(s, 'e', (size_t)(end - s)) ||
	    memchr(s, 'E', (size_t)(end - s)))
		return err_set(e, EINVAL, "expected an integer, found %.*s",
			       (int)(end - s > 24 ? 24 : end - s), s);
	neg = *s == '-';
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (const char *c = s + neg; c < end; c++) {
		unsigned digit = (unsigned)(*c - '0');

		if (v > (limit - digit) / 10)
			goto range;
		v = v * 10 + digit;
	}
	if (neg)
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	else
		*out = (long long)v;
	if (*out < min || *out > max)
		goto range;
	return 0;
range:
	return err_set(e, ERANGE, "%.*s is out of range (%lld to %lld)",
		       (int)(end - s > 24 ? 24 : end - s), s, min, max);
}

int json_bool(const struct json_tok *t, bool *out, struct err *e)
{
	if (!t || (t->type != JSON_TRUE && t->type != JSON_FALSE))
		return wrong_type(t, "true or false", e);
	*out = t->type == JSON_TRUE;
	return 0;
}
