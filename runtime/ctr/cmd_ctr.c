/* cmd_ctr.c - the CLI's container commands: run, rm, start, stop, restart,
 * kill, logs [-f] (polling, so it works unchanged over the remote transport)
 * and exec (which joins the container's namespaces itself: the caller's
 * terminal, signals and exit status pass through without the daemon in the
 * middle; -t relays a pty of the container's own). Errors go through
 * cli_print_error: with -o json, one object on stdout. */
#include "runtime/ctr/ctr.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 200
#define START_POLL_MS 10       /* a start takes milliseconds */
/* A stop takes milliseconds too (with an init that forwards SIGTERM), or
 * up to stop_timeout: the first looks come every 10 ms, then ever more
 * slowly up to POLL_MS, so that neither shows (nor, over remote TLS, costs
 * a handshake every 10 ms for seconds). */
#define STOP_POLL_FIRST_MS 10

/* One request; prints the error (and details) once, as cli_print_error
 * does: for people on stderr, with -o json as an object on stdout. The
 * request itself never asks the daemon for JSON: the CLI reads its
 * "key=value" and human lines and writes the JSON its user asked for. */
static int call(const char *sock, bool json, struct buf *body, int argc, char **argv)
{
	struct err e = { 0 };
	int ret = ctl_call(sock, false, argc, argv, body, &e);

	if (ret != 0) {
		cli_print_error(json, e.msg, ret > 0 ? body : NULL);
		return -1;
	}
	return 0;
}

/* An error of the CLI's own, printed like the daemon's. */
static void __attribute__((format(printf, 2, 3))) fail(bool json, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_print_error(json, msg, NULL);
}

static int usage(const char *text)
{
	fprintf(stderr, "usage: berth %s\n", text);
	return EXIT_USAGE;
}

static const char *field(const char *body, const char *key, char *out, size_t size)
{
	size_t n = strlen(key);

	for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, n) && p[n] == '=') {
			snprintf(out, size, "%.*s", (int)strcspn(p + n + 1, "\n"), p + n + 1);
			return out;
		}
	out[0] = '\0';
	return NULL;
}

/* Poll NAME's state until it is none of the states in passing (a
 * space-separated list), at most about an hour; the last state and pid go to
 * st and pid (for a failed one, pid gets its error). A name the daemon no
 * longer knows counts as gone (""). The polls come every poll_ms, growing by
 * half each time up to max_ms. Returns 0, or -1 when the daemon cannot be
 * asked (the error is printed). */
static int wait_state(const char *sock, bool json, const char *name, const char *passing,
		      unsigned poll_ms, unsigned max_ms, char *st, size_t size, char *pid,
		      size_t pid_size)
{
	char *argv[] = { "state", (char *)name, NULL };
	char list[128];

	for (unsigned waited = 0; waited < (3600 + 30) * 1000u; waited += poll_ms,
	     poll_ms = poll_ms + poll_ms / 2 < max_ms ? poll_ms + poll_ms / 2 : max_ms) {
		struct buf b;
		struct err e = { 0 };
		int ret;

		buf_init(&b);
		ret = ctl_call(sock, false, 2, argv, &b, &e);
		if (ret < 0) {
			cli_print_error(json, e.msg, NULL);
			buf_free(&b);
			return -1;
		}
		if (ret > 0) {          /* no such container (any more): gone */
			st[0] = '\0';
			buf_free(&b);
			return 0;
		}
		field(b.data ? b.data : "", "state", st, size);
		field(b.data ? b.data : "", "pid", pid, pid_size);
		if (!strcmp(st, "error") || !strcmp(st, "exited") || !strcmp(st, "backoff"))
			field(b.data ? b.data : "", "error", pid, pid_size);
		buf_free(&b);
		snprintf(list, sizeof(list), " %s ", passing);
		{
			char word[40];

			snprintf(word, sizeof(word), " %s ", st);
			if (!strstr(list, word))
				return 0;
		}
		sleep_ms(poll_ms);
	}
	fail(json, "%s is still %s", name, st);
	return -1;
}

/* What an action did, for people (text) or as one JSON object:
 * {"name":N,"state":S,"changed":bool} and, when known, "pid". */
static void say(bool json, const char *name, const char *state, const char *pid, bool changed,
		const char *text)
{
	struct buf b;

	if (!json) {
		printf("%s\n", text);
		return;
	}
	buf_init(&b);
	buf_puts(&b, "{\"name\":");
	buf_json_string(&b, name);
	buf_puts(&b, ",\"state\":");
	buf_json_string_or_null(&b, state);
	buf_printf(&b, ",\"pid\":%s,\"changed\":%s}\n", pid && atoi(pid) > 0 ? pid : "null",
		   changed ? "true" : "false");
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

/* The daemon's "NAME is ..." line, without its newline. */
static void first_line(const struct buf *b, char *out, size_t size)
{
	const char *p = b->data ? b->data : "";

	snprintf(out, size, "%.*s", (int)strcspn(p, "\n"), p);
}

/* Is argv[*i] the option SHORT or LONG with its value ("-t 5", "--time 5",
 * "--time=5"), given once? Then *val is the value and *i moves past it. */
static bool opt_value(int argc, char **argv, int *i, const char *short_opt, const char *long_opt,
		      const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(long_opt);

	if (*val)
		return false;
	if ((!strcmp(a, short_opt) || !strcmp(a, long_opt)) && *i + 1 < argc) {
		*val = argv[++*i];
		return true;
	}
	if (!strncmp(a, long_opt, n) && a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	return false;
}

/* stop [-t SECONDS] NAME; a stopped one: said once, EXIT_NOOP. */
static int do_stop(const char *sock, bool json, int argc, char **argv)
{
	char *req[] = { "stop", NULL, "--time", NULL, NULL };
	char st[32], pid[ERR_MSG_MAX], line[ERR_MSG_MAX], text[ERR_MSG_MAX + 32];
	const char *name = NULL, *secs = NULL;
	struct buf b;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (opt_value(argc, argv, &i, "-t", "--time", &secs))
			continue;
		if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage("stop [-t SECONDS] NAME");
	}
	if (!name)
		return usage("stop [-t SECONDS] NAME");
	req[1] = (char *)name;
	req[3] = (char *)secs;
	buf_init(&b);
	ret = call(sock, json, &b, secs ? 4 : 2, req);
	first_line(&b, line, sizeof(line));
	buf_free(&b);
	if (ret < 0)
		return EXIT_FAIL;
	if (strstr(line, " " CTR_NOT_RUNNING)) {
		char *q[] = { "state", (char *)name, NULL };

		buf_init(&b);
		ctl_call(sock, false, 2, q, &b, &(struct err){ 0 });
		field(b.data ? b.data : "", "state", st, sizeof(st));
		buf_free(&b);
		say(json, name, st, NULL, false, line);
		return EXIT_NOOP;
	}
	if (!strncmp(line, "stopped ", 8)) {      /* it was waiting to restart */
		say(json, name, "stopped", NULL, true, line);
		return EXIT_OK;
	}
	if (!json) {            /* "stopping web (SIGTERM, SIGKILL after 10 s)": while it waits */
		printf("%s\n", line);
		fflush(stdout);
	}
	if (wait_state(sock, json, name, "running stopping starting", STOP_POLL_FIRST_MS,
		       POLL_MS, st, sizeof(st), pid, sizeof(pid)) < 0)
		return EXIT_FAIL;
	snprintf(text, sizeof(text), "stopped %s", name);
	say(json, name, *st ? st : "stopped", NULL, true, text);
	return EXIT_OK;
}

/* start and restart: the daemon begins; the CLI waits for the outcome. A
 * start of a running one: said once, EXIT_NOOP. */
static int do_start(const char *sock, bool json, const char *cmd, const char *name)
{
	char *argv[] = { (char *)cmd, (char *)name, NULL };
	char st[32], pid[ERR_MSG_MAX], line[ERR_MSG_MAX], text[ERR_MSG_MAX + 64];
	struct buf b;
	int ret;

	buf_init(&b);
	ret = call(sock, json, &b, 2, argv);
	first_line(&b, line, sizeof(line));
	buf_free(&b);
	if (ret < 0)
		return EXIT_FAIL;
	if (strstr(line, " " CTR_ALREADY_RUNNING)) {
		const char *p = strstr(line, "(pid ");

		snprintf(pid, sizeof(pid), "%d", p ? atoi(p + 5) : 0);
		say(json, name, "running", pid, false, line);
		return EXIT_NOOP;
	}
	if (wait_state(sock, json, name, "stopping created starting pulling", START_POLL_MS,
		       POLL_MS, st, sizeof(st), pid, sizeof(pid)) < 0)
		return EXIT_FAIL;
	if (!strcmp(st, "running")) {
		snprintf(text, sizeof(text), "started %s (pid %s)", name, pid);
		say(json, name, st, pid, true, text);
		return EXIT_OK;
	}
	fail(json, "container %s cannot start: %s", name, *st ? pid : "it was removed");
	return EXIT_FAIL;
}

/* ---- kill ------------------------------------------------------------------------ */

static const struct { const char *name; int num; } signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "PWR", SIGPWR }, { "SYS", SIGSYS },
};

/* TERM, SIGTERM, term or 15; -1 when it is none. */
static int signal_parse(const char *s)
{
	char *end;
	long n;

	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (!strcasecmp(s, signals[i].name))
			return signals[i].num;
	errno = 0;
	n = strtol(s, &end, 10);
	return errno || *end || end == s || n < 1 || n >= _NSIG ? -1 : (int)n;
}

static void signal_name(int sig, char *buf, size_t size)
{
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (signals[i].num == sig) {
			snprintf(buf, size, "SIG%s", signals[i].name);
			return;
		}
	snprintf(buf, size, "signal %d", sig);
}

/* kill [-s SIGNAL] NAME: SIGKILL unless told, as docker kill. */
static int do_kill(const char *sock, bool json, int argc, char **argv)
{
	const char *name = NULL, *sigarg = NULL;
	char num[16], sname[32], line[ERR_MSG_MAX], *p;
	char *req[] = { "kill", NULL, num, NULL };
	int sig = SIGKILL;
	struct buf b;

	for (int i = 1; i < argc; i++) {
		if (opt_value(argc, argv, &i, "-s", "--signal", &sigarg))
			continue;
		if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage("kill [-s SIGNAL] NAME");
	}
	if (!name)
		return usage("kill [-s SIGNAL] NAME");
	if (sigarg && (sig = signal_parse(sigarg)) < 0) {
		fail(json, "'%s' is not a signal (a name such as TERM or SIGHUP, or a number)",
		     sigarg);
		return EXIT_USAGE;
	}
	snprintf(num, sizeof(num), "%d", sig);
	req[1] = (char *)name;
	buf_init(&b);
	if (call(sock, json, &b, 3, req) < 0) {
		buf_free(&b);
		return EXIT_FAIL;
	}
	first_line(&b, line, sizeof(line));
	buf_free(&b);
	signal_name(sig, sname, sizeof(sname));
	p = strstr(line, "(pid ");
	if (json) {
		buf_init(&b);
		buf_puts(&b, "{\"name\":");
		buf_json_string(&b, name);
		buf_puts(&b, ",\"signal\":");
		buf_json_string(&b, sname);
		buf_printf(&b, ",\"signal_number\":%d,\"pid\":", sig);
		if (p && atoi(p + 5) > 0)
			buf_printf(&b, "%d}\n", atoi(p + 5));
		else
			buf_puts(&b, "null}\n");
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	} else {
		printf("sent %s to %s%s%s\n", sname, name, p ? " " : "", p ? p : "");
	}
	return EXIT_OK;
}

/* ---- run and rm ------------------------------------------------------------------------ */

#define RUN_USAGE "run NAME [--image REF | --rootfs DIR] [-p SPEC]... [-l K=V]... " \
	"[--network N]... [-e K=V]... [--restart P] [--health SPEC] [--health-interval D] " \
	"[--health-timeout D] [--health-retries N] [--health-start-period D] " \
	"[--on-unhealthy none|restart] [-d] -- CMD..."

/* run: the options as the daemon takes them (a relative --rootfs made
 * absolute: the daemon's directory is not the user's; each repeated option
 * and the command as one word of lines, for a request's CTL_MAX_ARGS), then
 * wait, unless -d, until the container runs. */
static int do_run(const char *sock, bool json, int argc, char **argv)
{
	static const struct { const char *opt, *alias, *word; bool list; } opts[] = {
		{ "--image", NULL, "--image", false }, { "--rootfs", NULL, "--rootfs", false },
		{ "--restart", NULL, "--restart", false },
		{ "--health", NULL, "--health", false },
		{ "--health-interval", NULL, "--health-interval", false },
		{ "--health-timeout", NULL, "--health-timeout", false },
		{ "--health-retries", NULL, "--health-retries", false },
		{ "--health-start-period", NULL, "--health-start-period", false },
		{ "--on-unhealthy", NULL, "--on-unhealthy", false },
		{ "-p", "--publish", "-p", true }, { "-l", "--label", "-l", true },
		{ "--network", "--net", "--network", true }, { "-e", "--env", "-e", true },
	};
	struct buf lists[ARRAY_SIZE(opts)], cmd, b;
	const char *name = NULL, *single[ARRAY_SIZE(opts)] = { NULL };
	char *req[2 + 2 * (ARRAY_SIZE(opts) + 1)], st[32], pid[ERR_MSG_MAX], file[512] = "";
	char abs[8192];
	bool detach = false, has_cmd = false;
	int i, n = 0, ret = EXIT_FAIL;

	for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
		buf_init(&lists[k]);
	buf_init(&cmd);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		size_t k;

		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "-d") || !strcmp(a, "--detach")) {
			detach = true;
			continue;
		}
		if (a[0] != '-') {
			if (name)
				break;  /* the command, without -- */
			name = a;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(opts); k++) {
			size_t n1 = strlen(opts[k].opt), n2 = opts[k].alias ? strlen(opts[k].alias) : 0;

			if (!strcmp(a, opts[k].opt) || (n2 && !strcmp(a, opts[k].alias))) {
				if (i + 1 >= argc)
					k = ARRAY_SIZE(opts);
				else
					v = argv[++i];
				break;
			}
			if (!strncmp(a, opts[k].opt, n1) && a[n1] == '=') {
				v = a + n1 + 1;
				break;
			}
			if (n2 && !strncmp(a, opts[k].alias, n2) && a[n2] == '=') {
				v = a + n2 + 1;
				break;
			}
		}
		if (k == ARRAY_SIZE(opts) || (!opts[k].list && single[k])) {
			fprintf(stderr, "berth run: %s option '%s'\n", k == ARRAY_SIZE(opts) ?
				"unknown or incomplete" : "repeated", a);
			ret = usage(RUN_USAGE);
			goto out;
		}
		if (strpbrk(v, "\n\r")) {
			fail(json, "%s: a value with a line break cannot go into a container file", a);
			goto out;
		}
		if (!opts[k].list) {
			single[k] = v;
			if (!strcmp(opts[k].word, "--rootfs") && v[0] != '/') {
				char cwd[4096];

				if (!getcwd(cwd, sizeof(cwd))) {
					fail(json, "--rootfs %s: cannot make it absolute: %s", v,
					     strerror(errno));
					goto out;
				}
				snprintf(abs, sizeof(abs), "%s/%s", cwd, v);
				single[k] = abs;
			}
			continue;
		}
		buf_printf(&lists[k], "%s%s", lists[k].len ? "\n" : "", v);
	}
	if (!name) {
		ret = usage(RUN_USAGE);
		goto out;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	for (; i < argc; i++) {
		if (strpbrk(argv[i], "\n\r")) {
			fail(json, "the command's argument '%s' holds a line break, which a container "
			     "file cannot", argv[i]);
			goto out;
		}
		buf_printf(&cmd, "%s%s", has_cmd ? "\n" : "", argv[i]);
		has_cmd = true;
	}
	req[n++] = "run";
	req[n++] = (char *)name;
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
		if (opts[k].list ? !lists[k].len : !single[k])
			continue;
		req[n++] = (char *)opts[k].word;
		req[n++] = opts[k].list ? lists[k].data : (char *)single[k];
	}
	if (has_cmd) {
		req[n++] = "--command";
		req[n++] = cmd.data ? cmd.data : "";
	}
	buf_init(&b);
	if (call(sock, json, &b, n, req) < 0) {
		buf_free(&b);
		goto out;
	}
	field(b.data ? b.data : "", "file", file, sizeof(file));
	{
		/* what the reload could not do (its apply's problems) */
		const char *p = strstr(b.data ? b.data : "", "problems while applying:");

		if (p && !json)
			fputs(p, stderr);
	}
	buf_free(&b);
	snprintf(st, sizeof(st), "created");
	pid[0] = '\0';
	if (detach) {           /* one look: what it is doing now */
		char *q[] = { "state", (char *)name, NULL };

		buf_init(&b);
		if (ctl_call(sock, false, 2, q, &b, &(struct err){ 0 }) == 0) {
			field(b.data ? b.data : "", "state", st, sizeof(st));
			field(b.data ? b.data : "", "pid", pid, sizeof(pid));
		}
		buf_free(&b);
	} else {
		if (wait_state(sock, json, name, "stopping created starting pulling", START_POLL_MS,
			       POLL_MS, st, sizeof(st), pid, sizeof(pid)) < 0)
			goto out;
		if (strcmp(st, "running") && strcmp(st, "exited")) {
			fail(json, "container %s was created (%s) but cannot start: %s", name, file,
			     *st ? pid : "it was removed");
			goto out;
		}
		if (strcmp(st, "running"))
			pid[0] = '\0';
	}
	if (json) {
		buf_init(&b);
		buf_puts(&b, "{\"name\":");
		buf_json_string(&b, name);
		buf_puts(&b, ",\"file\":");
		buf_json_string_or_null(&b, file);
		buf_puts(&b, ",\"state\":");
		buf_json_string(&b, st);
		buf_printf(&b, ",\"pid\":%s}\n", atoi(pid) > 0 ? pid : "null");
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	} else {
		printf("%s\n", name);
	}
	ret = EXIT_OK;
out:
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
		buf_free(&lists[k]);
	buf_free(&cmd);
	return ret;
}

/* rm [-f] NAME: the daemon removes its file and reloads; with -f the CLI
 * waits until its process is gone. */
static int do_rm(const char *sock, bool json, int argc, char **argv)
{
	char *req[] = { "rm", NULL, "-f", NULL };
	char file[512] = "", was[32] = "", st[32], pid[ERR_MSG_MAX];
	const char *name = NULL;
	bool force = false;
	struct buf b;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force")) && !force)
			force = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage("rm [-f] NAME");
	}
	if (!name)
		return usage("rm [-f] NAME");
	req[1] = (char *)name;
	buf_init(&b);
	if (call(sock, json, &b, force ? 3 : 2, req) < 0) {
		buf_free(&b);
		return EXIT_FAIL;
	}
	field(b.data ? b.data : "", "file", file, sizeof(file));
	field(b.data ? b.data : "", "was", was, sizeof(was));
	buf_free(&b);
	if (!strcmp(was, "running") &&
	    wait_state(sock, json, name, "created starting running stopping backoff exited stopped "
		       "error pulling", STOP_POLL_FIRST_MS, POLL_MS, st, sizeof(st), pid,
		       sizeof(pid)) < 0)
		return EXIT_FAIL;
	if (json) {
		b = (struct buf){ 0 };
		buf_puts(&b, "{\"name\":");
		buf_json_string(&b, name);
		buf_puts(&b, ",\"file\":");
		buf_json_string(&b, file);
		buf_puts(&b, ",\"removed\":true}\n");
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	} else {
		printf("removed %s (%s)\n", name, file);
	}
	return EXIT_OK;
}

/* logs [-f] [--tail N] NAME, flags before or after NAME. */
static int do_logs(const char *sock, bool json, int argc, char **argv)
{
	char *req[8] = { "logs", NULL };
	char cursor[64] = "";
	const char *tail = NULL, *name = NULL;
	bool follow = false;
	int n = 2;
	struct buf b;

	for (int i = 1; i < argc; i++) {
		if (opt_value(argc, argv, &i, "-n", "--tail", &tail))
			continue;
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
			follow = true;
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return usage("logs [-f] [--tail N] NAME");
	}
	if (!name)
		return usage("logs [-f] [--tail N] NAME");
	req[1] = (char *)name;
	if (tail) {
		req[n++] = "--tail";
		req[n++] = (char *)tail;
	}
	if (follow)
		req[n++] = "--cursor";
	buf_init(&b);
	if (call(sock, json, &b, n, req) < 0) {
		buf_free(&b);
		return EXIT_FAIL;
	}
	for (;;) {
		const char *data = b.data ? b.data : "";
		size_t len = b.len;

		if (follow) {
			/* "cursor INODE:OFFSET\n" then the bytes */
			const char *nl = memchr(data, '\n', len);

			if (strncmp(data, "cursor ", 7) || !nl) {
				fail(json, "unexpected reply to logs");
				buf_free(&b);
				return EXIT_FAIL;
			}
			snprintf(cursor, sizeof(cursor), "%.*s", (int)strcspn(data + 7, " \n"), data + 7);
			len -= (size_t)(nl + 1 - data);
			data = nl + 1;
		}
		if (len && fwrite(data, 1, len, stdout) != len)
			break;
		fflush(stdout);
		if (!follow)
			break;
		sleep_ms(POLL_MS);
		buf_reset(&b);
		{
			char *from[] = { "logs", (char *)name, "--from", cursor, NULL };

			if (call(sock, json, &b, 4, from) < 0) {
				buf_free(&b);
				return EXIT_FAIL;
			}
		}
	}
	buf_free(&b);
	return EXIT_OK;
}

/* ---- exec --------------------------------------------------------------------- */

static int ns_open(pid_t pid, const char *ns)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, ns);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* An image's user (info's user=UID:GID, groups=G,...), as its process runs. */
static void exec_user(const char *name, const char *info)
{
	char user[64], groups[4096];
	gid_t g[32];
	size_t n = 0;
	unsigned long uid, gid;

	if (!field(info, "user", user, sizeof(user)) ||
	    sscanf(user, "%lu:%lu", &uid, &gid) != 2)
		return;
	if (field(info, "groups", groups, sizeof(groups)))
		for (char *p = groups; *p && n < ARRAY_SIZE(g); p += strcspn(p, ","), p += *p == ',')
			g[n++] = (gid_t)strtoul(p, NULL, 10);
	if (setgroups(n, g) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0) {
		fprintf(stderr, "berth exec: run as %s in %s: %s\n", user, name, strerror(errno));
		_exit(126);
	}
}


/* fd over the unix socket sock (SCM_RIGHTS). */
static int fd_send(int sock, int fd)
{
	char c = 'm';
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;

	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* The fd fd_send sent, or -1 (the sender went away first). */
static int fd_recv(int sock)
{
	char c;
	struct iovec iov = { &c, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	cm = n == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* In the command's process, inside the container's root: a pty of the
 * container's own devpts (/dev/ptmx there), so that the command's tty is a
 * /dev/pts/N it can see; its slave becomes the command's controlling
 * terminal and stdin/out/err, its master goes to the CLI. */
static void exec_pty(const char *name, const struct ctr_exec_opts *o)
{
	char path[64];
	int m, sl;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, path, sizeof(path))) {
		fprintf(stderr, "berth exec: a pseudo-terminal in %s: %s\n", name, strerror(errno));
		_exit(126);
	}
	setsid();
	sl = open(path, O_RDWR);
	if (sl < 0 || ioctl(sl, TIOCSCTTY, 0) < 0) {
		fprintf(stderr, "berth exec: open %s in %s: %s\n", path, name, strerror(errno));
		_exit(126);
	}
	if (o->have_ws)
		ioctl(sl, TIOCSWINSZ, &o->ws);
	if (fd_send(o->tty_sock, m) < 0)
		_exit(126);
	close(m);
	close(o->tty_sock);
	dup2(sl, 0);
	dup2(sl, 1);
	dup2(sl, 2);
	if (sl > 2)
		close(sl);
}

static void __attribute__((noreturn)) exec_child(const char *name, const char *info,
						 const int fds[4], int rootfd, char **cmd,
						 const struct ctr_exec_opts *o)
{
	static const int types[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWNS };
	static const char *const names[] = { "ipc", "uts", "net", "mnt" };
	char cg[512], cwd[512], path[600];
	ARRAY(char *) env = { 0 };
	struct err e = { 0 };
	sigset_t none;
	const char *p;
	char **slot;
	int fd;

	/* a health probe's: it goes when the process the daemon kills at the
	 * probe's timeout goes */
	if (o->die_with_parent)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* the container's cgroup (limits) while the host's /sys is still visible */
	if (field(info, "cgroup", cg, sizeof(cg))) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			fprintf(stderr, "berth exec: join the cgroup of %s: %s\n", name, strerror(errno));
			_exit(126);
		}
		close(fd);
	}
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (setns(fds[i], types[i]) < 0) {
			fprintf(stderr, "berth exec: join the %s namespace of %s: %s\n", names[i], name,
				strerror(errno));
			_exit(126);
		}
	/* the mount namespace's root is the host's; the container's is its
	 * init's root (after pivot_root), reached through the fd opened before */
	if (fchdir(rootfd) < 0 || chroot(".") < 0) {
		fprintf(stderr, "berth exec: enter the root of %s: %s\n", name, strerror(errno));
		_exit(126);
	}
	if (chdir(field(info, "cwd", cwd, sizeof(cwd)) ? cwd : "/") < 0 && chdir("/") < 0)
		_exit(126);
	if (o->tty) {
		exec_pty(name, o);
	} else if (!o->interactive && (fd = open("/dev/null", O_RDONLY)) >= 0) {
		dup2(fd, 0);    /* without -i nothing reads the caller's stdin */
		if (fd)
			close(fd);
	}
	if (ctr_caps_apply(&e) < 0) {
		fprintf(stderr, "berth exec: %s\n", e.msg);
		_exit(126);
	}
	exec_user(name, info);
	for (p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		size_t len = strcspn(p, "\n");

		if (strncmp(p, "env=", 4))
			continue;
		if (!(slot = array_push(&env)) || !(*slot = strndup(p + 4, len - 4)))
			_exit(126);
	}
	if (isatty(STDIN_FILENO)) {
		static char term[128];

		snprintf(term, sizeof(term), "TERM=%s", getenv("TERM") ? getenv("TERM") : "xterm");
		if (!(slot = array_push(&env)))
			_exit(126);
		*slot = term;
	}
	if (!array_push(&env))      /* the NULL at the end */
		_exit(126);
	environ = env.v;
	execvp(cmd[0], cmd);
	fprintf(stderr, "berth exec: %s: %s\n", cmd[0], errno == ENOENT ? "command not found" :
		strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* Close every fd from 3 up but those in keep[0..n) (-1 entries ignored). */
static void close_others(int *keep, int n)
{
	unsigned lo = 3;

	for (int i = 1; i < n; i++)         /* sort: n is tiny */
		for (int k = i; k > 0 && keep[k] < keep[k - 1]; k--) {
			int t = keep[k];

			keep[k] = keep[k - 1];
			keep[k - 1] = t;
		}
	for (int i = 0; i <= n; i++) {
		unsigned hi = i < n ? (unsigned)keep[i] : ~0U;

		if (i < n && (keep[i] < 0 || (unsigned)keep[i] < lo))
			continue;
		if (hi > lo && syscall(SYS_close_range, lo, hi - 1, 0) < 0) {
			/* before Linux 5.9: one by one, up to the limit */
			long max = sysconf(_SC_OPEN_MAX);

			for (unsigned fd = lo; fd < hi && (long)fd < (max > 0 ? max : 1024); fd++)
				close((int)fd);
		}
		if (i < n)
			lo = (unsigned)keep[i] + 1;
	}
}

int ctr_join_open(struct ctr_join *j, const char *name, const char *info, struct err *e)
{
	static const char *const ns[] = { "ns/ipc", "ns/uts", "ns/net", "ns/mnt" };
	char v[64];
	pid_t pid;

	j->pidns = j->root = -1;
	for (size_t i = 0; i < ARRAY_SIZE(j->ns); i++)
		j->ns[i] = -1;
	pid = (pid_t)atoi(field(info ? info : "", "pid", v, sizeof(v)) ? v : "0");
	if (!field(info ? info : "", "start", v, sizeof(v)))
		v[0] = '\0';
	/* the pid is the init the daemon knows only if it started at the same
	 * tick; the namespace fds are taken after the check, so they are its */
	j->pidns = pid > 0 ? ns_open(pid, "ns/pid") : -1;
	if (pid <= 0 || j->pidns < 0 || ctr_proc_start(pid) != strtoull(v, NULL, 10)) {
		ctr_join_close(j);
		return err_set(e, ESRCH, "%s is not running any more", name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
		if ((j->ns[i] = ns_open(pid, ns[i])) < 0) {
			int er = errno;

			ctr_join_close(j);
			return err_set(e, er, "open /proc/%d/%s", (int)pid, ns[i]);
		}
	if ((j->root = ns_open(pid, "root")) < 0) {
		int er = errno;

		ctr_join_close(j);
		return err_set(e, er, "open /proc/%d/root", (int)pid);
	}
	return 0;
}

void ctr_join_close(struct ctr_join *j)
{
	for (size_t i = 0; i < ARRAY_SIZE(j->ns); i++)
		if (j->ns[i] >= 0) {
			close(j->ns[i]);
			j->ns[i] = -1;
		}
	if (j->root >= 0)
		close(j->root);
	if (j->pidns >= 0)
		close(j->pidns);
	j->root = j->pidns = -1;
}

pid_t ctr_join_spawn(const char *name, const char *info, const struct ctr_join *j, char **cmd,
		     const struct ctr_exec_opts *o)
{
	pid_t child;
	int st;

	pid_t parent = getpid(), c;
	int keep[8], n = 0;

	fflush(NULL);
	/* setns(pid) only moves the caller's future children, and whatever
	 * joined stays there (a sanitizer's helper thread at exit, too): an
	 * intermediate child joins, forks the command, passes its end on */
	child = fork();
	if (child != 0)
		return child;
	if (o->die_with_parent) {
		/* the daemon's probe: it goes with the daemon (and the command
		 * with it), it does not outlive it waiting for a command */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
	}
	if (o->out_fd >= 0 && (dup2(o->out_fd, STDOUT_FILENO) < 0 ||
			       dup2(o->out_fd, STDERR_FILENO) < 0))
		_exit(126);
	/* nothing of the caller's but what joining takes: a daemon's fds
	 * (its state directory's lock, its sockets) must not live on in a
	 * process it does not wait for, nor reach the container */
	keep[n++] = j->pidns;
	keep[n++] = j->root;
	for (size_t i = 0; i < ARRAY_SIZE(j->ns); i++)
		keep[n++] = j->ns[i];
	keep[n++] = o->tty_sock;
	close_others(keep, n);
	if (setns(j->pidns, CLONE_NEWPID) < 0) {
		fprintf(stderr, "berth exec: join the pid namespace of %s: %s\n", name,
			strerror(errno));
		_exit(126);
	}
	c = fork();
	if (c < 0)
		_exit(126);
	if (c == 0)
		exec_child(name, info, j->ns, j->root, cmd, o);
	if (o->tty_sock >= 0)
		close(o->tty_sock);     /* the CLI sees the end if the command never sends */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			_exit(126);
	if (WIFSIGNALED(st))
		_exit(128 + WTERMSIG(st));
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 126);
}

/* -t: relay between the caller's terminal (raw, with -i, when it is one)
 * and the master until the command has ended and its output is read; window size
 * changes follow (SIGWINCH). Returns once child (the CLI's own child, whose
 * status is the command's) has exited; *st gets its status. */
static void exec_relay(int master, pid_t child, bool interactive, int *st)
{
	struct termios saved, raw;
	bool is_tty = interactive && isatty(STDIN_FILENO), in_open = interactive, out_open = true,
	     done = false;
	char buf[8192];
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGCHLD);
	/* without -i the terminal stays cooked: its Ctrl-C and Ctrl-\ come
	 * to us as signals, and go on as the characters the pty turns into
	 * the same signals for the command */
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (is_tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		is_tty = false;
	}
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	while (!done) {
		struct pollfd pf[3] = { { in_open ? STDIN_FILENO : -1, POLLIN, 0 },
					{ out_open ? master : -1, POLLIN, 0 },
					{ sfd, POLLIN, 0 } };

		/* a missed SIGCHLD (before the mask) costs at most 200 ms */
		if (poll(pf, 3, 200) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

			if (n > 0) {
				(void)write_all(master, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				in_open = false;
				if (!is_tty)
					(void)write_all(master, "\x04", 1);   /* EOF for the reader */
			}
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof(buf));

			if (n > 0)
				(void)write_all(STDOUT_FILENO, buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				out_open = false;       /* EIO: no slave open any more */
		}
		if (pf[2].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				if (si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT) {
					(void)write_all(master, si.ssi_signo == SIGINT ? "\x03" : "\x1c", 1);
				} else if (si.ssi_signo == SIGWINCH) {
					struct winsize ws;

					if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 ||
					    ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
						ioctl(master, TIOCSWINSZ, &ws);
				}
		}
		if (waitpid(child, st, WNOHANG) == child) {
			ssize_t n;

			/* what it wrote last, still in the pty */
			while ((n = read(master, buf, sizeof(buf))) > 0)
				(void)write_all(STDOUT_FILENO, buf, (size_t)n);
			done = true;
		}
	}
	if (!done)
		while (waitpid(child, st, 0) < 0 && errno == EINTR)
			;
	if (is_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (sfd >= 0)
		close(sfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

#define EXEC_USAGE "exec [-i] [-t] NAME [--] CMD [ARG...]"

/* -i, -t, -it, -ti, --interactive, --tty into o; false when arg is none. */
static bool exec_flag(const char *arg, struct ctr_exec_opts *o)
{
	if (!strcmp(arg, "--interactive")) {
		o->interactive = true;
		return true;
	}
	if (!strcmp(arg, "--tty")) {
		o->tty = true;
		return true;
	}
	if (arg[0] != '-' || !arg[1] || arg[1] == '-' || strspn(arg + 1, "it") != strlen(arg + 1))
		return false;
	o->interactive |= strchr(arg, 'i') != NULL;
	o->tty |= strchr(arg, 't') != NULL;
	return true;
}

static int do_exec(const char *sock, bool json, int argc, char **argv)
{
	struct ctr_exec_opts o = { .tty_sock = -1, .out_fd = -1 };
	char *req[] = { "exec-info", NULL, NULL };
	int sp[2] = { -1, -1 }, at = 1, st, ret = EXIT_FAIL;
	struct ctr_join j = { .pidns = -1, .ns = { -1, -1, -1, -1 }, .root = -1 };
	struct err e = { 0 };
	const char *name;
	struct buf info;
	pid_t child;

	/* options before NAME, and right after it (docker takes only the first) */
	while (at < argc && exec_flag(argv[at], &o))
		at++;
	if (at >= argc || argv[at][0] == '-')
		return usage(EXEC_USAGE);
	name = argv[at++];
	while (at < argc && exec_flag(argv[at], &o))
		at++;
	if (at < argc && !strcmp(argv[at], "--"))
		at++;
	if (at >= argc)
		return usage(EXEC_USAGE);
	if (geteuid() != 0) {
		fail(json, "exec needs root (it joins the container's namespaces)");
		return EXIT_FAIL;
	}
	req[1] = (char *)name;
	buf_init(&info);
	if (call(sock, json, &info, 2, req) < 0) {
		buf_free(&info);
		return EXIT_FAIL;
	}
	if (ctr_join_open(&j, name, info.data, &e) < 0) {
		fail(json, "%s", e.msg);
		goto out;
	}
	if (o.tty) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
			fail(json, "socketpair: %s", strerror(errno));
			goto out;
		}
		o.tty_sock = sp[1];
		o.have_ws = ioctl(STDIN_FILENO, TIOCGWINSZ, &o.ws) == 0 ||
			    ioctl(STDOUT_FILENO, TIOCGWINSZ, &o.ws) == 0;
	}
	child = ctr_join_spawn(name, info.data, &j, argv + at, &o);
	if (child < 0) {
		fail(json, "fork: %s", strerror(errno));
		goto out;
	}
	/* the terminal's Ctrl-C reaches the command (same process group; with
	 * -t, as a byte through the pty); we only pass its end on */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	if (o.tty) {
		int master;

		close(sp[1]);
		sp[1] = -1;
		master = fd_recv(sp[0]);
		if (master >= 0) {
			exec_relay(master, child, o.interactive, &st);
			close(master);
			goto status;
		}
	}
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			goto out;
status:
	ret = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EXIT_FAIL;
out:
	for (size_t i = 0; i < 2; i++)
		if (sp[i] >= 0)
			close(sp[i]);
	ctr_join_close(&j);
	buf_free(&info);
	return ret;
}

int cmd_ctr(const char *sock, bool json, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (!strcmp(cmd, "start") || !strcmp(cmd, "restart")) {
		if (argc != 2 || argv[1][0] == '-') {
			fprintf(stderr, "usage: berth %s NAME\n", cmd);
			return EXIT_USAGE;
		}
		return do_start(sock, json, cmd, argv[1]);
	}
	if (!strcmp(cmd, "stop"))
		return do_stop(sock, json, argc, argv);
	if (!strcmp(cmd, "kill"))
		return do_kill(sock, json, argc, argv);
	if (!strcmp(cmd, "run"))
		return do_run(sock, json, argc, argv);
	if (!strcmp(cmd, "rm"))
		return do_rm(sock, json, argc, argv);
	if (!strcmp(cmd, "logs"))
		return do_logs(sock, json, argc, argv);
	if (!strcmp(cmd, "exec"))
		return do_exec(sock, json, argc, argv);
	fprintf(stderr, "berth: unknown command '%s'\n", cmd);
	return EXIT_USAGE;
}
