/* cmd_image.c - the CLI's `berth image ...`: pull and import start a job in
 * the daemon and follow it (`image status`, polled, so it works unchanged
 * over the remote transport) with a progress bar on a terminal, a line per
 * step otherwise; ls, inspect, status, rm and prune are one request each,
 * sent by main.c as any other command's. */
#include "runtime/image/image.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The first look comes soon (a pull of layers already here, or a small
 * import, takes tens of ms), then each waits twice as long up to POLL_MS. */
#define POLL_FIRST_MS 10
#define POLL_MS 200
#define BAR_WIDTH 20

/* The job as `image status -o json` says it. */
struct job_view {
	long long id, percent, done, total;
	char state[32], ref[IMAGE_REF_MAX], error[ERR_MSG_MAX], digest[IMAGE_DIGEST_SIZE];
	char image[IMAGE_REF_MAX];          /* once done: the name recorded */
};

static int job_parse(const struct buf *b, struct job_view *v, struct err *e)
{
	struct json_doc d = { 0 };
	const struct json_tok *root, *t;
	int ret = -1;

	memset(v, 0, sizeof(*v));
	if (json_parse(&d, b->data ? b->data : "", b->len, e) < 0)
		goto out;
	root = json_root(&d);
	if (json_int(&d, json_get(&d, root, "job"), 0, INT_MAX, &v->id, e) < 0 ||
	    json_int(&d, json_get(&d, root, "percent"), 0, 100, &v->percent, e) < 0 ||
	    json_int(&d, json_get(&d, root, "done"), 0, LLONG_MAX, &v->done, e) < 0 ||
	    json_int(&d, json_get(&d, root, "total"), 0, LLONG_MAX, &v->total, e) < 0 ||
	    json_string(&d, json_get(&d, root, "state"), v->state, sizeof(v->state), e) < 0 ||
	    json_string(&d, json_get(&d, root, "ref"), v->ref, sizeof(v->ref), e) < 0)
		goto out;
	if ((t = json_get(&d, root, "error")) && t->type == JSON_STRING)
		json_string(&d, t, v->error, sizeof(v->error), NULL);
	if ((t = json_get(&d, root, "image")) && t->type == JSON_STRING)
		json_string(&d, t, v->image, sizeof(v->image), NULL);
	if ((t = json_get(&d, root, "digest")) && t->type == JSON_STRING)
		json_string(&d, t, v->digest, sizeof(v->digest), NULL);
	ret = 0;
out:
	if (ret < 0)
		err_wrap(e, "the daemon's reply");
	json_free(&d);
	return ret;
}

/* One request as JSON, parsed; prints the error (cli_print_error: as JSON
 * on stdout with -o json). */
static int ask(const char *sock, bool json, int argc, char **argv, struct job_view *v)
{
	struct err e = { 0 };
	struct buf b;
	int ret;

	buf_init(&b);
	ret = ctl_call(sock, true, argc, argv, &b, &e);
	if (ret == 0 && job_parse(&b, v, &e) < 0)
		ret = -1;
	if (ret != 0)
		cli_print_error(json, e.msg, ret == 1 ? &b : NULL);
	buf_free(&b);
	return ret == 0 ? 0 : -1;
}

static void draw_bar(const char *verb, const struct job_view *v)
{
	char bar[BAR_WIDTH + 1];
	int full = (int)(v->percent * BAR_WIDTH / 100);

	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < full ? '#' : '-';
	bar[BAR_WIDTH] = '\0';
	if (!strcmp(v->state, "fetching") || !strcmp(v->state, "reading"))
		fprintf(stderr, "\r%s %s  [%s] %3lld%% %.1f/%.1f MB\033[K", verb, v->ref, bar,
			v->percent, (double)v->done / 1e6, (double)v->total / 1e6);
	else
		fprintf(stderr, "\r%s %s  [%s] %s\033[K", verb, v->ref, bar, v->state);
	fflush(stderr);
}

/* Follow job id until it is done or failed; verb says what it does
 * ("pulling"), what names it in the error ("pull"). */
static int follow(const char *sock, bool json, const char *verb, const char *what, long long id)
{
	char idbuf[24], *argv[] = { "image", "status", idbuf, NULL };
	bool tty = isatty(STDERR_FILENO) && !json;
	char last[32] = "";
	unsigned wait_ms = POLL_FIRST_MS;
	struct job_view v;

	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	for (;;) {
		if (ask(sock, json, 3, argv, &v) < 0)
			return EXIT_FAIL;
		if (tty) {
			draw_bar(verb, &v);
		} else if (!json && strcmp(last, v.state)) {
			/* a line per step: logs and pipes get no carriage returns */
			if (strcmp(v.state, "done") && strcmp(v.state, "failed"))
				fprintf(stderr, "%s %s: %s\n", verb, v.ref, v.state);
		}
		snprintf(last, sizeof(last), "%s", v.state);
		if (!strcmp(v.state, "done") || !strcmp(v.state, "failed"))
			break;
		sleep_ms(wait_ms);
		if (wait_ms < POLL_MS)
			wait_ms = wait_ms * 2 < POLL_MS ? wait_ms * 2 : POLL_MS;
	}
	if (tty)
		fputc('\n', stderr);
	if (json) {
		struct buf b;
		struct err e = { 0 };

		buf_init(&b);
		if (ctl_call(sock, true, 3, argv, &b, &e) == 0)
			fwrite(b.data ? b.data : "", 1, b.len, stdout);
		buf_free(&b);
	} else if (!strcmp(v.state, "done")) {
		printf("%s %s\n", v.image[0] ? v.image : v.ref, v.digest);
	}
	if (!strcmp(v.state, "failed")) {
		/* the error names the image (or archive) itself */
		fprintf(stderr, "berth: image %s failed: %s\n", what, v.error);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int do_pull(const char *sock, bool json, int argc, char **argv)
{
	char *req[] = { "image", "pull", NULL, NULL };
	struct job_view v;

	if (argc != 3) {
		fprintf(stderr, "usage: berth image pull REF\n");
		return EXIT_USAGE;
	}
	req[2] = argv[2];
	if (ask(sock, json, 3, req, &v) < 0)
		return EXIT_FAIL;
	return follow(sock, json, "pulling", "pull", v.id);
}

static int do_import(const char *sock, bool json, int argc, char **argv)
{
	char *req[] = { "image", "import", NULL, NULL, NULL, NULL };
	char path[PATH_MAX];
	struct job_view v;
	int n = 3;

	if (argc == 5 && !strcmp(argv[3], "--name")) {
		req[3] = "--name";
		req[4] = argv[4];
		n = 5;
	} else if (argc != 3) {
		fprintf(stderr, "usage: berth image import FILE|DIR [--name REF]\n");
		return EXIT_USAGE;
	}
	/* the daemon reads it: a path of ours means nothing in its cwd */
	if (!realpath(argv[2], path)) {
		char msg[PATH_MAX + 128];

		snprintf(msg, sizeof(msg), "image import %s: %s", argv[2], strerror(errno));
		cli_print_error(json, msg, NULL);
		return EXIT_FAIL;
	}
	req[2] = path;
	if (ask(sock, json, n, req, &v) < 0)
		return EXIT_FAIL;
	return follow(sock, json, "importing", "import", v.id);
}

int cmd_image(const char *sock, bool json, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "pull"))
		return do_pull(sock, json, argc, argv);
	return do_import(sock, json, argc, argv);
}
