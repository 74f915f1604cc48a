/* cmd_stats.c - `berth stats [--no-stream] [NAME...]`: containers' CPU,
 * memory and traffic, refreshed every second like `docker stats`. The
 * daemon answers counters (req_stats.c); CPU % is the CPU time between two
 * samples over the time between them (100% = one core busy). */
#include "runtime/runtime.h"
#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATS_INTERVAL_MS 1000
#define STATS_NO_STREAM_MS 500      /* --no-stream: two samples this far apart */
#define STATS_MAX 1024              /* containers shown */
#define STATS_USAGE "usage: berth stats [--no-stream] [NAME...]\n"

struct stat_row {
	char name[64];
	char state[16];
	bool have_cpu, have_mem, have_net;
	double cpu;                 /* seconds */
	long long mem, limit, pids;
	long long in_p, in_b, out_p, out_b;
};

struct sample {
	struct stat_row *v;
	size_t n;
	uint64_t ms;                /* when it arrived (monotonic) */
};

static void on_interrupt(int sig)
{
	(void)sig;
	_exit(EXIT_OK);
}

static long long num(const struct json_doc *d, const struct json_tok *obj, const char *key,
		     bool *have)
{
	const struct json_tok *t = json_get(d, obj, key);
	long long v = 0;

	if (!t || t->type != JSON_NUMBER) {
		if (have)
			*have = false;
		return 0;
	}
	if (json_int(d, t, 0, INT64_MAX, &v, NULL) < 0)
		v = (long long)strtod(d->text + t->start, NULL);
	return v;
}

static int parse_sample(const struct buf *body, struct sample *s, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *root, *el;

	s->n = 0;
	if (json_parse(&d, body->data ? body->data : "", body->len, e) < 0) {
		json_free(&d);
		return err_wrap(e, "stats reply");
	}
	root = json_root(&d);
	for (el = json_first(&d, root); el && s->n < STATS_MAX; el = json_next(&d, root, el)) {
		struct stat_row *r = &s->v[s->n++];
		const struct json_tok *cpu = json_get(&d, el, "cpu_seconds");
		bool dummy = true;

		memset(r, 0, sizeof(*r));
		json_string(&d, json_get(&d, el, "name"), r->name, sizeof(r->name), NULL);
		json_string(&d, json_get(&d, el, "state"), r->state, sizeof(r->state), NULL);
		r->have_cpu = cpu && cpu->type == JSON_NUMBER;
		if (r->have_cpu)
			r->cpu = strtod(d.text + cpu->start, NULL);
		r->have_mem = true;
		r->mem = num(&d, el, "memory_bytes", &r->have_mem);
		r->limit = num(&d, el, "memory_limit_bytes", NULL);
		r->pids = num(&d, el, "pids", NULL);
		r->have_net = true;
		r->in_p = num(&d, el, "net_in_packets", &r->have_net);
		r->in_b = num(&d, el, "net_in_bytes", &dummy);
		r->out_p = num(&d, el, "net_out_packets", &dummy);
		r->out_b = num(&d, el, "net_out_bytes", &dummy);
	}
	json_free(&d);
	return 0;
}

static const struct stat_row *find(const struct sample *s, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!strcmp(s->v[i].name, name))
			return &s->v[i];
	return NULL;
}

/* CPU % of r since prev's sample; < 0: unknown. */
static double cpu_percent(const struct stat_row *r, const struct sample *prev, uint64_t ms)
{
	const struct stat_row *p = find(prev, r->name);

	if (!p || !r->have_cpu || !p->have_cpu || ms <= prev->ms || r->cpu < p->cpu)
		return -1;
	return (r->cpu - p->cpu) * 100.0 * 1000.0 / (double)(ms - prev->ms);
}

static void fmt_bytes(char *buf, size_t size, long long v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double x = (double)v;
	int u = 0;

	while (x >= 1024 && u < 4) {
		x /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f%s" : "%.0f%s", x, unit[u]);
}

static void json_row(struct buf *b, const struct stat_row *r, double pct)
{
	buf_puts(b, "{\"name\":");
	buf_json_string(b, r->name);
	buf_puts(b, ",\"state\":");
	buf_json_string_or_null(b, r->state);
	if (pct >= 0)
		buf_printf(b, ",\"cpu_percent\":%.2f", pct);
	else
		buf_puts(b, ",\"cpu_percent\":null");
	if (r->have_cpu)
		buf_printf(b, ",\"cpu_seconds\":%.6f,\"pids\":%lld", r->cpu, r->pids);
	else
		buf_puts(b, ",\"cpu_seconds\":null,\"pids\":null");
	if (r->have_mem)
		buf_printf(b, ",\"memory_bytes\":%lld", r->mem);
	else
		buf_puts(b, ",\"memory_bytes\":null");
	if (r->limit)
		buf_printf(b, ",\"memory_limit_bytes\":%lld", r->limit);
	else
		buf_puts(b, ",\"memory_limit_bytes\":null");
	if (r->have_net)
		buf_printf(b, ",\"net_in_packets\":%lld,\"net_in_bytes\":%lld,\"net_out_packets\":%lld,"
			   "\"net_out_bytes\":%lld}", r->in_p, r->in_b, r->out_p, r->out_b);
	else
		buf_puts(b, ",\"net_in_packets\":null,\"net_in_bytes\":null,\"net_out_packets\":null,"
			 "\"net_out_bytes\":null}");
}

static void render(const struct sample *cur, const struct sample *prev, bool json, bool lines,
		   struct buf *out)
{
	static const char *const cols[] = { "NAME", "STATE", "CPU %", "MEM USAGE / LIMIT", "PIDS",
					    "NET I/O (IN / OUT)", "PACKETS (IN / OUT)" };
	struct table t;

	if (json) {
		if (!lines)
			buf_puts(out, "[");
		for (size_t i = 0; i < cur->n; i++) {
			if (!lines)
				buf_puts(out, i ? ",\n" : "\n");
			json_row(out, &cur->v[i], cpu_percent(&cur->v[i], prev, cur->ms));
			if (lines)
				buf_puts(out, "\n");
		}
		if (!lines)
			buf_puts(out, cur->n ? "\n]\n" : "]\n");
		return;
	}
	table_init(&t, ARRAY_SIZE(cols), cols);
	for (size_t i = 0; i < cur->n; i++) {
		const struct stat_row *r = &cur->v[i];
		double pct = cpu_percent(r, prev, cur->ms);
		char c[16] = "-", m[48] = "-", p[24] = "-", io[48] = "-", pk[48] = "-", a[16], b[16];

		if (pct >= 0)
			snprintf(c, sizeof(c), "%.2f%%", pct);
		if (r->have_mem) {
			fmt_bytes(a, sizeof(a), r->mem);
			if (r->limit)
				fmt_bytes(b, sizeof(b), r->limit);
			snprintf(m, sizeof(m), "%s / %s", a, r->limit ? b : "-");
		}
		if (r->have_cpu)
			snprintf(p, sizeof(p), "%lld", r->pids);
		if (r->have_net) {
			fmt_bytes(a, sizeof(a), r->in_b);
			fmt_bytes(b, sizeof(b), r->out_b);
			snprintf(io, sizeof(io), "%s / %s", a, b);
			snprintf(pk, sizeof(pk), "%lld / %lld", r->in_p, r->out_p);
		}
		table_add(&t, r->name, r->state, c, m, p, io, pk);
	}
	table_render(&t, false, out);
	table_free(&t);
}

/* One sample into s; -1 after printing why there is none. */
static int take(const char *sock, bool json, int argc, char **req, struct sample *s,
		struct buf *body)
{
	struct err e = { 0 };
	int ret;

	buf_reset(body);
	ret = ctl_call(sock, true, argc, req, body, &e);
	s->ms = loop_now_ms();
	if (ret == 0 && parse_sample(body, s, &e) == 0)
		return 0;
	/* the details of a daemon's error came as JSON too: say the message */
	cli_print_error(json, e.msg, NULL);
	return -1;
}

int cmd_stats(const char *sock, bool json, int argc, char **argv)
{
	char *req[CTL_MAX_ARGS + 1];
	struct sample a = { 0 }, b = { 0 }, *prev = &a, *cur = &b, *tmp;
	bool stream = true, tty = isatty(STDOUT_FILENO);
	struct buf body, out;
	int n = 1, ret = EXIT_OK;

	req[0] = "stats";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-stream")) {
			stream = false;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "berth stats: unknown option '%s'\n" STATS_USAGE, argv[i]);
			return EXIT_USAGE;
		} else if (n < CTL_MAX_ARGS) {
			req[n++] = argv[i];
		}
	}
	req[n] = NULL;
	a.v = calloc(STATS_MAX, sizeof(*a.v));
	b.v = calloc(STATS_MAX, sizeof(*b.v));
	if (!a.v || !b.v) {
		fprintf(stderr, "berth: out of memory\n");
		return EXIT_FAIL;
	}
	buf_init(&body);
	buf_init(&out);
	if (stream)
		signal(SIGINT, on_interrupt);
	if (take(sock, json, n, req, prev, &body) < 0) {
		ret = EXIT_FAIL;
		goto done;
	}
	for (;;) {
		sleep_ms(stream ? STATS_INTERVAL_MS : STATS_NO_STREAM_MS);
		if (take(sock, json, n, req, cur, &body) < 0) {
			ret = EXIT_FAIL;
			break;
		}
		buf_reset(&out);
		if (stream && tty && !json)
			buf_puts(&out, "\033[H\033[2J");    /* clear the screen, as top does */
		render(cur, prev, json, stream, &out);
		if (stream && !tty && !json)
			buf_puts(&out, "\n");
		fwrite(out.data ? out.data : "", 1, out.len, stdout);
		fflush(stdout);
		if (!stream)
			break;
		tmp = prev;
		prev = cur;
		cur = tmp;
	}
done:
	buf_free(&body);
	buf_free(&out);
	free(a.v);
	free(b.v);
	return ret;
}
