/* fuzz_control.c - the control request parser on arbitrary bytes, the
 * encoder/parser round trip on whatever words come out, and a whole request
 * line through the command table (read-only rule included) to its reply. */
#include "runtime/ctl/ctl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct daemon {
	unsigned runs;
};

static int cmd_run(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	(void)e;
	d->runs++;
	buf_printf(out, "%d\n", rq->argc);
	return 0;
}

static const struct ctl_command commands[] = {
	{ "status", cmd_run, false },
	{ "reload", cmd_run, true },
};

static int handler(void *ctx, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	return ctl_dispatch(commands, sizeof(commands) / sizeof(commands[0]), ctx, rq, out, e);
}

/* Whatever the line, the reply is "ok\n" BODY or "error MSG\n" DETAILS. */
static void fuzz_handle_line(const unsigned char *data, size_t size)
{
	struct ctl_request who = { .read_only = size & 1 };
	struct daemon d = { 0 };
	char line[CTL_REQ_MAX + 1];
	struct buf out;
	char *nl;

	memcpy(line, data, size);
	line[size] = '\0';
	buf_init(&out);
	ctl_handle_line(handler, &d, &who, line, size, &out);
	nl = out.data ? memchr(out.data, '\n', out.len) : NULL;
	if (!nl || (strncmp(out.data, "ok\n", 3) && strncmp(out.data, "error ", 6)))
		abort();
	if (!strncmp(out.data, "error ", 6) && d.runs)
		abort();            /* a command ran, yet the reply is an error */
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char line[CTL_REQ_MAX + 1], again[CTL_REQ_MAX + 1], *argv[CTL_MAX_ARGS + 1];
	char *argv2[CTL_MAX_ARGS + 1], copy[CTL_REQ_MAX + 1];
	struct ctl_request rq, rq2;
	struct err e;
	int n;

	if (size > CTL_REQ_MAX)
		return 0;
	fuzz_handle_line(data, size);
	/* the server hands the parser one line without its newline and without NULs */
	memcpy(line, data, size);
	line[size] = '\0';
	if (memchr(line, '\n', size) || strlen(line) != size)
		return 0;
	if (ctl_parse_request(line, &rq, argv, &e) < 0)
		return 0;
	n = ctl_encode_request(again, sizeof(again), rq.json, rq.argc, rq.argv);
	if (n < 0)
		return 0;
	again[n - 1] = '\0';
	memcpy(copy, again, (size_t)n);
	if (ctl_parse_request(again, &rq2, argv2, &e) < 0 || rq2.argc != rq.argc ||
	    rq2.json != rq.json)
		abort();
	for (int i = 0; i < rq.argc; i++)
		if (strcmp(rq.argv[i], rq2.argv[i]) != 0)
			abort();
	return 0;
}
