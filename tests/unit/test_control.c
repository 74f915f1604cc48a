/* test_control.c - control protocol: request encoding round trip, malformed
 * requests, table output as aligned text and JSON, the command table and its
 * read-only rule, and the Unix-socket server: deferred replies (answered
 * later from a timer while other clients are served; a client that goes
 * away first), and the longest-idle client making room at the limit. */
#include "runtime/ctl/conn.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_roundtrip(void)
{
	char *in[] = { "dns", "query", "web.berth.internal", "a b%c\nd", "" };
	char buf[CTL_REQ_MAX + 1], *argv[CTL_MAX_ARGS + 1];
	struct ctl_request rq;
	struct err e;
	int n;

	n = ctl_encode_request(buf, sizeof(buf), true, 5, in);
	T_OK(n > 0 && buf[n - 1] == '\n', "a request is one line ending in newline");
	T_STREQ(buf, "-o json dns query web.berth.internal a%20b%25c%0Ad %\n",
		"unsafe bytes travel percent-escaped; an empty word is a lone percent sign");
	buf[n - 1] = '\0';
	T_EQ(ctl_parse_request(buf, &rq, argv, &e), 0, "the encoded request parses");
	T_OK(rq.json, "-o json is seen");
	T_EQ(rq.argc, 5, "five words come back");
	T_STREQ(rq.argv[0], "dns", "the command is the first word");
	T_STREQ(rq.argv[3], "a b%c\nd", "spaces, percent and newline survive");
	T_STREQ(rq.argv[4], "", "an empty word survives");
}

static void test_malformed(void)
{
	char *argv[CTL_MAX_ARGS + 1], line[CTL_REQ_MAX];
	struct ctl_request rq;
	struct err e;

	strcpy(line, "ps %zz");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "a bad escape is rejected");
	T_STREQ(e.msg, "malformed %-escape in the request", "with a reason");
	strcpy(line, "ps %00");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "an escaped NUL is rejected");
	strcpy(line, "ps %4");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "a truncated escape is rejected");
	strcpy(line, "   ");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "an empty request is rejected");
	T_STREQ(e.msg, "empty request", "with a reason");
	strcpy(line, "-o json");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "options without a command are rejected");
	line[0] = '\0';
	for (int i = 0; i < CTL_MAX_ARGS + 1; i++)
		strcat(line, "w ");
	T_EQ(ctl_parse_request(line, &rq, argv, &e), -EINVAL, "more than 64 words are rejected");

	char big[CTL_REQ_MAX * 2], *words[] = { big };
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_EQ(ctl_encode_request(line, sizeof(line), false, 1, words), -ENOSPC,
	     "a request longer than 4096 bytes is refused by the encoder");
}

static void test_table(void)
{
	static const char *const cols[] = { "NAME", "STATE", "RESTARTS#", "HOST PORT" };
	struct table t;
	struct buf out;

	buf_init(&out);
	table_init(&t, 4, cols);
	table_add(&t, "web", "running", "0", "8080");
	table_add(&t, "client-long", "exited", "12", NULL);
	table_render(&t, false, &out);
	T_STREQ(out.data,
		"NAME         STATE    RESTARTS  HOST PORT\n"
		"web          running  0         8080\n"
		"client-long  exited   12        -\n",
		"text tables are aligned, '#' hidden, NULL printed as -");
	buf_reset(&out);
	table_render(&t, true, &out);
	T_STREQ(out.data,
		"[{\"name\":\"web\",\"state\":\"running\",\"restarts\":0,\"host_port\":\"8080\"},"
		"{\"name\":\"client-long\",\"state\":\"exited\",\"restarts\":12,\"host_port\":null}]\n",
		"JSON: lower-case keys, numbers bare, spaces as _, absent null");
	table_free(&t);

	/* typed columns: lists, JSON names of their own, the text of absence */
	static const char *const typed[] = { "HOST IP?*", "PORT#=container_port", "PID#",
					     "NETWORKS[]", "OWNER=container" };
	buf_reset(&out);
	table_init(&t, 5, typed);
	table_add(&t, NULL, "80", NULL, "default,backend", "web");
	table_add(&t, "10.0.0.1", "53", "", "", NULL);
	table_render(&t, false, &out);
	T_STREQ(out.data,
		"HOST IP   PORT  PID  NETWORKS         OWNER\n"
		"*         80    -    default,backend  web\n"
		"10.0.0.1  53    -    -                -\n",
		"text: the marks are not shown, absent cells as their column says");
	buf_reset(&out);
	table_render(&t, true, &out);
	T_STREQ(out.data,
		"[{\"host_ip\":null,\"container_port\":80,\"pid\":null,"
		"\"networks\":[\"default\",\"backend\"],\"container\":\"web\"},"
		"{\"host_ip\":\"10.0.0.1\",\"container_port\":53,\"pid\":null,"
		"\"networks\":[],\"container\":null}]\n",
		"JSON: lists are arrays (empty: []), =key names the field, \"\" is absent");
	table_free(&t);
	buf_reset(&out);
	table_init(&t, 2, cols);
	table_render(&t, true, &out);
	T_STREQ(out.data, "[]\n", "JSON: no rows is an empty array");
	table_free(&t);

	char d[32];
	T_STREQ(cli_duration(d, sizeof(d), 0), "0s", "a duration: seconds alone");
	T_STREQ(cli_duration(d, sizeof(d), 725), "12m 5s", "minutes and seconds");
	T_STREQ(cli_duration(d, sizeof(d), 3 * 3600 + 5), "3h 0m 5s", "hours keep the minutes between");
	T_STREQ(cli_duration(d, sizeof(d), 2 * 86400 + 3 * 3600 + 12 * 60 + 5), "2d 3h 12m 5s",
		"days first");

	/* the one error printer: for people on stderr; -o json on stdout */
	buf_reset(&out);
	buf_puts(&out, "a.ini:1: bad\nb.ini:2: worse\n");
	fflush(stdout);
	{
		FILE *f = tmpfile();
		char got[512] = "";
		int fd = f ? fileno(f) : -1, saved = dup(STDOUT_FILENO);
		ssize_t n;

		T_OK(fd >= 0 && saved >= 0, "a file for stdout");
		dup2(fd, STDOUT_FILENO);
		cli_print_error(true, "reload \"rejected\"", &out);
		cli_print_error(true, "no details", NULL);
		fflush(stdout);
		dup2(saved, STDOUT_FILENO);
		close(saved);
		n = pread(fd, got, sizeof(got) - 1, 0);
		got[n > 0 ? n : 0] = '\0';
		fclose(f);
		T_STREQ(got,
			"{\"error\":\"reload \\\"rejected\\\"\",\"details\":[\"a.ini:1: bad\",\"b.ini:2: worse\"]}\n"
			"{\"error\":\"no details\",\"details\":[]}\n",
			"cli_print_error -o json: one object per error, details one string per line");
	}
	buf_reset(&out);
	buf_json_string(&out, "a\"b\\c\n\x01");
	T_STREQ(out.data, "\"a\\\"b\\\\c\\n\\u0001\"", "JSON strings are escaped");
	buf_free(&out);
}

/* ---- the command table --------------------------------------------------- */

struct daemon {                     /* this test's stand-in for the daemon */
	int looks, changes;
};

static int cmd_look(struct daemon *d, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	(void)rq, (void)e;
	d->looks++;
	buf_puts(out, "looked\n");
	return 0;
}

static int cmd_change(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	(void)rq, (void)out, (void)e;
	d->changes++;
	return 0;
}

static const struct ctl_command test_commands[] = {
	{ "look", cmd_look, false },
	{ "change", cmd_change, true },
	{ "thing ls", cmd_look, false },        /* a read under a command that writes */
	{ "thing", cmd_change, true },
};

static int table_handler(void *ctx, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	return ctl_dispatch(test_commands, ARRAY_SIZE(test_commands), ctx, rq, out, e);
}

static void test_dispatch(void)
{
	struct daemon d = { 0 };
	struct ctl_request full = { .uid = 0 }, ro = { .uid = (uid_t)-1, .read_only = true };
	char line[64];
	struct buf out;

	buf_init(&out);
	strcpy(line, "look");
	ctl_handle_line(table_handler, &d, &full, line, strlen(line), &out);
	T_STREQ(out.data, "ok\nlooked\n", "a command runs from its row of the table");
	buf_reset(&out);
	strcpy(line, "frobnicate now");
	ctl_handle_line(table_handler, &d, &full, line, strlen(line), &out);
	T_STREQ(out.data, "error unknown command 'frobnicate'\n", "an unknown command is named");
	buf_reset(&out);
	strcpy(line, "change");
	ctl_handle_line(table_handler, &d, &ro, line, strlen(line), &out);
	T_STREQ(out.data, "error permission denied: read-only client\n",
		"a read-only client may not run a row that mutates");
	T_EQ(d.changes, 0, "and it did not run");
	buf_reset(&out);
	strcpy(line, "frobnicate");
	ctl_handle_line(table_handler, &d, &ro, line, strlen(line), &out);
	T_STREQ(out.data, "error permission denied: read-only client\n",
		"nor a command the table does not know (fail closed)");
	buf_reset(&out);
	strcpy(line, "look");
	ctl_handle_line(table_handler, &d, &ro, line, strlen(line), &out);
	T_STREQ(out.data, "ok\nlooked\n", "but it may run one that only reads");
	buf_reset(&out);
	strcpy(line, "change");
	ctl_handle_line(table_handler, &d, &full, line, strlen(line), &out);
	T_EQ(d.changes, 1, "a full client may change things");
	buf_reset(&out);
	strcpy(line, "thing ls");
	ctl_handle_line(table_handler, &d, &ro, line, strlen(line), &out);
	T_STREQ(out.data, "ok\nlooked\n", "a read-only client may run a subcommand's row that reads");
	buf_reset(&out);
	strcpy(line, "thing rm x");
	ctl_handle_line(table_handler, &d, &ro, line, strlen(line), &out);
	T_STREQ(out.data, "error permission denied: read-only client\n",
		"but not the other subcommands (the command's own row)");
	buf_reset(&out);
	strcpy(line, "thing");
	ctl_handle_line(table_handler, &d, &ro, line, strlen(line), &out);
	T_STREQ(out.data, "error permission denied: read-only client\n",
		"nor the command without a subcommand");
	buf_reset(&out);
	strcpy(line, "things ls");
	ctl_handle_line(table_handler, &d, &full, line, strlen(line), &out);
	T_STREQ(out.data, "error unknown command 'things'\n", "a row's first word matches whole");
	T_EQ(d.changes, 1, "nothing changed meanwhile");
	buf_reset(&out);
	strcpy(line, "thing rm x");
	ctl_handle_line(table_handler, &d, &full, line, strlen(line), &out);
	T_EQ(d.changes, 2, "a full client runs the command's row");
	buf_free(&out);
}

/* ---- the server: deferred replies -------------------------------------------- */

struct fixture {
	struct loop loop;
	struct loop_timer later;    /* finishes the deferred reply */
	struct ctl_reply *r;
	int status;                 /* what the timer answers with */
	bool deferred, cancelled, finished;
};

static void fx_finish(struct loop_timer *t)
{
	struct fixture *fx = container_of(t, struct fixture, later);
	struct err e = { 0 };
	struct buf body;

	buf_init(&body);
	if (fx->status < 0) {
		err_set(&e, EINVAL, "it failed\nlater");
		buf_puts(&body, "detail\n");
	} else {
		buf_puts(&body, "done\n");
	}
	fx->finished = true;
	ctl_reply_finish(fx->r, fx->status, &body, &e);
	fx->r = NULL;
	buf_free(&body);
}

static void fx_cancel(struct ctl_reply *r, void *arg)
{
	struct fixture *fx = arg;

	fx->cancelled = r == fx->r;
}

static int fx_handler(void *ctx, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	struct fixture *fx = ctx;
	const char *cmd = rq->argv[0];

	if (!strcmp(cmd, "now")) {
		buf_puts(out, "now\n");
		return 0;
	}
	if (!strcmp(cmd, "early")) {    /* takes the reply and answers at once */
		struct ctl_reply *r = ctl_defer(rq, NULL, NULL);
		struct buf b;

		buf_init(&b);
		buf_puts(&b, "early\n");
		ctl_reply_finish(r, 0, &b, NULL);
		buf_free(&b);
		buf_puts(out, "ignored\n");
		return 0;
	}
	if (!strcmp(cmd, "lazy"))       /* pending without taking the reply: a bug */
		return CTL_PENDING;
	if (!strcmp(cmd, "wait") || !strcmp(cmd, "wait-fail")) {
		fx->r = ctl_defer(rq, fx_cancel, fx);
		if (!fx->r || ctl_defer(rq, NULL, NULL))
			return err_set(e, EBUSY, "ctl_defer: once per request");
		fx->status = !strcmp(cmd, "wait") ? 0 : -EINVAL;
		fx->deferred = true;
		fx->finished = fx->cancelled = false;
		loop_timer_set(&fx->loop, &fx->later, 300);
		return CTL_PENDING;
	}
	return err_set(e, EINVAL, "unknown command '%s'", cmd);
}

/* A CLI in a child process (ctl_call blocks), its result read from a pipe
 * while the parent runs the loop. */
struct call {
	pid_t pid;
	int fd;
	char res[512];              /* "RC|MESSAGE|BODY" */
};

static void call_start(struct call *c, const char *path, const char *cmd)
{
	int p[2];

	memset(c, 0, sizeof(*c));
	if (pipe2(p, O_CLOEXEC) < 0)
		abort();
	c->pid = fork();
	if (c->pid == 0) {
		char *argv[] = { (char *)cmd, NULL };
		struct err e = { 0 };
		struct buf body;
		int rc;

		buf_init(&body);
		rc = ctl_call(path, false, 1, argv, &body, &e);
		dprintf(p[1], "%d|%s|%s", rc, rc ? e.msg : "", body.data ? body.data : "");
		_exit(0);
	}
	close(p[1]);
	c->fd = p[0];
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

/* Run the loop until the child has answered (5 s at most). */
static const char *call_wait(struct loop *l, struct call *c)
{
	uint64_t end = loop_now_ms() + 5000;
	size_t n = 0;

	while (loop_now_ms() < end) {
		ssize_t k = read(c->fd, c->res + n, sizeof(c->res) - 1 - n);

		if (k > 0) {
			n += (size_t)k;
		} else if (k == 0) {
			break;
		} else {
			loop_run_once(l, 10);
		}
	}
	if (loop_now_ms() >= end)
		kill(c->pid, SIGKILL);
	close(c->fd);
	waitpid(c->pid, NULL, 0);
	c->res[n] = '\0';
	return c->res;
}

static bool run_until(struct loop *l, const bool *flag)
{
	for (int i = 0; i < 500 && !*flag; i++)
		loop_run_once(l, 10);
	return *flag;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	return fd;
}

/* Read what the server sent until it closes, running the loop meanwhile. */
static const char *read_all(struct loop *l, int fd, char *buf, size_t size)
{
	size_t n = 0;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 500; i++) {
		ssize_t k = recv(fd, buf + n, size - 1 - n, 0);

		if (k > 0)
			n += (size_t)k;
		else if (k == 0 || errno != EAGAIN)
			break;
		else
			loop_run_once(l, 10);
	}
	buf[n] = '\0';
	return buf;
}

static void test_deferred(void)
{
	struct fixture fx = { .later.cb = fx_finish };
	struct ctl_server s = { 0 };
	struct call a, b;
	char path[256], got[256];
	struct err e = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/ctl.sock", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	T_EQ(loop_init(&fx.loop, &e), 0, "a loop");
	T_EQ(ctl_server_open(&s, &fx.loop, path, fx_handler, &fx, NULL, &e), 0,
	     "the control socket opens");

	call_start(&a, path, "wait");
	T_OK(run_until(&fx.loop, &fx.deferred), "a handler takes the reply and returns CTL_PENDING");
	call_start(&b, path, "now");
	T_STREQ(call_wait(&fx.loop, &b), "0||now\n", "another client is answered meanwhile");
	T_OK(!fx.finished, "while the first one still waits");
	T_STREQ(call_wait(&fx.loop, &a), "0||done\n",
		"the deferred reply arrives when the timer finishes it, as a synchronous one would");

	fx.deferred = false;
	call_start(&a, path, "wait-fail");
	T_STREQ(call_wait(&fx.loop, &a), "1|it failed later|detail\n",
		"a deferred error carries its message (on one line) and its details");
	call_start(&a, path, "early");
	T_STREQ(call_wait(&fx.loop, &a), "0||early\n",
		"a reply finished inside the handler is sent once, the handler's body ignored");
	call_start(&a, path, "lazy");
	T_STREQ(call_wait(&fx.loop, &a),
		"1|internal error: the reply was deferred without ctl_defer|",
		"CTL_PENDING without ctl_defer is an error, not a hang");

	/* the client goes away while its reply is owed */
	fx.deferred = false;
	fd = unix_connect(path);
	T_OK(send(fd, "wait\n", 5, 0) == 5, "a raw client asks to wait");
	T_OK(run_until(&fx.loop, &fx.deferred), "the reply is deferred");
	close(fd);
	T_OK(run_until(&fx.loop, &fx.cancelled), "the owner is told when the client goes away");
	T_OK(fx.r && ctl_reply_gone(fx.r), "ctl_reply_gone says so too");
	T_EQ(s.srv->nconns, 0, "the connection is closed");
	T_OK(run_until(&fx.loop, &fx.finished), "finishing it afterwards only frees it");

	/* a client that shuts its sending side still gets its reply */
	fx.deferred = false;
	fd = unix_connect(path);
	T_OK(send(fd, "wait\n", 5, 0) == 5 && shutdown(fd, SHUT_WR) == 0,
	     "a client sends its request and shuts its side");
	T_OK(run_until(&fx.loop, &fx.deferred), "the reply is deferred");
	T_STREQ(read_all(&fx.loop, fd, got, sizeof(got)), "ok\ndone\n", "and it still arrives");
	T_OK(!fx.cancelled, "nothing was cancelled");
	close(fd);

	/* a deferred reply owed at shutdown: cancelled, never written */
	fx.deferred = false;
	fd = unix_connect(path);
	T_OK(send(fd, "wait\n", 5, 0) == 5 && run_until(&fx.loop, &fx.deferred), "one more waits");
	ctl_server_close(&s);
	T_OK(fx.cancelled && ctl_reply_gone(fx.r), "closing the server cancels it");
	loop_timer_cancel(&fx.loop, &fx.later);
	ctl_reply_finish(fx.r, 0, NULL, NULL);
	T_STREQ(read_all(&fx.loop, fd, got, sizeof(got)), "", "the client sees the end, no reply");
	close(fd);
	T_OK(access(path, F_OK) < 0, "the socket file is gone");
	loop_free(&fx.loop);
}

/* At the limit the connection idle longest goes, not the oldest one: a
 * client that is still sending keeps its place. */
static void test_evict_longest_idle(void)
{
	struct fixture fx = { .later.cb = fx_finish };
	struct ctl_server s = { 0 };
	int busy, idle[CTL_MAX_CONNS - 1], fresh;
	char path[256], got[256];
	struct err e = { 0 };

	snprintf(path, sizeof(path), "%s/ctl2.sock", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	loop_init(&fx.loop, &e);
	T_EQ(ctl_server_open(&s, &fx.loop, path, fx_handler, &fx, NULL, &e), 0, "a second socket");
	busy = unix_connect(path);
	(void)!send(busy, "n", 1, 0);
	loop_run_once(&fx.loop, 10);
	for (size_t i = 0; i < ARRAY_SIZE(idle); i++) {
		idle[i] = unix_connect(path);
		loop_run_once(&fx.loop, 0);
	}
	for (int i = 0; i < 5; i++)
		loop_run_once(&fx.loop, 10);
	T_EQ(s.srv->nconns, CTL_MAX_CONNS, "the limit is reached by 64 clients");
	usleep(20 * 1000);
	(void)!send(busy, "o", 1, 0);       /* the first one is active again */
	loop_run_once(&fx.loop, 10);
	fresh = unix_connect(path);
	(void)!send(fresh, "now\n", 4, 0);
	T_STREQ(read_all(&fx.loop, fresh, got, sizeof(got)), "ok\nnow\n",
		"a new client at the limit is answered");
	T_STREQ(read_all(&fx.loop, idle[0], got, sizeof(got)), "",
		"the client idle longest was closed to make room");
	(void)!send(busy, "w\n", 2, 0);
	T_STREQ(read_all(&fx.loop, busy, got, sizeof(got)), "ok\nnow\n",
		"the oldest client, still sending, kept its place and is answered");
	close(busy);
	close(fresh);
	for (size_t i = 0; i < ARRAY_SIZE(idle); i++)
		close(idle[i]);
	ctl_server_close(&s);
	loop_free(&fx.loop);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_roundtrip();
	test_malformed();
	test_table();
	test_dispatch();
	test_deferred();
	test_evict_longest_idle();
	return t_done();
}
