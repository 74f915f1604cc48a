/* events.c - what happened, as the daemon records it: one row in the store's
 * event ring per event (daemon_event), and the `events` request that lists
 * them and, for `berth events -f`, waits for the next ones (a long poll).
 *
 * Decisions:
 *  - An event is one small INSERT (and the trim of the ring's oldest row) in
 *    one transaction: flash storage wears with every write, so a container
 *    start costs one row, never more, and nothing is written per packet or
 *    per status poll.
 *  - Followers long-poll (`events --after ID --wait`): the reply is deferred
 *    (ctl_defer) until an event they want is recorded or EVENTS_WAIT_MS
 *    pass, then they ask again from the cursor they got. One request, one
 *    reply: it works unchanged through the remote TLS listener, whose
 *    client gives up on a silent server after REMOTE_CALL_TIMEOUT_S (30 s).
 *  - Every event goes through the store, also those other rooms record with
 *    store_event_add (images): the store's hook wakes the followers, on the
 *    next turn of the loop, so that a reload's many events reach them in
 *    one reply.
 */
#include "runtime/daemon_int.h"
#include "store/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EVENTS_WAIT_MS 25000        /* a follower's request is answered by then */
#define EVENTS_WAITERS_MAX 32       /* followers at once; more are told to come back */

/* The types an event may have (`--type` is checked against them). */
static const char *const event_types[] = {
	"container", "network", "reload", "port", "policy", "image", "cni", "daemon", "service",
};

/* What a request wants: a bit per type (0: all), and a time. */
struct event_filter {
	unsigned types;
	int64_t since;              /* unix seconds; 0: any */
};

struct event_wait {
	struct event_wait *next;
	struct daemon *d;
	struct ctl_reply *reply;
	struct loop_timer timer;
	struct event_filter f;
	int64_t after;
	bool json;
};

static int type_bit(const char *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(event_types); i++)
		if (!strcmp(type, event_types[i]))
			return (int)i;
	return -1;
}

static bool filter_match(const struct event_filter *f, const struct store_event *ev)
{
	int bit = type_bit(ev->type);

	if (f->since && ev->time < f->since)
		return false;
	return !f->types || (bit >= 0 && (f->types & (1u << bit)));
}

void daemon_event(struct daemon *d, const char *type, const char *action, const char *object,
		  const char *attrs, const char *fmt, ...)
{
	struct store_event ev = { 0 };
	struct err e = { 0 };
	va_list ap;

	if (!d->store)
		return;
	snprintf(ev.type, sizeof(ev.type), "%s", type);
	snprintf(ev.action, sizeof(ev.action), "%s", action ? action : "");
	snprintf(ev.object, sizeof(ev.object), "%s", object ? object : "");
	snprintf(ev.attrs, sizeof(ev.attrs), "%s", attrs ? attrs : "");
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(ev.message, sizeof(ev.message), fmt, ap);
		va_end(ap);
	}
	if (store_event_put(d->store, &ev, &e) < 0)
		daemon_log(d, LOG_WARN, "record event %s %s %s: %s", type, ev.object, ev.action, e.msg);
}

/* The supervisor's transitions of a container's process. */
void events_on_ctr(void *ctx, const char *name, const char *action, int code, const char *msg)
{
	char attrs[32] = "";

	if (code >= 0)
		snprintf(attrs, sizeof(attrs), "exit_code=%d", code);
	daemon_event(ctx, "container", action, name, attrs, "%s", msg ? msg : "");
	health_on_ctr(ctx, name, action);  /* probes follow the process */
}

/* ---- formatting ---------------------------------------------------------- */

/* A value that is an integer goes into JSON bare. */
static bool is_int(const char *v, size_t n)
{
	size_t i = n && v[0] == '-';

	if (i == n || n - i > 18)
		return false;
	for (; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

static void attrs_json(struct buf *out, const char *attrs)
{
	const char *p = attrs;
	bool first = true;

	buf_puts(out, "{");
	while (*p) {
		size_t len = strcspn(p, "\n");
		const char *eq = memchr(p, '=', len);

		if (eq && eq > p) {
			char key[64], val[256];
			size_t vn = len - (size_t)(eq + 1 - p);

			snprintf(key, sizeof(key), "%.*s", (int)(eq - p), p);
			snprintf(val, sizeof(val), "%.*s", (int)vn, eq + 1);
			buf_puts(out, first ? "" : ",");
			buf_json_string(out, key);
			buf_puts(out, ":");
			if (is_int(val, strlen(val)))
				buf_puts(out, val);
			else
				buf_json_string(out, val);
			first = false;
		}
		p += len;
		p += *p == '\n';
	}
	buf_puts(out, "}");
}

/* One event: a line for people ("2026-12-07T16:47:37Z container web died
 * exit_code=1"), or a JSON object (without a newline). */
void events_format(const struct store_event *ev, bool json, struct buf *out)
{
	char when[40];
	bool about_ctr = !strcmp(ev->type, "container") || !strcmp(ev->type, "port") ||
			 !strcmp(ev->type, "cni");

	if (json) {
		buf_printf(out, "{\"id\":%lld,\"time\":", (long long)ev->id);
		buf_json_time(out, ev->time);
		buf_puts(out, ",\"type\":");
		buf_json_string(out, ev->type);
		buf_puts(out, ",\"action\":");
		buf_json_string_or_null(out, ev->action);
		buf_puts(out, ",\"object\":");
		buf_json_string_or_null(out, ev->object);
		buf_puts(out, ",\"container\":");
		buf_json_string_or_null(out, about_ctr ? ev->object : NULL);
		buf_puts(out, ",\"message\":");
		buf_json_string_or_null(out, ev->message);
		buf_puts(out, ",\"attributes\":");
		attrs_json(out, ev->attrs);
		buf_puts(out, "}");
		return;
	}
	time_rfc3339(ev->time, when, sizeof(when));
	buf_printf(out, "%s %s", when, ev->type);
	if (ev->object[0])
		buf_printf(out, " %s", ev->object);
	if (ev->action[0])
		buf_printf(out, " %s", ev->action);
	for (const char *p = ev->attrs; *p;) {
		size_t len = strcspn(p, "\n");

		if (len)
			buf_printf(out, " %.*s", (int)len, p);
		p += len;
		p += *p == '\n';
	}
	if (ev->message[0]) {
		buf_puts(out, ": ");
		/* one line per event */
		for (const char *p = ev->message; *p; p++)
			buf_append(out, *p == '\n' ? " " : p, 1);
	}
}

/* ---- the request -------------------------------------------------------- */

struct list_ctx {
	const struct event_filter *f;
	struct buf *out;
	bool json, lines;           /* lines: JSON one object per line */
	size_t n;
	int64_t last;               /* the last id seen, matching or not */
};

static int list_one(void *ctx, const struct store_event *ev)
{
	struct list_ctx *lc = ctx;

	lc->last = ev->id;
	if (!filter_match(lc->f, ev))
		return 0;
	if (lc->json && !lc->lines)
		buf_puts(lc->out, lc->n ? ",\n" : "\n");
	events_format(ev, lc->json, lc->out);
	if (!lc->json || lc->lines)
		buf_puts(lc->out, "\n");
	lc->n++;
	return 0;
}

/* The events after `after` that f wants into out: with a cursor line first
 * ("ID\n", where the next request starts) and JSON as lines, or (no
 * cursor) lines for people, or a JSON array. Returns how many. */
static int list_events(struct daemon *d, const struct event_filter *f, int64_t after, bool json,
		       bool cursor, struct buf *out, struct err *e)
{
	struct buf body;
	struct list_ctx lc = { .f = f, .out = &body, .json = json, .lines = cursor, .last = after };
	int ret;

	buf_init(&body);
	ret = store_event_list(d->store, after, list_one, &lc, e);
	if (ret < 0) {
		buf_free(&body);
		return ret;
	}
	if (cursor)
		buf_printf(out, "%lld\n", (long long)lc.last);
	if (json && !cursor)
		buf_puts(out, "[");
	buf_append(out, body.data ? body.data : "", body.len);
	if (json && !cursor)
		buf_puts(out, lc.n ? "\n]\n" : "]\n");
	buf_free(&body);
	return (int)lc.n;
}

static void wait_free(struct event_wait *w)
{
	struct daemon *d = w->d;

	for (struct event_wait **pp = &d->event_waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	loop_timer_cancel(&d->loop, &w->timer);
	free(w);
}

/* Answer w with what there is after its cursor (maybe nothing). */
static void wait_answer(struct event_wait *w)
{
	struct buf out;
	struct err e = { 0 };
	int ret;

	buf_init(&out);
	ret = list_events(w->d, &w->f, w->after, w->json, true, &out, &e);
	ctl_reply_finish(w->reply, ret < 0 ? -1 : 0, &out, ret < 0 ? &e : NULL);
	buf_free(&out);
	wait_free(w);
}

static void wait_timeout(struct loop_timer *t)
{
	wait_answer(container_of(t, struct event_wait, timer));
}

static void wait_cancel(struct ctl_reply *r, void *arg)
{
	ctl_reply_finish(r, 0, NULL, NULL);     /* the client left: only frees */
	wait_free(arg);
}

struct wake_ctx {
	const struct event_filter *f;
	bool any;
};

static int wake_match(void *ctx, const struct store_event *ev)
{
	struct wake_ctx *wc = ctx;

	wc->any |= filter_match(wc->f, ev);
	return wc->any;                 /* stop at the first */
}

/* New events were recorded: the followers that want one of them get them. */
static void events_wake(struct loop_timer *t)
{
	struct daemon *d = container_of(t, struct daemon, events_wake);
	struct event_wait *w = d->event_waits, *next;

	for (; w; w = next) {
		struct wake_ctx wc = { &w->f, false };

		next = w->next;
		store_event_list(d->store, w->after, wake_match, &wc, NULL);
		if (wc.any)
			wait_answer(w);
	}
}

static void events_hook(void *ctx, const struct store_event *ev)
{
	struct daemon *d = ctx;

	(void)ev;
	if (d->event_waits && !d->events_wake.pending)
		loop_timer_set(&d->loop, &d->events_wake, 0);
}

void events_init(struct daemon *d)
{
	d->events_wake.cb = events_wake;
	if (d->store)
		store_event_hook(d->store, events_hook, d);
}

void events_close(struct daemon *d)
{
	/* the followers get what there is (the daemon's stop, say); their
	 * next request finds no daemon */
	while (d->event_waits)
		wait_answer(d->event_waits);
	loop_timer_cancel(&d->loop, &d->events_wake);
	if (d->store)
		store_event_hook(d->store, NULL, NULL);
}

#define EVENTS_USAGE "usage: berth events [--since UNIX] [--type T[,T...]]... [--after ID|last] " \
	"[--wait] [--cursor]"

static int parse_types(const char *list, unsigned *types, struct err *e)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int bit = type_bit(t);

		if (bit < 0)
			return err_set(e, EINVAL, "unknown event type '%s' (container, network, reload, "
				       "port, policy, image, cni or daemon)", t);
		*types |= 1u << bit;
	}
	return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

size_t events_waiting(const struct daemon *d)
{
	size_t n = 0;

	for (const struct event_wait *w = d->event_waits; w; w = w->next)
		n++;
	return n;
}

int req_events(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	struct event_filter f = { 0 };
	int64_t after = 0;
	bool wait = false, cursor = false;
	struct event_wait *w;
	int n;

	for (int i = 1; i < rq->argc; i++) {
		const char *a = rq->argv[i], *v = i + 1 < rq->argc ? rq->argv[i + 1] : NULL;

		if (!strcmp(a, "--wait")) {
			wait = true;
		} else if (!strcmp(a, "--cursor")) {
			cursor = true;
		} else if (!strcmp(a, "--type") && v) {
			if (parse_types(v, &f.types, e) < 0)
				return -e->code;
			i++;
		} else if (!strcmp(a, "--since") && v) {
			if (parse_i64(v, &f.since) < 0)
				return err_set(e, EINVAL, "--since %s: expected unix seconds", v);
			i++;
		} else if (!strcmp(a, "--after") && v) {
			if (!strcmp(v, "last")) {
				if ((after = store_event_last(d->store, e)) < 0)
					return (int)after;
			} else if (parse_i64(v, &after) < 0) {
				return err_set(e, EINVAL, "--after %s: expected an event id or 'last'", v);
			}
			i++;
		} else {
			return err_set(e, EINVAL, EVENTS_USAGE);
		}
	}
	if (wait && !cursor)
		return err_set(e, EINVAL, "--wait needs --cursor (where the next request starts)");
	if (!wait || d->exiting) {
		n = list_events(d, &f, after, rq->json, cursor, out, e);
		return n < 0 ? n : 0;
	}
	/* a wait answers at once when there is something already */
	n = list_events(d, &f, after, rq->json, cursor, out, e);
	if (n != 0)
		return n < 0 ? n : 0;
	if (events_waiting(d) >= EVENTS_WAITERS_MAX)
		return 0;           /* nothing yet: the client asks again */
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(e, ENOMEM, "events --wait");
	w->d = d;
	w->f = f;
	w->json = rq->json;
	/* from the cursor just computed: what was skipped is not looked at again */
	w->after = strtoll(out->data ? out->data : "0", NULL, 10);
	w->timer.cb = wait_timeout;
	if (!(w->reply = ctl_defer(rq, wait_cancel, w))) {
		free(w);
		return 0;           /* a synchronous caller gets the empty answer now */
	}
	w->next = d->event_waits;
	d->event_waits = w;
	loop_timer_set(&d->loop, &w->timer, EVENTS_WAIT_MS);
	buf_reset(out);
	return CTL_PENDING;
}
