/* test_events.c - `berth events`: --since in its three forms, and how one
 * event reads for people and as JSON. */
#include "runtime/daemon_int.h"
#include "runtime/runtime.h"
#include "t.h"

#include <errno.h>

static const int64_t NOW = 1796661457;     /* 2026-12-07T16:37:37Z */

static long long since(const char *s)
{
	struct err e = { 0 };
	int64_t t = -1;

	if (events_parse_since(s, NOW, &t, &e) < 0)
		return -1;
	return t;
}

static void test_since(void)
{
	struct err e = { 0 };
	int64_t t;

	T_EQ(since("1796661457"), NOW, "unix seconds");
	T_EQ(since("1796661457.25"), NOW, "unix seconds with a fraction");
	T_EQ(since("10m"), NOW - 600, "10m ago");
	T_EQ(since("1h30m"), NOW - 5400, "1h30m ago");
	T_EQ(since("2d"), NOW - 172800, "2d ago");
	T_EQ(since("45s"), NOW - 45, "45s ago");
	T_EQ(since("2026-12-07T16:37:37Z"), NOW, "RFC 3339 in UTC");
	T_EQ(since("2026-12-07t16:37:37z"), NOW, "lower-case t and z");
	T_EQ(since("2026-12-07 16:37:37Z"), NOW, "a space between date and time");
	T_EQ(since("2026-12-07T17:37:37+01:00"), NOW, "with an offset east");
	T_EQ(since("2026-12-07T11:07:37-05:30"), NOW, "with an offset west");
	T_EQ(since("2026-12-07T16:37:37.123456Z"), NOW, "with a fraction of a second");
	T_EQ(since("1970-01-01T00:00:00Z"), 0, "the epoch");
	T_EQ(since("100000000000d"), 0, "longer ago than the epoch: 0");
	T_EQ(since("yesterday"), -1, "a word is refused");
	T_EQ(since("10"), 10, "a bare number is unix seconds, not a duration");
	T_EQ(since("10x"), -1, "an unknown unit is refused");
	T_EQ(since("2026-12-07T16:37:37"), -1, "RFC 3339 needs its zone");
	T_EQ(since("2026-13-07T16:37:37Z"), -1, "month 13 is refused");
	T_EQ(since("2026-12-07T16:37:37+25:00"), -1, "an offset of 25 hours is refused");
	T_EQ(since(""), -1, "empty is refused");
	T_OK(events_parse_since("soon", NOW, &t, &e) == -EINVAL && strstr(e.msg, "RFC 3339"),
	     "the message says what is expected: %s", e.msg);
}

static void test_format(void)
{
	struct store_event ev = { .id = 7, .time = NOW, .type = "container", .action = "died",
				  .object = "web", .attrs = "exit_code=1\nsignal=term" };
	struct buf b;

	buf_init(&b);
	events_format(&ev, false, &b);
	T_STREQ(b.data, "2026-12-07T16:37:37Z container web died exit_code=1 signal=term",
		"one line for people");
	buf_reset(&b);
	events_format(&ev, true, &b);
	T_STREQ(b.data, "{\"id\":7,\"time\":\"2026-12-07T16:37:37Z\",\"type\":\"container\","
		"\"action\":\"died\",\"object\":\"web\",\"container\":\"web\",\"message\":null,"
		"\"attributes\":{\"exit_code\":1,\"signal\":\"term\"}}",
		"as JSON: numbers bare, absent values null");
	snprintf(ev.type, sizeof(ev.type), "reload");
	snprintf(ev.action, sizeof(ev.action), "rejected");
	snprintf(ev.object, sizeof(ev.object), "config");
	snprintf(ev.message, sizeof(ev.message), "a.ini:1: bad\nb.ini:2: worse");
	ev.attrs[0] = '\0';
	buf_reset(&b);
	events_format(&ev, false, &b);
	T_STREQ(b.data, "2026-12-07T16:37:37Z reload config rejected: a.ini:1: bad b.ini:2: worse",
		"a message stays on the event's line");
	buf_reset(&b);
	events_format(&ev, true, &b);
	T_OK(strstr(b.data, "\"container\":null") && strstr(b.data, "\"attributes\":{}"),
	     "a reload refers to no container; no attributes is {}: %s", b.data);
	buf_free(&b);
}

int main(void)
{
	test_since();
	test_format();
	return t_done();
}
