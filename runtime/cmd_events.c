/* cmd_events.c - `berth events [-f] [--since T] [--type T]...`: what
 * happened, from the daemon's event ring; -f follows with long polls
 * (`events --after ID --wait --cursor`, events.c), so it works the same over
 * the Unix socket and the remote TLS transport. */
#include "runtime/runtime.h"
#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_RETRY_MS 1000        /* an empty answer that came at once */
#define EVENTS_CLI_USAGE "usage: berth events [-f] [--since TIME] [--type TYPE[,TYPE...]]...\n" \
	"  TIME: RFC 3339 (2026-12-07T16:47:37Z), unix seconds, or a duration ago (30s, 10m, 1h30m, 2d)\n" \
	"  TYPE: container network reload port policy image cni daemon\n"

/* "1h30m", "10m", "45s", "2d": seconds; -1 if it is not a duration. */
static int64_t parse_duration(const char *s)
{
	int64_t total = 0;
	bool any = false;

	while (*s) {
		int64_t v = 0, mult;
		const char *start = s;

		while (isdigit((unsigned char)*s)) {
			if (v > INT64_MAX / 10 - 10)
				return -1;
			v = v * 10 + (*s++ - '0');
		}
		if (s == start)
			return -1;
		switch (*s++) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: return -1;
		}
		if (v > (INT64_MAX - total) / mult)
			return -1;
		total += v * mult;
		any = true;
	}
	return any ? total : -1;
}

/* "2026-12-07T16:47:37Z", "2026-12-07T17:47:37+01:00", fractions of a
 * second ignored, 'T' or ' ' between date and time: unix seconds, or -1. */
static int64_t parse_rfc3339(const char *s)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	int64_t t, off = 0;
	const char *p;

	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return -1;
	p = s + n;
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++)
			;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 &&
		   n == 5 && oh < 24 && om < 60) {
		off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 1 + n;
	} else {
		return -1;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	return t - off;
}

int events_parse_since(const char *s, int64_t now, int64_t *out, struct err *e)
{
	int64_t v;
	char *end;

	if (!s || !*s)
		return err_set(e, EINVAL, "--since needs a time");
	if (isdigit((unsigned char)s[0]) && (v = strtoll(s, &end, 10)) >= 0 &&
	    (!*end || (*end == '.' && strspn(end + 1, "0123456789") == strlen(end + 1)))) {
		*out = v;       /* unix seconds (a fraction is dropped) */
		return 0;
	}
	if ((v = parse_duration(s)) >= 0) {
		*out = now > v ? now - v : 0;
		return 0;
	}
	if ((v = parse_rfc3339(s)) >= 0) {
		*out = v;
		return 0;
	}
	return err_set(e, EINVAL, "--since '%s': expected RFC 3339 (2026-12-07T16:47:37Z), unix "
		       "seconds, or a duration ago (10m, 1h30m)", s);
}

static void on_interrupt(int sig)
{
	(void)sig;
	_exit(EXIT_OK);     /* every line printed so far is flushed */
}

/* One request; the body on success. Returns 0, or an exit code after the
 * error was printed. */
static int call(const char *sock, bool json, int argc, char **argv, struct buf *body)
{
	struct err e = { 0 };
	int ret;

	buf_reset(body);
	ret = ctl_call(sock, json, argc, argv, body, &e);
	if (ret == 0)
		return 0;
	cli_print_error(json, e.msg, body);
	return EXIT_FAIL;
}

/* Print a reply that starts with a cursor line; the cursor into *cursor. */
static int print_after_cursor(const struct buf *body, char *cursor, size_t size)
{
	const char *nl = body->data ? memchr(body->data, '\n', body->len) : NULL;

	if (!nl || nl == body->data || (size_t)(nl - body->data) >= size) {
		fprintf(stderr, "berth: unexpected reply to events\n");
		return EXIT_FAIL;
	}
	snprintf(cursor, size, "%.*s", (int)(nl - body->data), body->data);
	fwrite(nl + 1, 1, body->len - (size_t)(nl + 1 - body->data), stdout);
	fflush(stdout);
	return 0;
}

int cmd_events(const char *sock, bool json, int argc, char **argv)
{
	char *req[CTL_MAX_ARGS + 1], since[32] = "", cursor[32] = "";
	int n = 1, nfilter, ret;
	bool follow = false;
	struct buf body;
	struct err e = { 0 };

	req[0] = "events";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f") || !strcmp(a, "--follow")) {
			follow = true;
		} else if (!strcmp(a, "--since") && i + 1 < argc) {
			int64_t t;

			if (events_parse_since(argv[++i], (int64_t)time(NULL), &t, &e) < 0) {
				fprintf(stderr, "berth events: %s\n" EVENTS_CLI_USAGE, e.msg);
				return EXIT_USAGE;
			}
			snprintf(since, sizeof(since), "%lld", (long long)t);
		} else if (!strcmp(a, "--type") && i + 1 < argc && n + 8 < CTL_MAX_ARGS) {
			req[n++] = "--type";
			req[n++] = argv[++i];
		} else {
			fprintf(stderr, "berth events: unknown option '%s'\n" EVENTS_CLI_USAGE, a);
			return EXIT_USAGE;
		}
	}
	if (since[0]) {
		req[n++] = "--since";
		req[n++] = since;
	}
	nfilter = n;
	buf_init(&body);
	if (!follow) {
		req[n] = NULL;
		ret = call(sock, json, n, req, &body);
		if (ret == 0)
			fwrite(body.data ? body.data : "", 1, body.len, stdout);
		buf_free(&body);
		return ret ? ret : EXIT_OK;
	}
	signal(SIGINT, on_interrupt);
	/* what there is (--since), or only where the newest event is */
	req[n++] = "--after";
	req[n++] = since[0] ? "0" : "last";
	req[n++] = "--cursor";
	req[n] = NULL;
	ret = call(sock, json, n, req, &body);
	if (ret == 0)
		ret = print_after_cursor(&body, cursor, sizeof(cursor));
	/* then the next ones, as they come: each request waits up to ~25 s */
	while (ret == 0) {
		uint64_t asked = loop_now_ms();
		char was[32];

		snprintf(was, sizeof(was), "%s", cursor);
		n = nfilter;
		req[n++] = "--after";
		req[n++] = cursor;
		req[n++] = "--wait";
		req[n++] = "--cursor";
		req[n] = NULL;
		ret = call(sock, json, n, req, &body);
		if (ret == 0)
			ret = print_after_cursor(&body, cursor, sizeof(cursor));
		/* nothing, at once: the daemon has all the followers it takes
		 * waiting; ask again in a moment rather than in a tight loop */
		if (ret == 0 && !strcmp(was, cursor) && loop_now_ms() - asked < EVENTS_RETRY_MS)
			sleep_ms(EVENTS_RETRY_MS);
	}
	buf_free(&body);
	return ret;
}
