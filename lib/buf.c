/* buf.c - a growable byte buffer, and JSON string escaping into it. */
#include "lib/lib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static void buf_reserve(struct buf *b, size_t extra)
{
	size_t want = b->len + extra + 1;

	if (want <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		static const char msg[] = "berth: out of memory\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		abort();
	}
	b->data = p;
	b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_json_string(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_append(b, p, 1);
		}
	}
	buf_append(b, "\"", 1);
}

void buf_json_string_or_null(struct buf *b, const char *s)
{
	if (s && *s)
		buf_json_string(b, s);
	else
		buf_puts(b, "null");
}

char *time_rfc3339(int64_t unix_seconds, char *s, size_t size)
{
	time_t t = (time_t)unix_seconds;
	struct tm tm;

	if (unix_seconds <= 0 || !gmtime_r(&t, &tm) || !strftime(s, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(s, size, "-");
	return s;
}

void buf_json_time(struct buf *b, int64_t unix_seconds)
{
	char s[32];

	if (unix_seconds <= 0)
		buf_puts(b, "null");
	else
		buf_printf(b, "\"%s\"", time_rfc3339(unix_seconds, s, sizeof(s)));
}
