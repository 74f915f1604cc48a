/* t.h - a tiny TAP producer for unit tests: one "ok N - what" line per check.
 * tests/run.sh counts the lines; a test binary exits 1 if any check failed. */
#ifndef BERTH_T_H
#define BERTH_T_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_n, t_failed;

static void __attribute__((format(printf, 5, 6), unused))
t_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", ++t_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok) {
		printf("#   failed at %s:%d: %s\n", file, line, expr);
		t_failed++;
	}
	fflush(stdout);
}

/* T_OK(condition, "what a user would notice", ...) */
#define T_OK(cond, ...) t_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Equal strings; prints both on failure. */
#define T_STREQ(got, want, ...) do {                                              \
	const char *t_g = (got), *t_w = (want);                                   \
	int t_ok = t_g && t_w && strcmp(t_g, t_w) == 0;                          \
	t_check(t_ok, __FILE__, __LINE__, #got " == " #want, __VA_ARGS__);       \
	if (!t_ok)                                                                \
		printf("#   got:  '%s'\n#   want: '%s'\n", t_g ? t_g : "(null)", \
		       t_w ? t_w : "(null)");                                     \
} while (0)

/* Equal integers; prints both on failure. */
#define T_EQ(got, want, ...) do {                                                 \
	long long t_g = (long long)(got), t_w = (long long)(want);               \
	t_check(t_g == t_w, __FILE__, __LINE__, #got " == " #want, __VA_ARGS__); \
	if (t_g != t_w)                                                           \
		printf("#   got:  %lld\n#   want: %lld\n", t_g, t_w);              \
} while (0)

static int __attribute__((unused)) t_done(void)
{
	printf("1..%d\n", t_n);
	return t_failed ? 1 : 0;
}

#endif
