/* cmd_ctr.c - the CLI's container commands: start, stop, restart, logs [-f]
 * (polling, so it works unchanged over the remote transport) and exec (which
 * joins the container's namespaces itself: the caller's terminal, signals
 * and exit status pass through without the daemon in the middle). */
#include "runtime/ctr/ctr.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 200
#define START_POLL_MS 10       /* a start takes milliseconds */
/* A stop takes milliseconds too (with an init that forwards SIGTERM), or
 * up to stop_timeout: the first looks come every 10 ms, then ever more
 * slowly up to POLL_MS, so that neither shows (nor, over remote TLS, costs
 * a handshake every 10 ms for seconds). */
#define STOP_POLL_FIRST_MS 10

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One request; prints the error (and details) on failure. */
static int call(const char *sock, bool json, struct buf *body, int argc, char **argv)
{
	struct err e = { 0 };
	int ret = ctl_call(sock, json, argc, argv, body, &e);

	if (ret != 0) {
		fprintf(stderr, "berth: %s\n", e.msg);
		if (ret > 0 && body->len)
			fwrite(body->data, 1, body->len, stderr);
		return -1;
	}
	return 0;
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
 * st and pid. A name the daemon no longer knows counts as gone ("").
 * The polls come every poll_ms, growing by half each time up to max_ms.
 * Returns 0, or -1 when the daemon cannot be asked (the error is printed). */
static int wait_state(const char *sock, const char *name, const char *passing, unsigned poll_ms,
		      unsigned max_ms, char *st, size_t size, char *pid, size_t pid_size)
{
	char *argv[] = { "state", (char *)name, NULL };
	char list[64];

	for (unsigned waited = 0; waited < (3600 + 30) * 1000u; waited += poll_ms,
	     poll_ms = poll_ms + poll_ms / 2 < max_ms ? poll_ms + poll_ms / 2 : max_ms) {
		struct buf b;
		struct err e = { 0 };
		int ret;

		buf_init(&b);
		ret = ctl_call(sock, false, 2, argv, &b, &e);
		if (ret < 0) {
			fprintf(stderr, "berth: %s\n", e.msg);
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
	fprintf(stderr, "berth: %s is still %s\n", name, st);
	return -1;
}

static int do_stop(const char *sock, bool json, const char *name)
{
	char *argv[] = { "stop", (char *)name, NULL };
	char st[32], pid[ERR_MSG_MAX];
	struct buf b;
	int ret;

	buf_init(&b);
	ret = call(sock, json, &b, 2, argv);
	if (!ret && b.len)
		fwrite(b.data, 1, b.len, stdout);
	fflush(stdout);
	buf_free(&b);
	if (ret < 0 || wait_state(sock, name, "running stopping starting", STOP_POLL_FIRST_MS,
				  POLL_MS, st, sizeof(st), pid, sizeof(pid)) < 0)
		return EXIT_FAIL;
	printf("stopped %s\n", name);
	return EXIT_OK;
}

/* start and restart: the daemon begins; the CLI waits for the outcome. */
static int do_start(const char *sock, bool json, const char *cmd, const char *name)
{
	char *argv[] = { (char *)cmd, (char *)name, NULL };
	char st[32], pid[ERR_MSG_MAX];
	struct buf b;
	int ret;

	buf_init(&b);
	ret = call(sock, json, &b, 2, argv);
	if (!ret && strstr(b.data ? b.data : "", "already running"))
		fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
	if (ret < 0)
		return EXIT_FAIL;
	if (wait_state(sock, name, "stopping created starting", START_POLL_MS, START_POLL_MS, st,
		       sizeof(st), pid, sizeof(pid)) < 0)
		return EXIT_FAIL;
	if (!strcmp(st, "running")) {
		printf("started %s (pid %s)\n", name, pid);
		return EXIT_OK;
	}
	fprintf(stderr, "berth: container %s cannot start: %s\n", name, *st ? pid : "it was removed");
	return EXIT_FAIL;
}

static int do_logs(const char *sock, int argc, char **argv)
{
	char *req[8] = { "logs", NULL };
	char cursor[64] = "", *tail = NULL;
	bool follow = false;
	int n = 2;
	struct buf b;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow")) {
			follow = true;
		} else if ((!strcmp(argv[i], "--tail") || !strcmp(argv[i], "-n")) && i + 1 < argc) {
			tail = argv[++i];
		} else {
			fprintf(stderr, "usage: berth logs NAME [-f] [--tail N]\n");
			return EXIT_USAGE;
		}
	}
	req[1] = argv[1];
	if (tail) {
		req[n++] = "--tail";
		req[n++] = tail;
	}
	if (follow)
		req[n++] = "--cursor";
	buf_init(&b);
	if (call(sock, false, &b, n, req) < 0) {
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
				fprintf(stderr, "berth: unexpected reply to logs\n");
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
			char *from[] = { "logs", argv[1], "--from", cursor, NULL };

			if (call(sock, false, &b, 4, from) < 0) {
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

static void __attribute__((noreturn)) exec_child(const char *name, const char *info, int fds[4],
						 int rootfd, char **cmd)
{
	static const int types[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWNS };
	static const char *const names[] = { "ipc", "uts", "net", "mnt" };
	char cg[512], cwd[512], path[600];
	ARRAY(char *) env = { 0 };
	struct err e = { 0 };
	const char *p;
	char **slot;
	int fd;

	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
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
	if (isatty(STDIN_FILENO) && getenv("TERM")) {
		static char term[128];

		snprintf(term, sizeof(term), "TERM=%s", getenv("TERM"));
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

static int do_exec(const char *sock, int argc, char **argv)
{
	static const char *const ns[] = { "ns/ipc", "ns/uts", "ns/net", "ns/mnt" };
	char *req[] = { "exec-info", argv[1], NULL };
	char v[64];
	int fds[4] = { -1, -1, -1, -1 }, rootfd, pidfd, cmd_at = 2, st, ret = EXIT_FAIL;
	struct buf info;
	pid_t pid, child;

	if (argc > 2 && !strcmp(argv[2], "--"))
		cmd_at = 3;
	if (cmd_at >= argc) {
		fprintf(stderr, "usage: berth exec NAME -- CMD [ARG...]\n");
		return EXIT_USAGE;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "berth exec: needs root (it joins the container's namespaces)\n");
		return EXIT_FAIL;
	}
	buf_init(&info);
	if (call(sock, false, &info, 2, req) < 0) {
		buf_free(&info);
		return EXIT_FAIL;
	}
	pid = (pid_t)atoi(field(info.data ? info.data : "", "pid", v, sizeof(v)) ? v : "0");
	field(info.data, "start", v, sizeof(v));
	/* the pid is the init the daemon knows only if it started at the same
	 * tick; the namespace fds are taken after the check, so they are its */
	pidfd = ns_open(pid, "ns/pid");
	if (pid <= 0 || pidfd < 0 || ctr_proc_start(pid) != strtoull(v, NULL, 10)) {
		fprintf(stderr, "berth exec: %s is not running any more\n", argv[1]);
		if (pidfd >= 0)
			close(pidfd);
		buf_free(&info);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
		fds[i] = ns_open(pid, ns[i]);
	rootfd = ns_open(pid, "root");
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
		if (fds[i] < 0) {
			fprintf(stderr, "berth exec: open /proc/%d/%s: %s\n", (int)pid, ns[i],
				strerror(errno));
			goto out;
		}
	if (rootfd < 0) {
		fprintf(stderr, "berth exec: open /proc/%d/root: %s\n", (int)pid, strerror(errno));
		goto out;
	}
	fflush(NULL);
	/* setns(pid) only moves the caller's future children, and whatever
	 * joined stays there (a sanitizer's helper thread at exit, too): an
	 * intermediate child joins, forks the command, passes its end on */
	child = fork();
	if (child < 0) {
		fprintf(stderr, "berth exec: fork: %s\n", strerror(errno));
		goto out;
	}
	if (child == 0) {
		pid_t cmd;

		if (setns(pidfd, CLONE_NEWPID) < 0) {
			fprintf(stderr, "berth exec: join the pid namespace of %s: %s\n", argv[1],
				strerror(errno));
			_exit(126);
		}
		cmd = fork();
		if (cmd < 0)
			_exit(126);
		if (cmd == 0)
			exec_child(argv[1], info.data, fds, rootfd, argv + cmd_at);
		signal(SIGINT, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
		while (waitpid(cmd, &st, 0) < 0)
			if (errno != EINTR)
				_exit(126);
		if (WIFSIGNALED(st))
			_exit(128 + WTERMSIG(st));
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 126);
	}
	/* the terminal's Ctrl-C reaches the command (same process group); we
	 * only pass its end on */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			goto out;
	ret = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EXIT_FAIL;
out:
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (rootfd >= 0)
		close(rootfd);
	close(pidfd);
	buf_free(&info);
	return ret;
}

int cmd_ctr(const char *sock, bool json, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (argc < 2 || (argc != 2 && strcmp(cmd, "logs") && strcmp(cmd, "exec"))) {
		if (!strcmp(cmd, "exec"))
			fprintf(stderr, "usage: berth exec NAME -- CMD [ARG...]\n");
		else if (!strcmp(cmd, "logs"))
			fprintf(stderr, "usage: berth logs NAME [-f] [--tail N]\n");
		else
			fprintf(stderr, "usage: berth %s NAME\n", cmd);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "start") || !strcmp(cmd, "restart"))
		return do_start(sock, json, cmd, argv[1]);
	if (!strcmp(cmd, "stop"))
		return do_stop(sock, json, argv[1]);
	if (!strcmp(cmd, "logs"))
		return do_logs(sock, argc, argv);
	if (!strcmp(cmd, "exec"))
		return do_exec(sock, argc, argv);
	fprintf(stderr, "berth: unknown command '%s'\n", cmd);
	return EXIT_USAGE;
}
