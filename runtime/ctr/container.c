/* container.c - the daemon's side of containers: start through a monitor
 * process, supervise (restart policy with back-off), stop, adopt after a
 * restart, and the control requests start/stop/state/logs/exec-info.
 *
 * Design decision (see also monitor.c): every container runs under its
 * own `berth monitor` process, which is its init's parent and owns its log
 * pipe; the daemon only talks to monitors. While a monitor is the daemon's
 * child, SIGCHLD (through the daemon's signalfd) reaps it; every monitor is
 * also watched through an epoll'd pidfd, which is how a restarted daemon
 * watches the monitors it adopted (which are no longer its children) and
 * how a stop waits for several containers at once. What a monitor has to
 * say goes into files under STATE_DIR/ctr/NAME written atomically, so
 * nothing is lost while no daemon runs. State and restart counts are also
 * recorded in the store's containers rows.
 *
 * Daemon signals: SIGTERM/SIGINT stop every container (each gets its
 * stop_timeout, then SIGKILL) and exit; SIGQUIT exits and leaves them running
 * for the next daemon (an upgrade in place), as kill -9 does.
 *
 * Stops that reconcile needs (a container removed or changed) wait for the
 * processes before the network is taken down; they run in parallel, but the
 * daemon's loop waits meanwhile (at most the longest stop_timeout + 5 s).
 */
#include "runtime/ctr/ctr.h"
#include "runtime/daemon_int.h"
#include "net/net.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define STOP_GRACE_EXTRA_MS 5000    /* after stop_timeout: SIGKILL the monitor */

enum run_state {
	RS_CREATED, RS_STARTING, RS_RUNNING, RS_STOPPING, RS_BACKOFF, RS_EXITED, RS_STOPPED,
	RS_ERROR,
};
static const char *const state_names[] = {
	"created", "starting", "running", "stopping", "backoff", "exited", "stopped", "error",
};

enum stop_reason { STOP_NONE, STOP_USER, STOP_RECONCILE, STOP_SHUTDOWN };

/* One container's process as the daemon supervises it. Lives across
 * reconciles (struct ctr does not), found by name. */
struct ctr_run {
	struct ctr_run *next;
	struct daemon *d;
	char name[STORE_NAME_MAX];
	char dir[4096];             /* STATE_DIR/ctr/NAME: the state_dir never changes */
	char hash[24];              /* of what a running process depends on */
	enum run_state state;
	enum stop_reason stopping;
	bool want;                  /* should run; false after `berth stop` */
	bool child;                 /* the monitor is our child (else adopted) */
	bool exit_pending;          /* exited while no daemon ran: policy not yet applied */
	pid_t monitor, init;
	struct loop_fd pidfd;
	struct loop_timer timer;    /* back-off restart, or SIGKILL of a stop */
	unsigned restarts, backoff_s, stop_timeout;
	uint64_t started_ms, next_try_ms;   /* monotonic */
	int64_t started_at, exited_at;      /* unix seconds */
	int exit_code;              /* -1: none yet */
	char error[ERR_MSG_MAX];
	char warning[200];
};

static void run_timer_cb(struct loop_timer *t);
static void run_pidfd_cb(struct loop_fd *f, uint32_t events);

static const struct ctr *ctr_find(const struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_ctrs; i++)
		if (!strcasecmp(d->ctrs[i].cfg->name, name))
			return &d->ctrs[i];
	return NULL;
}

static struct ctr_run *run_find(const struct daemon *d, const char *name)
{
	for (struct ctr_run *r = d->runs; r; r = r->next)
		if (!strcasecmp(r->name, name))
			return r;
	return NULL;
}

static struct ctr_run *run_new(struct daemon *d, const char *name)
{
	struct ctr_run *r = calloc(1, sizeof(*r));
	struct store_container sc;

	if (!r)
		abort();
	r->d = d;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->dir, sizeof(r->dir), "%s/ctr/%s", d->cfg->daemon.state_dir, name);
	r->want = true;
	r->exit_code = -1;
	r->pidfd.fd = -1;
	r->pidfd.cb = run_pidfd_cb;
	r->timer.cb = run_timer_cb;
	r->stop_timeout = 10;
	if (d->store && store_container_get(d->store, name, &sc, NULL) == 0) {
		r->restarts = sc.restarts;
		r->want = strcmp(sc.state, "stopped") != 0;    /* `berth stop` outlives the daemon */
	}
	r->next = d->runs;
	d->runs = r;
	return r;
}

static void run_free(struct daemon *d, struct ctr_run *r)
{
	for (struct ctr_run **pp = &d->runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	loop_timer_cancel(&d->loop, &r->timer);
	if (r->pidfd.fd >= 0) {
		loop_fd_del(&d->loop, &r->pidfd);
		close(r->pidfd.fd);
	}
	free(r);
}

/* STATE_DIR/ctr/NAME[/file] */
static void ctr_dir(const struct ctr_run *r, const char *file, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s%s", r->dir, file ? "/" : "", file ? file : "");

	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';     /* fails to open, never names another file */
}

/* What a running process depends on: a change of any of it restarts it. */
static void run_hash(const struct cfg_container *c, char out[24])
{
	uint64_t h = 1469598103934665603ULL;
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "rootfs=%s\n", c->rootfs);
	for (size_t i = 0; i < c->argc; i++)
		buf_printf(&b, "arg=%s\n", c->argv[i]);
	for (size_t i = 0; i < c->n_env; i++)
		buf_printf(&b, "env=%s\n", c->env[i]);
	for (size_t i = 0; i < c->n_networks; i++)
		buf_printf(&b, "net=%s\n", c->networks[i]);
	buf_printf(&b, "memory=%llu\ncpus=%u\n", (unsigned long long)c->memory, c->cpus_milli);
	for (size_t i = 0; i < b.len; i++)
		h = (h ^ (unsigned char)b.data[i]) * 1099511628211ULL;
	buf_free(&b);
	snprintf(out, 24, "%016llx", (unsigned long long)h);
}

/* The store's row: state, pid, restarts, last exit, start time. */
static void run_record(struct ctr_run *r)
{
	struct daemon *d = r->d;
	struct store_container sc;
	struct err e = { 0 };

	if (!d->store || store_container_get(d->store, r->name, &sc, NULL) < 0)
		return;
	snprintf(sc.state, sizeof(sc.state), "%s",
		 r->state == RS_STOPPED ? "stopped" : state_names[r->state]);
	sc.pid = r->init;
	sc.restarts = r->restarts;
	sc.exit_status = r->exit_code;
	sc.started_at = r->started_at;
	if (store_container_put(d->store, &sc, &e) < 0)
		daemon_log(d, LOG_WARN, "container %s: record state: %s", r->name, e.msg);
}

static void run_set_state(struct ctr_run *r, enum run_state s)
{
	r->state = s;
	run_record(r);
}

/* ---- files the container gets --------------------------------------------- */

static bool env_has(const struct cfg_container *c, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i < c->n_env; i++)
		if (!strncmp(c->env[i], key, n) && c->env[i][n] == '=')
			return true;
	return false;
}

static void spec_put(struct buf *b, const char *key, const char *val)
{
	buf_printf(b, "%s=%s", key, val);
	buf_append(b, "", 1);       /* records end with NUL: values may hold anything */
}

static int write_one(const struct ctr_run *r, const char *file, const struct buf *b,
		     struct err *e)
{
	char path[4096];

	ctr_dir(r, file, path, sizeof(path));
	return ctr_file_write(path, b->data ? b->data : "", b->len, e);
}

static int write_files(struct daemon *d, const struct ctr_run *r, const struct ctr *c,
		       struct err *e)
{
	const char *hash = r->hash;
	const struct cfg_container *cc = c->cfg;
	const char *dom = d->cfg->dns.domain;
	char dir[4096], a[IP_STRLEN], v[64];
	struct buf b;
	int ret;

	ctr_dir(r, "root", dir, sizeof(dir));
	if (mkdir_p("container directory", dir, 0700, e) < 0)
		return -1;
	buf_init(&b);
	/* /etc/hosts: itself by name on every interface, as Docker writes it */
	buf_puts(&b, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	for (size_t i = 0; i < c->n_ifs; i++) {
		if (c->ifs[i].ip4.family)
			buf_printf(&b, "%s\t%s.%s %s\n", ip_format(&c->ifs[i].ip4, a), cc->name, dom, cc->name);
		if (c->ifs[i].ip6.family)
			buf_printf(&b, "%s\t%s.%s %s\n", ip_format(&c->ifs[i].ip6, a), cc->name, dom, cc->name);
	}
	ret = write_one(r, "hosts", &b, e);
	buf_reset(&b);
	buf_printf(&b, "%s\n", cc->name);
	if (!ret)
		ret = write_one(r, "hostname", &b, e);
	/* DNS: berth's server on the gateway of the first network */
	buf_reset(&b);
	if (c->n_ifs) {
		const struct cfg_network *n = config_network(d->cfg, c->ifs[0].network);

		if (n) {
			buf_printf(&b, "nameserver %s\n", ip_format(&n->gateway, a));
			if (n->has_v6)
				buf_printf(&b, "nameserver %s\n", ip_format(&n->gateway6, a));
		}
	}
	buf_printf(&b, "search %s\n", dom);
	if (!ret)
		ret = write_one(r, "resolv.conf", &b, e);
	/* what to run */
	buf_reset(&b);
	spec_put(&b, "name", cc->name);
	spec_put(&b, "rootfs", cc->rootfs);
	net_netns_path(d->net, cc->name, dir, sizeof(dir), NULL);
	spec_put(&b, "netns", dir);
	spec_put(&b, "hash", hash);
	for (size_t i = 0; i < cc->argc; i++)
		spec_put(&b, "arg", cc->argv[i]);
	if (!env_has(cc, "PATH"))
		spec_put(&b, "env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!env_has(cc, "HOSTNAME")) {
		buf_printf(&b, "env=HOSTNAME=%s", cc->name);
		buf_append(&b, "", 1);
	}
	if (!env_has(cc, "HOME"))
		spec_put(&b, "env", "HOME=/root");
	for (size_t i = 0; i < cc->n_env; i++)
		spec_put(&b, "env", cc->env[i]);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)cc->memory);
	spec_put(&b, "memory", v);
	snprintf(v, sizeof(v), "%u", cc->cpus_milli);
	spec_put(&b, "cpus_milli", v);
	snprintf(v, sizeof(v), "%u", cc->stop_timeout);
	spec_put(&b, "stop_timeout", v);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)cc->log_size);
	spec_put(&b, "log_size", v);
	if (!ret)
		ret = write_one(r, "spec", &b, e);
	buf_free(&b);
	return ret;
}

/* ---- start ------------------------------------------------------------------ */

static void run_watch(struct ctr_run *r)
{
	struct daemon *d = r->d;
	int fd = (int)syscall(SYS_pidfd_open, r->monitor, 0);

	if (fd < 0) {
		daemon_log(d, LOG_WARN, "container %s: pidfd_open %d: %s", r->name, (int)r->monitor,
			   strerror(errno));
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	r->pidfd.fd = fd;
	if (loop_fd_add(&d->loop, &r->pidfd, EPOLLIN, NULL) < 0) {
		close(fd);
		r->pidfd.fd = -1;
	}
}

/* In the forked child: become `berth monitor STATE_DIR NAME`, fd 3 = report. */
static void __attribute__((noreturn)) exec_monitor(const char *state_dir, const char *name,
						   int report)
{
	char *argv[] = { "berth", "monitor", (char *)state_dir, (char *)name, NULL };
	sigset_t none;
	int null;

	/* fd 3 first: /dev/null must not land on it */
	if (report != 3 ? dup2(report, 3) < 0 : fcntl(3, F_SETFD, 0) < 0)
		_exit(127);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	/* nothing of the daemon's (sockets, the database, the lock) goes along */
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
		for (int fd = 4; fd < 4096; fd++)
			close(fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv("/proc/self/exe", argv);
	_exit(127);
}

static void run_exited(struct ctr_run *r, int code, const char *error);

/* Start r's container now; the result is r's state (running, or the policy's
 * answer to a failed start). Returns 0 when it runs. */
static int run_start(struct ctr_run *r)
{
	struct daemon *d = r->d;
	const struct ctr *c = ctr_find(d, r->name);
	char line[ERR_MSG_MAX + 32], *nl;
	struct err e = { 0 };
	int pipefd[2], st;
	size_t len = 0;
	uint64_t deadline;
	pid_t pid;

	if (!c || !strcmp(c->state, "error"))
		return -1;
	loop_timer_cancel(&d->loop, &r->timer);
	run_hash(c->cfg, r->hash);
	r->stop_timeout = c->cfg->stop_timeout;
	r->stopping = STOP_NONE;
	r->exit_pending = false;
	r->warning[0] = '\0';
	if ((c->cfg->memory || c->cfg->cpus_milli) && !ctr_cgroup2()) {
		snprintf(r->warning, sizeof(r->warning), "memory/cpus limits need cgroup v2 "
			 "(/sys/fs/cgroup is not cgroup2): running without them");
		daemon_log(d, LOG_WARN, "container %s: %s", r->name, r->warning);
	}
	r->started_ms = loop_now_ms();
	r->started_at = (int64_t)time(NULL);
	if (write_files(d, r, c, &e) < 0) {
		run_exited(r, -1, e.msg);
		return -1;
	}
	{
		char path[4096];

		/* an exit file now can only be this start's */
		ctr_dir(r, "exit", path, sizeof(path));
		unlink(path);
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		err_sys(&e, errno, "pipe");
		run_exited(r, -1, e.msg);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		err_sys(&e, errno, "fork");
		close(pipefd[0]);
		close(pipefd[1]);
		run_exited(r, -1, e.msg);
		return -1;
	}
	if (pid == 0)
		exec_monitor(d->cfg->daemon.state_dir, r->name, pipefd[1]);
	close(pipefd[1]);
	r->monitor = pid;
	r->child = true;
	r->state = RS_STARTING;
	/* the monitor reports within milliseconds; a bound keeps a stuck
	 * start (e.g. a hung NFS rootfs) from stalling the daemon for good */
	deadline = loop_now_ms() + CTR_START_TIMEOUT_MS;
	line[0] = '\0';
	for (;;) {
		struct pollfd p = { pipefd[0], POLLIN, 0 };
		uint64_t now = loop_now_ms();
		ssize_t n;

		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) == 0) {
			snprintf(line, sizeof(line), "error the monitor did not report within %d s",
				 CTR_START_TIMEOUT_MS / 1000);
			kill(pid, SIGKILL);
			break;
		}
		n = read(pipefd[0], line + len, sizeof(line) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
		if (strchr(line, '\n') || len == sizeof(line) - 1)
			break;
	}
	close(pipefd[0]);
	nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	if (!strncmp(line, "ok ", 3)) {
		r->init = (pid_t)atoi(line + 3);
		r->error[0] = '\0';
		run_watch(r);
		run_set_state(r, RS_RUNNING);
		daemon_log(d, LOG_INFO, "container %s: started (pid %d)", r->name, (int)r->init);
		return 0;
	}
	/* the monitor said why (or died): it exits at once, reap it here */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->monitor = 0;
	if (!strncmp(line, "error ", 6))
		run_exited(r, -1, line + 6);
	else
		run_exited(r, -1, "the monitor ended without reporting (see the container's log)");
	return -1;
}

/* ---- exits, policy, back-off ---------------------------------------------------- */

static void run_apply_policy(struct ctr_run *r)
{
	struct daemon *d = r->d;
	const struct ctr *c = ctr_find(d, r->name);
	bool failed = r->error[0] || r->exit_code != 0;
	bool again;
	uint64_t up;

	if (!c) {
		run_set_state(r, r->error[0] ? RS_ERROR : RS_EXITED);
		return;
	}
	again = c->cfg->restart == RESTART_ALWAYS ||
		(c->cfg->restart == RESTART_ON_FAILURE && failed);
	if (!again) {
		run_set_state(r, r->error[0] ? RS_ERROR : RS_EXITED);
		return;
	}
	up = r->started_ms && loop_now_ms() > r->started_ms ? loop_now_ms() - r->started_ms : 0;
	if (up >= CTR_BACKOFF_RESET_S * 1000 || !r->backoff_s)
		r->backoff_s = CTR_BACKOFF_FIRST_S;
	else
		r->backoff_s = r->backoff_s * 2 > CTR_BACKOFF_MAX_S ? CTR_BACKOFF_MAX_S
								   : r->backoff_s * 2;
	r->next_try_ms = loop_now_ms() + (uint64_t)r->backoff_s * 1000;
	loop_timer_set(&d->loop, &r->timer, (uint64_t)r->backoff_s * 1000);
	run_set_state(r, RS_BACKOFF);
	daemon_log(d, LOG_INFO, "container %s: restarting in %u s (restart = %s)", r->name,
		   r->backoff_s, c->cfg->restart == RESTART_ALWAYS ? "always" : "on-failure");
}

/* r's process is gone: exit code (or -1 with error for a failed start). */
static void run_exited(struct ctr_run *r, int code, const char *error)
{
	struct daemon *d = r->d;
	enum stop_reason why = r->stopping;

	if (r->pidfd.fd >= 0) {
		loop_fd_del(&d->loop, &r->pidfd);
		close(r->pidfd.fd);
		r->pidfd.fd = -1;
	}
	loop_timer_cancel(&d->loop, &r->timer);
	r->monitor = 0;
	r->init = 0;
	r->exit_code = code;
	r->exited_at = (int64_t)time(NULL);
	r->stopping = STOP_NONE;
	if (error && *error)
		snprintf(r->error, sizeof(r->error), "%s", error);
	else
		r->error[0] = '\0';
	if (error && *error && code < 0)
		daemon_log(d, LOG_ERROR, "container %s: cannot start: %s", r->name, error);
	else if (error && *error)
		daemon_log(d, LOG_ERROR, "container %s: %s", r->name, error);
	else
		daemon_log(d, LOG_INFO, "container %s: exited with code %d", r->name, code);
	switch (why) {
	case STOP_USER:
		run_set_state(r, RS_STOPPED);
		return;
	case STOP_RECONCILE:
		run_set_state(r, RS_CREATED);   /* containers_start_pending starts it again */
		return;
	case STOP_SHUTDOWN: {
		char path[4096];

		run_set_state(r, RS_EXITED);
		/* a clean stop: the next daemon starts afresh, adopts nothing */
		ctr_dir(r, "monitor", path, sizeof(path));
		unlink(path);
		ctr_dir(r, "exit", path, sizeof(path));
		unlink(path);
		return;
	}
	case STOP_NONE:
		break;
	}
	if (!r->want) {
		run_set_state(r, RS_STOPPED);
		return;
	}
	run_apply_policy(r);
}

/* "status=N\nfinished=T\nerror=MSG\n" as the monitor left it. */
static bool read_exit(const struct ctr_run *r, int *code, char *error, size_t size)
{
	char path[4096], text[ERR_MSG_MAX + 128], *p;
	ssize_t n;
	int fd;

	ctr_dir(r, "exit", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	*code = -1;
	error[0] = '\0';
	if ((p = strstr(text, "status=")))
		*code = atoi(p + 7);
	if ((p = strstr(text, "\nerror=")))
		snprintf(error, size, "%.*s", (int)strcspn(p + 7, "\n"), p + 7);
	return true;
}

/* The monitor ended (reaped by SIGCHLD, or its pidfd said so). */
static void run_monitor_gone(struct ctr_run *r)
{
	char error[ERR_MSG_MAX];
	int code, st;

	if (!r->monitor)
		return;
	if (r->child)
		(void)waitpid(r->monitor, &st, WNOHANG);
	if (!read_exit(r, &code, error, sizeof(error))) {
		code = 137;
		snprintf(error, sizeof(error), "its monitor (pid %d) was killed; the container "
			 "went with it", (int)r->monitor);
	}
	run_exited(r, code, error);
}

static void run_pidfd_cb(struct loop_fd *f, uint32_t events)
{
	(void)events;
	run_monitor_gone(container_of(f, struct ctr_run, pidfd));
}

static void run_timer_cb(struct loop_timer *t)
{
	struct ctr_run *r = container_of(t, struct ctr_run, timer);

	if (r->state == RS_STOPPING && r->monitor) {
		/* the monitor did not end the container in time: ending the
		 * monitor ends it (parent-death signal) */
		daemon_log(r->d, LOG_WARN, "container %s: did not stop in time: SIGKILL", r->name);
		kill(r->monitor, SIGKILL);
		return;
	}
	if (r->state != RS_BACKOFF || !r->want)
		return;
	r->restarts++;
	run_start(r);
}

void containers_on_sigchld(struct daemon *d)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (struct ctr_run *r = d->runs; r; r = r->next) {
			if (r->monitor == pid && r->child) {
				r->child = false;       /* reaped */
				run_monitor_gone(r);
				break;
			}
		}
	}
}

/* ---- stop ----------------------------------------------------------------------- */

static void run_signal_stop(struct ctr_run *r, enum stop_reason why)
{
	r->stopping = why;
	if (r->state == RS_RUNNING || r->state == RS_STARTING) {
		kill(r->monitor, SIGTERM);
		r->state = RS_STOPPING;
		r->next_try_ms = 0;
		loop_timer_set(&r->d->loop, &r->timer,
			       (uint64_t)r->stop_timeout * 1000 + STOP_GRACE_EXTRA_MS);
		run_record(r);
	}
}

/* Stop runs[0..n) together and wait until all are gone (runs[] is used as
 * scratch: entries are set to NULL as they end). */
static void runs_stop_wait(struct daemon *d, struct ctr_run **runs, size_t n, enum stop_reason why)
{
	uint64_t deadline = 0, now;
	bool killed = false;

	for (size_t i = 0; i < n; i++) {
		struct ctr_run *r = runs[i];

		if (r->state == RS_BACKOFF || (!r->monitor && r->state != RS_STOPPING)) {
			loop_timer_cancel(&d->loop, &r->timer);
			r->stopping = STOP_NONE;
			if (r->state == RS_BACKOFF)
				run_set_state(r, why == STOP_RECONCILE ? RS_CREATED :
					      why == STOP_USER ? RS_STOPPED : RS_EXITED);
			runs[i] = NULL;
			continue;
		}
		run_signal_stop(r, why);
		r->stopping = why;
		now = loop_now_ms() + (uint64_t)r->stop_timeout * 1000 + STOP_GRACE_EXTRA_MS;
		if (now > deadline)
			deadline = now;
		daemon_log(d, LOG_INFO, "container %s: stopping (SIGTERM, SIGKILL after %u s)",
			   r->name, r->stop_timeout);
	}
	for (;;) {
		struct pollfd p[64];
		struct ctr_run *who[64];
		size_t np = 0;
		int timeout;

		for (size_t i = 0; i < n; i++) {
			if (runs[i] && !runs[i]->monitor)
				runs[i] = NULL;
			if (runs[i] && np < ARRAY_SIZE(p)) {
				p[np] = (struct pollfd){ runs[i]->pidfd.fd, POLLIN, 0 };
				who[np++] = runs[i];
			}
		}
		if (!np)
			break;
		now = loop_now_ms();
		if (now >= deadline) {
			if (killed) {
				for (size_t i = 0; i < np; i++)
					run_monitor_gone(who[i]);
				break;
			}
			for (size_t i = 0; i < np; i++)
				kill(who[i]->monitor, SIGKILL);
			killed = true;
			deadline = now + 2000;
			continue;
		}
		timeout = (int)(deadline - now);
		if (timeout > 200)
			timeout = 200;      /* a monitor without a pidfd is polled by pid */
		if (poll(p, np, timeout) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < np; i++) {
			struct ctr_run *r = who[i];
			bool gone = p[i].revents & POLLIN;
			int st;

			if (!gone && p[i].fd < 0) {     /* no pidfd: ask by pid */
				if (r->child && waitpid(r->monitor, &st, WNOHANG) == r->monitor) {
					r->child = false;
					gone = true;
				} else if (!r->child && kill(r->monitor, 0) < 0) {
					gone = true;
				}
			}
			if (gone)
				run_monitor_gone(r);
		}
	}
}

void containers_stop(struct daemon *d, const char *name)
{
	struct ctr_run *r = run_find(d, name);

	if (r && (r->monitor || r->state == RS_BACKOFF))
		runs_stop_wait(d, &r, 1, STOP_RECONCILE);
}

void containers_stop_changed(struct daemon *d, const struct config *cfg)
{
	struct ctr_run **stop = NULL, **gone = NULL;
	size_t n_stop = 0, n_gone = 0, total = 0;

	for (struct ctr_run *r = d->runs; r; r = r->next)
		total++;
	stop = calloc(total + 1, sizeof(*stop));
	gone = calloc(total + 1, sizeof(*gone));
	if (!stop || !gone)
		abort();
	for (struct ctr_run *r = d->runs; r; r = r->next) {
		const struct cfg_container *c = config_container(cfg, r->name);
		char h[24];

		if (!c) {
			gone[n_gone++] = r;
			stop[n_stop++] = r;
			continue;
		}
		run_hash(c, h);
		if (!strcmp(h, r->hash))
			continue;
		if (r->monitor || r->state == RS_BACKOFF) {
			daemon_log(d, LOG_INFO, "container %s: its configuration changed: restarting it",
				   r->name);
			stop[n_stop++] = r;
		} else if (r->state == RS_EXITED || r->state == RS_ERROR) {
			r->state = RS_CREATED;      /* a new configuration gets a new try */
			r->backoff_s = 0;
		}
	}
	if (n_stop)
		runs_stop_wait(d, stop, n_stop, STOP_RECONCILE);
	for (size_t i = 0; i < n_gone; i++) {
		char path[4096];
		static const char *const files[] = { "spec", "hosts", "hostname", "resolv.conf",
						     "monitor", "exit", "root", NULL };

		daemon_log(d, LOG_INFO, "container %s: no longer configured: removed", gone[i]->name);
		for (size_t k = 0; files[k]; k++) {
			ctr_dir(gone[i], files[k], path, sizeof(path));
			if (unlink(path) < 0)
				rmdir(path);
		}
		ctr_dir(gone[i], NULL, path, sizeof(path));
		rmdir(path);
		run_free(d, gone[i]);
	}
	free(stop);
	free(gone);
}

void containers_start_pending(struct daemon *d)
{
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct ctr *c = &d->ctrs[i];
		struct ctr_run *r = run_find(d, c->cfg->name);

		if (!r)
			r = run_new(d, c->cfg->name);
		r->stop_timeout = c->cfg->stop_timeout;
		if (r->exit_pending) {
			r->exit_pending = false;
			if (r->want)
				run_apply_policy(r);
			else
				run_set_state(r, RS_STOPPED);
			continue;
		}
		if (!strcmp(c->state, "error") || !r->want) {
			if (!r->want && r->state == RS_CREATED)
				run_set_state(r, RS_STOPPED);
			continue;
		}
		if (r->state == RS_CREATED)
			run_start(r);
	}
}

void containers_shutdown(struct daemon *d, bool stop)
{
	size_t n = 0;
	struct ctr_run **all;

	for (struct ctr_run *r = d->runs; r; r = r->next)
		n++;
	all = calloc(n + 1, sizeof(*all));
	if (!all)
		abort();
	n = 0;
	for (struct ctr_run *r = d->runs; r; r = r->next)
		all[n++] = r;
	if (stop && n) {
		runs_stop_wait(d, all, n, STOP_SHUTDOWN);
		/* a clean stop: the next daemon starts every container afresh
		 * (those in back-off or exited too), adopting nothing */
		for (struct ctr_run *r = d->runs; r; r = r->next) {
			char path[4096];

			ctr_dir(r, "monitor", path, sizeof(path));
			unlink(path);
			ctr_dir(r, "exit", path, sizeof(path));
			unlink(path);
		}
	} else if (n)
		daemon_log(d, LOG_INFO, "leaving %zu container%s running for the next daemon", n,
			   n == 1 ? "" : "s");
	free(all);
	while (d->runs)
		run_free(d, d->runs);
}

/* ---- adoption ------------------------------------------------------------------ */

static bool kv(const char *text, const char *key, char *out, size_t size)
{
	char k[32];
	const char *p;

	snprintf(k, sizeof(k), "%s=", key);
	for (p = text; (p = strstr(p, k)); p++)
		if (p == text || p[-1] == '\n')
			break;
	if (!p)
		return false;
	p += strlen(k);
	snprintf(out, size, "%.*s", (int)strcspn(p, "\n"), p);
	return true;
}

static void adopt_one(struct daemon *d, const char *name, const char *boot)
{
	char path[4096], text[1024], v[128], error[ERR_MSG_MAX];
	struct ctr_run *r;
	ssize_t n;
	pid_t mon;
	int fd, code;
	uint64_t start;

	snprintf(path, sizeof(path), "%s/ctr/%s/monitor", d->cfg->daemon.state_dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;             /* never started, or cleanly stopped */
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	if (!kv(text, "boot", v, sizeof(v)) || strcmp(v, boot))
		return;             /* from before a reboot: nothing to adopt */
	if (net_name_check(name, NULL) < 0)
		return;
	r = run_new(d, name);
	kv(text, "hash", r->hash, sizeof(r->hash));
	mon = kv(text, "monitor", v, sizeof(v)) ? (pid_t)atoi(v) : 0;
	start = kv(text, "start", v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
	if (mon > 0) {
		fd = (int)syscall(SYS_pidfd_open, mon, 0);
		/* the pidfd first, then the start time: if they match, the pidfd
		 * is that monitor and not a process that got its pid later */
		if (fd >= 0 && start && ctr_proc_start(mon) == start) {
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			r->monitor = mon;
			r->child = false;
			r->init = kv(text, "init", v, sizeof(v)) ? (pid_t)atoi(v) : 0;
			r->started_at = kv(text, "started", v, sizeof(v)) ? atoll(v) : 0;
			r->started_ms = loop_now_ms() -
				(uint64_t)((int64_t)time(NULL) - r->started_at > 0 ?
					   ((int64_t)time(NULL) - r->started_at) * 1000 : 0);
			r->pidfd.fd = fd;
			if (loop_fd_add(&d->loop, &r->pidfd, EPOLLIN, NULL) < 0) {
				close(fd);
				r->pidfd.fd = -1;
			}
			r->state = RS_RUNNING;
			daemon_log(d, LOG_INFO, "container %s: adopted its running monitor (pid %d, "
				   "container pid %d)", name, (int)mon, (int)r->init);
			return;
		}
		if (fd >= 0)
			close(fd);
	}
	/* it ended while no daemon was watching: the policy decides, once the
	 * configuration is loaded (containers_start_pending) */
	if (read_exit(r, &code, error, sizeof(error))) {
		r->exit_code = code;
		snprintf(r->error, sizeof(r->error), "%s", error);
	} else {
		r->exit_code = 137;
		snprintf(r->error, sizeof(r->error), "its monitor (pid %d) was killed while the "
			 "daemon was down", (int)mon);
	}
	r->started_at = kv(text, "started", v, sizeof(v)) ? atoll(v) : 0;
	r->state = RS_EXITED;
	r->exit_pending = true;
	daemon_log(d, LOG_INFO, "container %s: exited (code %d) while the daemon was down", name,
		   r->exit_code);
}

void containers_adopt(struct daemon *d)
{
	char dir[4096], boot[64];
	struct dirent *de;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/ctr", d->cfg->daemon.state_dir);
	dp = opendir(dir);
	if (!dp)
		return;
	ctr_boot_id(boot, sizeof(boot));
	while ((de = readdir(dp)))
		if (de->d_name[0] != '.')
			adopt_one(d, de->d_name, boot);
	closedir(dp);
}

/* ---- what ps and inspect show ------------------------------------------------------ */

static void fmt_duration(char *buf, size_t size, uint64_t s)
{
	if (s < 60)
		snprintf(buf, size, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, size, "%llum%llus", (unsigned long long)s / 60,
			 (unsigned long long)s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%lluh%llum", (unsigned long long)s / 3600,
			 (unsigned long long)(s % 3600) / 60);
	else
		snprintf(buf, size, "%llud%lluh", (unsigned long long)s / 86400,
			 (unsigned long long)(s % 86400) / 3600);
}

void containers_status(const struct daemon *d, const struct ctr *c, struct ctr_status *st)
{
	const struct ctr_run *r = run_find(d, c->cfg->name);
	int64_t now = (int64_t)time(NULL);
	char t[32];

	memset(st, 0, sizeof(*st));
	st->exit_code = -1;
	st->error = "";
	st->warning = "";
	if (!strcmp(c->state, "error")) {
		st->state = "error";
		st->error = c->error;
		snprintf(st->status, sizeof(st->status), "network not set up");
		if (!r)
			return;
	}
	if (!r) {
		st->state = "created";
		snprintf(st->status, sizeof(st->status), "not started");
		return;
	}
	if (!st->state)
		st->state = state_names[r->state];
	st->pid = r->init;
	st->restarts = r->restarts;
	st->exit_code = r->exit_code;
	st->started_at = r->started_at;
	if (!st->error[0])
		st->error = r->error;
	st->warning = r->warning;
	switch (r->state) {
	case RS_RUNNING:
		fmt_duration(t, sizeof(t), now > r->started_at ? (uint64_t)(now - r->started_at) : 0);
		snprintf(st->status, sizeof(st->status), "up %s", t);
		break;
	case RS_BACKOFF: {
		uint64_t ms = loop_now_ms(), left = r->next_try_ms > ms ? r->next_try_ms - ms : 0;

		snprintf(st->status, sizeof(st->status), "backoff (next try in %llus)",
			 (unsigned long long)(left + 999) / 1000);
		break;
	}
	case RS_EXITED:
	case RS_STOPPED:
	case RS_ERROR:
		fmt_duration(t, sizeof(t), now > r->exited_at ? (uint64_t)(now - r->exited_at) : 0);
		if (r->exit_code >= 0)
			snprintf(st->status, sizeof(st->status), "%s (%d) %s ago",
				 r->state == RS_STOPPED ? "stopped" : "exited", r->exit_code, t);
		else
			snprintf(st->status, sizeof(st->status), "failed to start %s ago", t);
		break;
	default:
		snprintf(st->status, sizeof(st->status), "%s", state_names[r->state]);
		break;
	}
}

/* ---- requests ---------------------------------------------------------------------- */

static int req_start(struct daemon *d, const struct ctr *c, struct ctr_run *r, struct buf *out,
		     struct err *e)
{
	if (!strcmp(c->state, "error"))
		return err_set(e, EINVAL, "container %s cannot start: its network is not set up: %s",
			       r->name, c->error);
	r->want = true;
	if (r->state == RS_RUNNING || r->state == RS_STARTING) {
		buf_printf(out, "%s is already running (pid %d)\n", r->name, (int)r->init);
		return 0;
	}
	if (r->state == RS_STOPPING)
		return err_set(e, EBUSY, "container %s is stopping; start it once it has stopped",
			       r->name);
	r->backoff_s = 0;
	if (run_start(r) < 0) {
		/* the policy may have scheduled a retry; the error stays the answer */
		return err_set(e, EINVAL, "container %s cannot start: %s", r->name, r->error);
	}
	(void)d;
	buf_printf(out, "started %s (pid %d)\n", r->name, (int)r->init);
	return 0;
}

static int req_stop(struct daemon *d, struct ctr_run *r, struct buf *out)
{
	r->want = false;
	if (r->state == RS_RUNNING || r->state == RS_STARTING) {
		run_signal_stop(r, STOP_USER);
		daemon_log(d, LOG_INFO, "container %s: stopping (SIGTERM, SIGKILL after %u s)",
			   r->name, r->stop_timeout);
		buf_printf(out, "stopping %s (SIGTERM, SIGKILL after %u s)\n", r->name,
			   r->stop_timeout);
		return 0;
	}
	if (r->state == RS_STOPPING) {
		r->stopping = STOP_USER;
		buf_printf(out, "stopping %s\n", r->name);
		return 0;
	}
	loop_timer_cancel(&d->loop, &r->timer);
	if (r->state != RS_STOPPED)
		run_set_state(r, RS_STOPPED);
	buf_printf(out, "%s is not running\n", r->name);
	return 0;
}

static int req_logs(struct daemon *d, const struct ctl_request *rq, const char *name,
		    struct buf *out, struct err *e)
{
	const char *sd = d->cfg->daemon.state_dir, *from = NULL;
	bool cursor = false;
	long tail = -1;
	char next[64];

	for (int i = 2; i < rq->argc; i++) {
		if (!strcmp(rq->argv[i], "--cursor")) {
			cursor = true;
		} else if (!strcmp(rq->argv[i], "--from") && i + 1 < rq->argc) {
			from = rq->argv[++i];
		} else if (!strcmp(rq->argv[i], "--tail") && i + 1 < rq->argc) {
			char *end;

			errno = 0;
			tail = strtol(rq->argv[++i], &end, 10);
			if (errno || *end || tail < 0 || end == rq->argv[i])
				return err_set(e, EINVAL, "--tail takes a number of lines, not '%s'",
					       rq->argv[i]);
		} else {
			return err_set(e, EINVAL, "usage: berth logs NAME [-f] [--tail N]");
		}
	}
	if (from) {
		size_t at = out->len;

		/* reserve the cursor line, fill it in after reading */
		buf_printf(out, "cursor %-40.40s\n", "");
		if (ctr_log_from(sd, name, from, out, next, sizeof(next), e) < 0) {
			out->len = at;
			return -1;
		}
		{
			char line[64];

			snprintf(line, sizeof(line), "cursor %-40.40s\n", next);
			memcpy(out->data + at, line, 48);
		}
		return 0;
	}
	if (cursor) {
		ctr_log_cursor(sd, name, next, sizeof(next));
		buf_printf(out, "cursor %-40.40s\n", next);
	}
	return ctr_log_read(sd, name, tail, out, e);
}

static int req_exec_info(struct daemon *d, const struct ctr *c, struct ctr_run *r,
			 struct buf *out, struct err *e)
{
	const struct cfg_container *cc = c->cfg;

	(void)d;
	if (r->state != RS_RUNNING || !r->init)
		return err_set(e, ESRCH, "container %s is not running (%s)", r->name,
			       state_names[r->state]);
	buf_printf(out, "pid=%d\nstart=%" PRIu64 "\ncwd=/\n", (int)r->init, ctr_proc_start(r->init));
	if ((cc->memory || cc->cpus_milli) && ctr_cgroup2())
		buf_printf(out, "cgroup=%s/%s\n", CTR_CGROUP_ROOT, cc->name);
	if (!env_has(cc, "PATH"))
		buf_puts(out, "env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
	if (!env_has(cc, "HOSTNAME"))
		buf_printf(out, "env=HOSTNAME=%s\n", cc->name);
	if (!env_has(cc, "HOME"))
		buf_puts(out, "env=HOME=/root\n");
	for (size_t i = 0; i < cc->n_env; i++) {
		if (strchr(cc->env[i], '\n'))
			continue;   /* cannot travel in this line format */
		buf_printf(out, "env=%s\n", cc->env[i]);
	}
	return 0;
}

int containers_request(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		       struct err *e)
{
	const char *cmd = rq->argv[0];
	const struct ctr *c;
	struct ctr_run *r;

	if (rq->argc < 2 || (strcmp(cmd, "logs") && rq->argc != 2))
		return err_set(e, EINVAL, "usage: berth %s NAME%s", cmd,
			       !strcmp(cmd, "logs") ? " [-f] [--tail N]" : "");
	c = ctr_find(d, rq->argv[1]);
	if (!c)
		return err_set(e, ENOENT, "no container named '%s'", rq->argv[1]);
	if (!strcmp(cmd, "logs"))
		return req_logs(d, rq, c->cfg->name, out, e);
	r = run_find(d, c->cfg->name);
	if (!r)
		r = run_new(d, c->cfg->name);
	if (!strcmp(cmd, "start"))
		return req_start(d, c, r, out, e);
	if (!strcmp(cmd, "stop"))
		return req_stop(d, r, out);
	if (!strcmp(cmd, "exec-info"))
		return req_exec_info(d, c, r, out, e);
	if (!strcmp(cmd, "state")) {
		struct ctr_status st;

		containers_status(d, c, &st);
		buf_printf(out, "state=%s\npid=%d\nerror=%s\n", st.state, st.pid, st.error);
		return 0;
	}
	return err_set(e, EINVAL, "unknown command '%s'", cmd);
}
