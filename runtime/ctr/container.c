/* container.c - the supervisor: start containers through monitor processes,
 * supervise them (restart policy with back-off), stop them, adopt them after
 * a daemon restart, and answer start/stop/restart/state/logs/exec-info.
 *
 * Design decisions (see also monitor.c):
 *  - Every container runs under its own `berth monitor` process, which is
 *    its init's parent and owns its log pipe; the supervisor only talks to
 *    monitors. Each monitor is watched through an epoll'd pidfd (SIGCHLD
 *    also reaps the ones that are our children), which is how a restarted
 *    daemon watches the monitors it adopted.
 *  - Nothing waits. A start forks the monitor and returns; its one-line
 *    report arrives on a pipe the loop watches (bounded by a timer). A stop
 *    sends SIGTERM and arms a timer; at stop_timeout (+ grace) the monitor
 *    gets SIGKILL; the pidfd says when it is gone.
 *  - Never two processes for one container: a monitor holds an flock on
 *    STATE_DIR/ctr/NAME/lock for its whole life (taken by the daemon before
 *    the fork and inherited), so a daemon that finds the lock taken knows a
 *    monitor it has not adopted yet is alive (one forked by a daemon killed
 *    before the monitor wrote its file) and waits for it instead of
 *    starting another.
 *  - The reason of a stop is in the store before the signal goes out
 *    ("stopping" for `berth stop`, "restarting" for a restart), so a daemon
 *    killed in the middle of a restart or a reload finishes it: the next one
 *    resumes the stop of an adopted monitor, or starts the container whose
 *    monitor ended while no daemon watched.
 *  - What a monitor has to say goes into files under STATE_DIR/ctr/NAME
 *    written atomically, so nothing is lost while no daemon runs.
 */
#include "runtime/ctr/ctr.h"
#include "runtime/image/image.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
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
#define LOCK_RETRY_MS 100           /* a monitor we have not adopted holds the lock */

enum run_state {
	RS_CREATED, RS_STARTING, RS_RUNNING, RS_STOPPING, RS_BACKOFF, RS_EXITED, RS_STOPPED,
	RS_ERROR,
};
static const char *const state_names[] = {
	"created", "starting", "running", "stopping", "backoff", "exited", "stopped", "error",
};

/* One container's process as the supervisor sees it; lives across reloads,
 * found by name (s->by_name). Kept compact: the daemon holds one per
 * container for its whole life (issue 19: <= 1 KiB of daemon memory per
 * container), so no fixed buffers: the name is allocated with the run at
 * its real length, the error only while there is one, and what only a
 * start needs (the report's pipe and line) only while starting. */
struct ctr_run {
	struct ctr_run *next;       /* s->runs: newest first */
	struct ctr_sup *s;
	struct run_report *report;  /* the monitor's start report, while starting */
	char *error;                /* why it is not running; NULL: nothing */
	const char *warning;        /* one of the WARN_* texts; NULL: none */
	struct loop_fd pidfd;
	struct loop_timer timer;    /* start timeout, SIGKILL of a stop, back-off, lock retry */
	uint64_t hash;              /* of what the running process depends on (run_hash) */
	uint64_t started_ms, next_try_ms;   /* monotonic */
	int64_t started_at, exited_at;      /* unix seconds */
	pid_t monitor, init;
	unsigned restarts, stop_timeout;
	int exit_code;              /* -1: none yet */
	uint8_t state;              /* enum run_state */
	uint8_t stopping;           /* enum ctr_stop_why; 0: no stop under way */
	uint8_t backoff_s;          /* <= CTR_BACKOFF_MAX_S */
	uint8_t stop_signal;        /* what the monitor sends on a stop (an image's StopSignal) */
	bool has_hash : 1;          /* hash is known (else it matches nothing) */
	bool want : 1;              /* should run; false after `berth stop` */
	bool child : 1;             /* the monitor is our child (else adopted) */
	bool exit_pending : 1;      /* ended while no daemon ran: policy not yet applied */
	bool queued : 1;            /* waits for a free start slot (CTR_STARTS_MAX) */
	bool counted : 1;           /* holds a start slot: its report is due */
	bool again : 1;             /* the next start is a restart (its event says so) */
	char name[];
};

/* The monitor's start report as it arrives ("ok PID" or "error MESSAGE"):
 * allocated for a start, freed once it is in, so at most CTR_STARTS_MAX
 * exist at once. */
#define REPORT_MAX (ERR_MSG_MAX + 32)
struct run_report {
	struct loop_fd fd;
	struct ctr_run *r;
	size_t len;
	char line[REPORT_MAX];
};

static const char WARN_NO_CGROUP2[] = "memory/cpus limits need cgroup v2 (/sys/fs/cgroup is "
	"not cgroup2): running without them";
static const char WARN_NEW_CANNOT_START[] = "its new configuration cannot start; the old "
	"process keeps running";

/* r's error: a copy of msg ("" or NULL: none). */
static void run_set_error(struct ctr_run *r, const char *msg)
{
	free(r->error);
	r->error = msg && *msg ? strdup(msg) : NULL;
}

static void run_timer_cb(struct loop_timer *t);
static void run_pidfd_cb(struct loop_fd *f, uint32_t events);
static void run_report_cb(struct loop_fd *f, uint32_t events);
static int run_start(struct ctr_run *r);
static bool run_adopt_files(struct ctr_run *r, const char *boot, pid_t *seen);

#define LOG(s, lvl, ...) ((s)->log((s)->ctx, (lvl), __VA_ARGS__))

static void run_event(struct ctr_run *r, const char *action, int code, const char *msg)
{
	if (r->s->on_event)
		r->s->on_event(r->s->ctx, r->name, action, code, msg);
}

static void changed(struct ctr_run *r)
{
	if (r->s->on_change)
		r->s->on_change(r->s->ctx, r->name);
}

static const char *run_name(const void *r)
{
	return ((const struct ctr_run *)r)->name;
}

static struct ctr_run *run_find(const struct ctr_sup *s, const char *name)
{
	return name_index_get(&s->by_name, name);
}

/* STATE_DIR/ctr/NAME[/file] */
static void ctr_path_of(const struct ctr_sup *s, const char *name, const char *file, char *buf,
			size_t size)
{
	int n = snprintf(buf, size, "%s/ctr/%s%s%s", s->state_dir, name, file ? "/" : "",
			 file ? file : "");

	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';     /* fails to open, never names another file */
}

static void ctr_path(const struct ctr_run *r, const char *file, char *buf, size_t size)
{
	ctr_path_of(r->s, r->name, file, buf, size);
}

static struct ctr_run *run_new(struct ctr_sup *s, const char *name)
{
	size_t len = strlen(name);
	struct ctr_run *r = calloc(1, sizeof(*r) + len + 1);
	struct store_container sc;

	if (!r)
		abort();
	r->s = s;
	memcpy(r->name, name, len + 1);
	r->want = true;
	r->exit_code = -1;
	r->pidfd.fd = -1;
	r->pidfd.cb = run_pidfd_cb;
	r->timer.cb = run_timer_cb;
	r->stop_timeout = 10;
	if (s->store && store_container_get(s->store, name, &sc, NULL) == 0) {
		r->restarts = sc.restarts;
		/* `berth stop` outlives the daemon, even one killed mid-stop */
		r->want = strcmp(sc.state, "stopped") && strcmp(sc.state, "stopping");
	}
	if (name_index_put(&s->by_name, r) != r)
		abort();            /* out of memory, or a second run of one name */
	r->next = s->runs;
	s->runs = r;
	return r;
}

static void fd_unwatch(struct ctr_sup *s, struct loop_fd *f)
{
	if (f->fd < 0)
		return;
	loop_fd_del(s->loop, f);
	close(f->fd);
	f->fd = -1;
}

/* Stop waiting for r's start report (if it still was) and free it. */
static void report_free(struct ctr_run *r)
{
	if (!r->report)
		return;
	fd_unwatch(r->s, &r->report->fd);
	free(r->report);
	r->report = NULL;
}

/* r's start report is in (or will never come): its slot goes to the
 * longest-waiting queued start. */
static void start_slot_free(struct ctr_run *r)
{
	struct ctr_sup *s = r->s;

	if (!r->counted)
		return;
	r->counted = false;
	s->starting--;
	while (s->starting < CTR_STARTS_MAX && !s->shutting_down) {
		struct ctr_run *next = NULL;

		/* runs are pushed at the head: the last queued one in the
		 * list has waited longest */
		for (struct ctr_run *q = s->runs; q; q = q->next)
			if (q->queued)
				next = q;
		if (!next)
			break;
		next->queued = false;
		run_start(next);
	}
}

static void run_free(struct ctr_run *r)
{
	struct ctr_sup *s = r->s;

	r->queued = false;
	start_slot_free(r);

	for (struct ctr_run **pp = &s->runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	name_index_del(&s->by_name, r->name);
	loop_timer_cancel(s->loop, &r->timer);
	fd_unwatch(s, &r->pidfd);
	report_free(r);
	free(r->error);
	free(r);
}

/* What a running process depends on: a change of any of it restarts it.
 * An image is its manifest's digest (its layers and configuration). */
static uint64_t run_hash(const struct ctr_spec *sp)
{
	const struct cfg_container *c = sp->cfg;
	uint64_t h;
	struct buf b;

	buf_init(&b);
	if (sp->image)
		buf_printf(&b, "image=%s@%s\nread_only=%d\n", sp->image->ref, sp->image->digest,
			   c->read_only);
	else
		buf_printf(&b, "rootfs=%s\n", c->rootfs);
	for (size_t i = 0; i < c->argc; i++)
		buf_printf(&b, "arg=%s\n", c->argv[i]);
	for (size_t i = 0; i < c->n_env; i++)
		buf_printf(&b, "env=%s\n", c->env[i]);
	for (size_t i = 0; i < c->n_networks; i++)
		buf_printf(&b, "net=%s\n", c->networks[i]);
	if (c->default_net)     /* its resolv.conf names the default network's gateway */
		buf_printf(&b, "default=%s\n", c->networks[c->default_net]);
	buf_printf(&b, "memory=%llu\ncpus=%u\n", (unsigned long long)c->memory, c->cpus_milli);
	/* only `no` is written: a process started before the key existed ran
	 * without an init, and hashes as init = no does. So an upgrade in place
	 * (SIGQUIT, then the new daemon adopts) restarts no container: they get
	 * the init at their next start. */
	if (!c->init)
		buf_puts(&b, "init=no\n");
	/* FNV-1a from the seed earlier daemons used (not HASH64_INIT): the
	 * hashes of running processes, which an adopting daemon compares,
	 * stay what they were */
	h = hash64(1469598103934665603ULL, b.data, b.len);
	buf_free(&b);
	return h;
}

/* Does r's process run what hash h describes? */
static bool run_hash_is(const struct ctr_run *r, uint64_t h)
{
	return r->has_hash && r->hash == h;
}

/* The store's row name for r's state: a stop under way says where it goes. */
static const char *row_state(const struct ctr_run *r)
{
	if (r->state == RS_STOPPING)
		return r->want ? "restarting" : "stopping";
	return state_names[r->state];
}

/* The store's row: state, pid, restarts, last exit, start time. */
static void run_record(struct ctr_run *r)
{
	struct ctr_sup *s = r->s;
	struct store_container sc;
	struct err e = { 0 };

	if (!s->store || store_container_get(s->store, r->name, &sc, NULL) < 0)
		return;
	snprintf(sc.state, sizeof(sc.state), "%s", row_state(r));
	sc.pid = r->init;
	sc.restarts = r->restarts;
	sc.exit_status = r->exit_code;
	sc.started_at = r->started_at;
	if (store_container_put(s->store, &sc, &e) < 0)
		LOG(s, LOG_WARN, "container %s: record state: %s", r->name, e.msg);
}

static void run_set_state(struct ctr_run *r, enum run_state st)
{
	r->state = st;
	run_record(r);
	changed(r);
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

/* The environment every container gets unless its config sets the variable. */
static void default_env(const struct cfg_container *c, void (*put)(struct buf *, const char *),
			struct buf *b)
{
	char v[STORE_NAME_MAX + 16];

	if (!env_has(c, "PATH"))
		put(b, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!env_has(c, "HOSTNAME")) {
		snprintf(v, sizeof(v), "HOSTNAME=%s", c->name);
		put(b, v);
	}
	if (!env_has(c, "HOME"))
		put(b, "HOME=/root");
}

static void spec_put(struct buf *b, const char *key, const char *val)
{
	buf_printf(b, "%s=%s", key, val);
	buf_append(b, "", 1);       /* records end with NUL: values may hold anything */
}

static void spec_env(struct buf *b, const char *val)
{
	spec_put(b, "env", val);
}

/* ---- what a container runs from its image ------------------------------------ */

typedef void spec_put_fn(struct buf *b, const char *key, const char *val);

static bool list_has(char *const *v, const char *key)
{
	size_t n = strlen(key);

	for (; v && *v; v++)
		if (!strncmp(*v, key, n) && (*v)[n] == '=')
			return true;
	return false;
}

/* key of "KEY=VALUE" into buf; false when it has none. */
static bool env_key(const char *kv, char *buf, size_t size)
{
	size_t n = strcspn(kv, "=");

	if (!kv[n] || !n || n >= size)
		return false;
	memcpy(buf, kv, n);
	buf[n] = '\0';
	return true;
}

/* What the image gives the container's process, as put records: the
 * overlay (layers, layers_dir, image, read_only), workdir, user, groups,
 * stop_signal, arg (Entrypoint, then command or else Cmd, as docker) and env
 * (the defaults the container and the image do not set, the image's Env but
 * for the names the container sets, the container's). Returns 0, or -1 with
 * e naming the image. */
static int image_put(const struct ctr_sup *s, const struct ctr_spec *sp, spec_put_fn *put,
		     struct buf *b, struct err *e)
{
	const struct cfg_container *cc = sp->cfg;
	const struct image_info *i = sp->image;
	const struct image_config *ic = &i->config;
	struct image_user u;
	char v[4096], key[256];
	size_t n_args = 0, off = 0;
	struct buf lower;
	int sig = SIGTERM;

	buf_init(&lower);
	if (image_lowerdirs(i, &lower, e) < 0) {
		buf_free(&lower);
		return -1;
	}
	buf_append(&lower, "", 1);
	put(b, "layers", lower.data);
	buf_free(&lower);
	snprintf(v, sizeof(v), "%s/images/layers", s->state_dir);
	put(b, "layers_dir", v);
	for (size_t k = 0; k < i->n_layers; k++) {
		char path[4096 + 80];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", v, i->layers[k].diff_id + 7);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			return err_set(e, ENOENT, "image %s: layer %s missing (%s): pull the image "
				       "again", i->ref, i->layers[k].diff_id, path);
	}
	put(b, "image", i->ref);
	put(b, "read_only", cc->read_only ? "1" : "0");
	if (ic->workdir && *ic->workdir) {
		if (ic->workdir[0] != '/')
			return err_set(e, EINVAL, "image %s: WorkingDir '%s' is not an absolute path",
				       i->ref, ic->workdir);
		put(b, "workdir", ic->workdir);
	}
	if (image_user_resolve(i, s->state_dir, ic->user, &u, e) < 0)
		return -1;
	snprintf(v, sizeof(v), "%" PRIu32 ":%" PRIu32, u.uid, u.gid);
	put(b, "user", v);
	v[0] = '\0';
	for (size_t k = 0; k < u.n_groups && off < sizeof(v); k++)
		off += (size_t)snprintf(v + off, sizeof(v) - off, "%s%" PRIu32, k ? "," : "",
					u.groups[k]);
	put(b, "groups", v);
	if (ic->stop_signal && *ic->stop_signal &&
	    (sig = image_signal_parse(ic->stop_signal)) < 0)
		return err_set(e, EINVAL, "image %s: StopSignal '%s' is not a signal", i->ref,
			       ic->stop_signal);
	snprintf(v, sizeof(v), "%d", sig);
	put(b, "stop_signal", v);
	for (char **a = ic->entrypoint; a && *a; a++, n_args++)
		put(b, "arg", *a);
	if (cc->argc)
		for (size_t k = 0; k < cc->argc; k++, n_args++)
			put(b, "arg", cc->argv[k]);
	else
		for (char **a = ic->cmd; a && *a; a++, n_args++)
			put(b, "arg", *a);
	if (!n_args)
		return err_set(e, EINVAL, "image %s has neither Entrypoint nor Cmd: give container "
			       "%s a command", i->ref, cc->name);
	if (!env_has(cc, "PATH") && !list_has(ic->env, "PATH"))
		put(b, "env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!env_has(cc, "HOSTNAME") && !list_has(ic->env, "HOSTNAME")) {
		snprintf(v, sizeof(v), "HOSTNAME=%s", cc->name);
		put(b, "env", v);
	}
	if (!env_has(cc, "HOME") && !list_has(ic->env, "HOME")) {
		snprintf(v, sizeof(v), "HOME=%s", u.home);
		put(b, "env", v);
	}
	for (char **a = ic->env; a && *a; a++)
		if (env_key(*a, key, sizeof(key)) && !env_has(cc, key))
			put(b, "env", *a);
	for (size_t k = 0; k < cc->n_env; k++)
		put(b, "env", cc->env[k]);
	return 0;
}

static int write_one(const struct ctr_run *r, const char *file, const struct buf *b,
		     struct err *e)
{
	char path[4096];

	ctr_path(r, file, path, sizeof(path));
	return file_write_atomic(path, b->data ? b->data : "", b->len, 0644, false, e);
}

static int write_files(const struct ctr_run *r, const struct ctr_spec *sp, struct err *e)
{
	const struct cfg_container *cc = sp->cfg;
	char dir[4096], a[IP_STRLEN], v[64];
	struct buf b;
	int ret;

	ctr_path(r, "root", dir, sizeof(dir));
	if (mkdir_p("container directory", dir, 0700, e) < 0)
		return -1;
	buf_init(&b);
	/* /etc/hosts: itself by name on every interface, as Docker writes it */
	buf_puts(&b, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	for (size_t i = 0; i < sp->n_addrs; i++)
		buf_printf(&b, "%s\t%s.%s %s\n", ip_format(&sp->addrs[i], a), cc->name, sp->domain,
			   cc->name);
	ret = write_one(r, "hosts", &b, e);
	buf_reset(&b);
	buf_printf(&b, "%s\n", cc->name);
	if (!ret)
		ret = write_one(r, "hostname", &b, e);
	buf_reset(&b);
	for (size_t i = 0; i < ARRAY_SIZE(sp->nameservers); i++)
		if (sp->nameservers[i].family)
			buf_printf(&b, "nameserver %s\n", ip_format(&sp->nameservers[i], a));
	buf_printf(&b, "search %s\n", sp->domain);
	if (!ret)
		ret = write_one(r, "resolv.conf", &b, e);
	/* what to run */
	buf_reset(&b);
	spec_put(&b, "name", cc->name);
	if (!sp->image)
		spec_put(&b, "rootfs", cc->rootfs);
	spec_put(&b, "netns", sp->netns);
	snprintf(v, sizeof(v), "%016llx", (unsigned long long)r->hash);
	spec_put(&b, "hash", r->has_hash ? v : "");
	if (sp->image) {
		if (!ret && image_put(r->s, sp, spec_put, &b, e) < 0)
			ret = -1;
	} else {
		for (size_t i = 0; i < cc->argc; i++)
			spec_put(&b, "arg", cc->argv[i]);
		default_env(cc, spec_env, &b);
		for (size_t i = 0; i < cc->n_env; i++)
			spec_put(&b, "env", cc->env[i]);
	}
	snprintf(v, sizeof(v), "%llu", (unsigned long long)cc->memory);
	spec_put(&b, "memory", v);
	snprintf(v, sizeof(v), "%u", cc->cpus_milli);
	spec_put(&b, "cpus_milli", v);
	snprintf(v, sizeof(v), "%u", cc->stop_timeout);
	spec_put(&b, "stop_timeout", v);
	spec_put(&b, "init", cc->init ? "1" : "0");
	snprintf(v, sizeof(v), "%llu", (unsigned long long)cc->log_size);
	spec_put(&b, "log_size", v);
	if (!ret)
		ret = write_one(r, "spec", &b, e);
	buf_free(&b);
	return ret;
}

/* ---- start ------------------------------------------------------------------ */

/* Watch pid (a monitor) through a pidfd. A monitor without one is still
 * found by SIGCHLD when it is our child; an adopted one is polled by the
 * stop timer. */
static void run_watch(struct ctr_run *r, int fd)
{
	if (fd < 0) {
		LOG(r->s, LOG_WARN, "container %s: pidfd_open %d: %s", r->name, (int)r->monitor,
		    strerror(errno));
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	r->pidfd.fd = fd;
	if (loop_fd_add(r->s->loop, &r->pidfd, EPOLLIN, NULL) < 0) {
		close(fd);
		r->pidfd.fd = -1;
	}
}

/* Put fd on target (one of 3, 4) with close-on-exec cleared. */
static int fd_place(int fd, int target)
{
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

/* In the forked child: become `berth monitor STATE_DIR NAME`, with fd 3 the
 * start report and fd 4 the container's lock (held for the monitor's life). */
static void __attribute__((noreturn)) exec_monitor(const char *state_dir, const char *name,
						   int report, int lock)
{
	char *argv[] = { "berth", "monitor", (char *)state_dir, (char *)name, NULL };
	sigset_t none;
	int null;

	/* above 4 first, so that placing one cannot overwrite the other */
	report = fcntl(report, F_DUPFD_CLOEXEC, 5);
	lock = fcntl(lock, F_DUPFD_CLOEXEC, 5);
	if (report < 0 || lock < 0 || fd_place(report, 3) < 0 || fd_place(lock, 4) < 0)
		_exit(127);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	/* nothing of the daemon's (sockets, the database, its lock) goes along */
	if (syscall(SYS_close_range, 5, ~0U, 0) < 0)
		for (int fd = 5; fd < 4096; fd++)
			close(fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv("/proc/self/exe", argv);
	_exit(127);
}

static void run_exited(struct ctr_run *r, int code, const char *error);

/* Open and take name's lock. Returns the fd, -EWOULDBLOCK while a monitor
 * holds it, or another -errno. */
static int run_lock(const struct ctr_run *r, struct err *e)
{
	char path[4096];
	int fd;

	ctr_path(r, NULL, path, sizeof(path));
	if (mkdir_p("container directory", path, 0700, e) < 0)
		return -1;
	ctr_path(r, "lock", path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "open %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int en = errno;

		close(fd);
		return -en;
	}
	return fd;
}

/* Start r's container: fork its monitor and return; the report comes to
 * run_report_cb. Returns 0 when the start is under way (or deferred until
 * an unadopted monitor is gone), -1 when it failed at once (r says why). */
static int run_start(struct ctr_run *r)
{
	struct ctr_sup *s = r->s;
	const struct ctr_spec *sp = s->lookup(s->ctx, r->name);
	struct err e = { 0 };
	int pipefd[2], lock;
	char path[4096];
	pid_t pid;

	if (!sp || sp->blocked || s->shutting_down)
		return -1;
	if (r->counted)
		return 0;           /* already starting */
	if (sp->cfg->image && !sp->image) {
		err_set(&e, ENOENT, "image %s is not in the store", sp->cfg->image);
		run_exited(r, -1, e.msg);
		return -1;
	}
	loop_timer_cancel(s->loop, &r->timer);
	r->stopping = 0;
	r->exit_pending = false;
	if (s->starting >= CTR_STARTS_MAX) {
		r->queued = true;   /* start_slot_free starts it */
		r->state = RS_CREATED;
		return 0;
	}
	lock = run_lock(r, &e);
	if (lock == -EWOULDBLOCK || lock == -EAGAIN) {
		/* a monitor we do not know yet: adopt it once it has written its
		 * file, or start after it is gone; never a second one */
		r->state = RS_CREATED;
		loop_timer_set(s->loop, &r->timer, LOCK_RETRY_MS);
		return 0;
	}
	r->hash = run_hash(sp);
	r->has_hash = true;
	r->stop_signal = SIGTERM;
	if (sp->image && sp->image->config.stop_signal &&
	    image_signal_parse(sp->image->config.stop_signal) > 0)
		r->stop_signal = (uint8_t)image_signal_parse(sp->image->config.stop_signal);
	r->stop_timeout = sp->cfg->stop_timeout;
	r->warning = NULL;
	if ((sp->cfg->memory || sp->cfg->cpus_milli) && !ctr_cgroup2()) {
		r->warning = WARN_NO_CGROUP2;
		LOG(s, LOG_WARN, "container %s: %s", r->name, r->warning);
	}
	r->started_ms = loop_now_ms();
	r->started_at = (int64_t)time(NULL);
	if (lock < 0 || write_files(r, sp, &e) < 0)
		goto fail;
	ctr_path(r, "exit", path, sizeof(path));
	unlink(path);               /* an exit file now can only be this start's */
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		err_sys(&e, errno, "pipe");
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		err_sys(&e, errno, "fork");
		close(pipefd[0]);
		close(pipefd[1]);
		goto fail;
	}
	if (pid == 0)
		exec_monitor(s->state_dir, r->name, pipefd[1], lock);
	close(pipefd[1]);
	close(lock);                /* the monitor's copy keeps it taken */
	r->monitor = pid;
	r->child = true;
	run_set_error(r, NULL);
	run_watch(r, (int)syscall(SYS_pidfd_open, pid, 0));
	/* no memory for the report: as if the monitor said nothing (the
	 * start timer ends it) */
	report_free(r);
	r->report = malloc(sizeof(*r->report));
	if (r->report) {
		r->report->r = r;
		r->report->len = 0;
		r->report->fd.fd = pipefd[0];
		r->report->fd.cb = run_report_cb;
		fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
		if (loop_fd_add(s->loop, &r->report->fd, EPOLLIN, NULL) < 0) {
			free(r->report);
			r->report = NULL;
		}
	}
	if (!r->report)
		close(pipefd[0]);
	/* a stuck start (e.g. a hung NFS rootfs) is ended, not waited for */
	loop_timer_set(s->loop, &r->timer, CTR_START_TIMEOUT_MS);
	r->counted = true;
	s->starting++;
	run_set_state(r, RS_STARTING);
	return 0;
fail:
	if (lock >= 0)
		close(lock);
	run_exited(r, -1, e.msg);
	return -1;
}

/* The monitor's report: "ok PID" once the container's init runs, or
 * "error MESSAGE" (then the monitor exits and its pidfd tells). */
static void run_report_cb(struct loop_fd *f, uint32_t events)
{
	struct run_report *rep = container_of(f, struct run_report, fd);
	struct ctr_run *r = rep->r;
	ssize_t n;
	char *nl;

	(void)events;
	n = read(f->fd, rep->line + rep->len, REPORT_MAX - 1 - rep->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		rep->len += (size_t)n;
		rep->line[rep->len] = '\0';
		nl = strchr(rep->line, '\n');
		if (!nl && rep->len < REPORT_MAX - 1)
			return;
		if (nl)
			*nl = '\0';
	} else {
		rep->line[rep->len] = '\0';
	}
	/* the report is in: r lets go of it (freed below, once read) */
	fd_unwatch(r->s, &rep->fd);
	r->report = NULL;
	start_slot_free(r);
	if (!strncmp(rep->line, "ok ", 3)) {
		r->init = (pid_t)atoi(rep->line + 3);
		free(rep);
		LOG(r->s, LOG_INFO, "container %s: started (pid %d)", r->name, (int)r->init);
		run_event(r, r->again ? "restarted" : "started", -1, NULL);
		r->again = false;
		if (r->state == RS_STOPPING) {
			run_record(r);      /* a stop came meanwhile: its timer runs */
			return;
		}
		loop_timer_cancel(r->s->loop, &r->timer);
		run_set_state(r, RS_RUNNING);
		return;
	}
	/* the monitor said why (or ended silently); its exit comes by pidfd */
	run_set_error(r, !strncmp(rep->line, "error ", 6) ? rep->line + 6 :
		      "the monitor ended without reporting (see the container's log)");
	free(rep);
}

/* ---- exits, policy, back-off ---------------------------------------------------- */

static void run_apply_policy(struct ctr_run *r)
{
	struct ctr_sup *s = r->s;
	const struct ctr_spec *sp = s->lookup(s->ctx, r->name);
	bool failed = r->error || r->exit_code != 0;
	enum restart_policy pol = sp ? sp->cfg->restart : RESTART_NO;
	uint64_t up;

	if (!(pol == RESTART_ALWAYS || (pol == RESTART_ON_FAILURE && failed)) || s->shutting_down) {
		run_set_state(r, r->error ? RS_ERROR : RS_EXITED);
		return;
	}
	up = r->started_ms && loop_now_ms() > r->started_ms ? loop_now_ms() - r->started_ms : 0;
	if (up >= CTR_BACKOFF_RESET_S * 1000 || !r->backoff_s)
		r->backoff_s = CTR_BACKOFF_FIRST_S;
	else
		r->backoff_s = r->backoff_s * 2 > CTR_BACKOFF_MAX_S ? CTR_BACKOFF_MAX_S
								   : r->backoff_s * 2;
	r->next_try_ms = loop_now_ms() + (uint64_t)r->backoff_s * 1000;
	loop_timer_set(s->loop, &r->timer, (uint64_t)r->backoff_s * 1000);
	run_set_state(r, RS_BACKOFF);
	LOG(s, LOG_INFO, "container %s: restarting in %u s (restart = %s)", r->name,
	    (unsigned)r->backoff_s,
	    pol == RESTART_ALWAYS ? "always" : "on-failure");
}

static void run_clean_files(struct ctr_run *r)
{
	char path[4096];

	ctr_path(r, "monitor", path, sizeof(path));
	unlink(path);
	ctr_path(r, "exit", path, sizeof(path));
	unlink(path);
}

/* r's process is gone: exit code (or -1 with error for a failed start). */
static void run_exited(struct ctr_run *r, int code, const char *error)
{
	struct ctr_sup *s = r->s;
	enum ctr_stop_why why = r->stopping;

	fd_unwatch(s, &r->pidfd);
	report_free(r);
	loop_timer_cancel(s->loop, &r->timer);
	start_slot_free(r);
	r->monitor = 0;
	r->init = 0;
	r->exit_code = code;
	r->exited_at = (int64_t)time(NULL);
	r->stopping = 0;
	run_set_error(r, error);
	if (r->error && code < 0)
		LOG(s, LOG_ERROR, "container %s: cannot start: %s", r->name, r->error);
	else if (r->error)
		LOG(s, LOG_ERROR, "container %s: %s", r->name, r->error);
	else
		LOG(s, LOG_INFO, "container %s: exited with code %d", r->name, code);
	run_event(r, why ? "stopped" : "died", code, r->error);
	r->again = why == CTR_STOP_RESTART;
	switch (why) {
	case CTR_STOP_USER:
		run_set_state(r, RS_STOPPED);
		break;
	case CTR_STOP_RESTART:
	case CTR_STOP_OWNER:
		/* started again by ctr_sync, once the owner has brought the
		 * network in line (an address handed over, say) */
		run_set_state(r, RS_CREATED);
		break;
	case CTR_STOP_SHUTDOWN:
		run_set_state(r, RS_EXITED);
		run_clean_files(r);             /* a clean stop: the next daemon adopts nothing */
		break;
	default:
		if (r->want)
			run_apply_policy(r);
		else
			run_set_state(r, RS_STOPPED);
		return;
	}
	if (s->on_gone)
		s->on_gone(s->ctx, r->name);    /* may free r (ctr_forget) */
}

/* "status=N\nfinished=T\nerror=MSG\n" as the monitor left it; finished
 * (unix seconds) into r->exited_at when given. */
static bool read_exit(struct ctr_run *r, int *code, char *error, size_t size)
{
	char path[4096], text[ERR_MSG_MAX + 128], *p;
	ssize_t n;
	int fd;

	ctr_path(r, "exit", path, sizeof(path));
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
	if ((p = strstr(text, "\nfinished=")) && atoll(p + 10) > 0)
		r->exited_at = atoll(p + 10);
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
	if (r->report)
		run_report_cb(&r->report->fd, EPOLLIN); /* what it said before going */
	if (r->child && waitpid(r->monitor, &st, WNOHANG) == r->monitor)
		r->child = false;
	if (!read_exit(r, &code, error, sizeof(error))) {
		if (r->error && r->state == RS_STARTING) {
			code = -1;
			snprintf(error, sizeof(error), "%s", r->error);
		} else {
			code = 137;
			snprintf(error, sizeof(error), "its monitor (pid %d) was killed; the "
				 "container went with it", (int)r->monitor);
		}
	}
	run_exited(r, code, error);
}

static void run_pidfd_cb(struct loop_fd *f, uint32_t events)
{
	(void)events;
	run_monitor_gone(container_of(f, struct ctr_run, pidfd));
}

/* A monitor we cannot watch through a pidfd: is it gone? */
static bool run_monitor_ended(struct ctr_run *r)
{
	int st;

	if (r->child)
		return waitpid(r->monitor, &st, WNOHANG) == r->monitor && !(r->child = false);
	return kill(r->monitor, 0) < 0 && errno == ESRCH;
}

static void run_timer_cb(struct loop_timer *t)
{
	struct ctr_run *r = container_of(t, struct ctr_run, timer);
	struct ctr_sup *s = r->s;
	char boot[64];

	switch (r->state) {
	case RS_STARTING:
		LOG(s, LOG_ERROR, "container %s: the monitor did not report within %d s: SIGKILL",
		    r->name, CTR_START_TIMEOUT_MS / 1000);
		snprintf(boot, sizeof(boot), "the monitor did not report within %d s",
			 CTR_START_TIMEOUT_MS / 1000);
		run_set_error(r, boot);
		kill(r->monitor, SIGKILL);
		return;
	case RS_STOPPING:
		if (r->pidfd.fd < 0 && run_monitor_ended(r)) {
			run_monitor_gone(r);
			return;
		}
		if (r->next_try_ms && loop_now_ms() < r->next_try_ms) {
			loop_timer_set(s->loop, &r->timer, 200);   /* no pidfd: poll by pid */
			return;
		}
		/* the monitor did not end the container in time: ending the
		 * monitor ends it (the init's parent-death signal) */
		LOG(s, LOG_WARN, "container %s: did not stop in time: SIGKILL", r->name);
		kill(r->monitor, SIGKILL);
		r->next_try_ms = 0;
		if (r->pidfd.fd < 0)
			loop_timer_set(s->loop, &r->timer, 200);
		return;
	case RS_BACKOFF:
		if (!r->want)
			return;
		r->restarts++;
		r->again = true;
		run_start(r);
		return;
	case RS_CREATED:
		/* the lock was taken: adopt its holder once it has said who it is */
		ctr_boot_id(boot, sizeof(boot));
		if (!run_adopt_files(r, boot, NULL))
			run_start(r);
		return;
	default:
		return;
	}
}

void ctr_on_sigchld(struct ctr_sup *s)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		bool monitor = false;

		for (struct ctr_run *r = s->runs; r; r = r->next) {
			if (r->monitor == pid && r->child) {
				r->child = false;       /* reaped */
				monitor = true;
				run_monitor_gone(r);
				break;
			}
		}
		if (!monitor && s->on_reap)
			s->on_reap(s->ctx, pid, st);    /* the owner's own child */
	}
}

/* ---- stop ----------------------------------------------------------------------- */

/* SIGTERM to the monitor (it forwards to the container), the SIGKILL timer.
 * timeout: this stop's seconds before SIGKILL (the container's stop_timeout,
 * or `berth stop -t`'s). */
static void run_signal_stop(struct ctr_run *r, enum ctr_stop_why why, unsigned timeout)
{
	struct ctr_sup *s = r->s;
	uint64_t grace = (uint64_t)timeout * 1000 + STOP_GRACE_EXTRA_MS;

	r->stopping = why;
	/* the timeout travels with the signal: the monitor's spec has the
	 * stop_timeout of its start, which a reload may have changed since */
	sigqueue(r->monitor, SIGTERM, (union sigval){ .sival_int = (int)timeout + 1 });
	r->state = RS_STOPPING;
	r->next_try_ms = loop_now_ms() + grace;
	loop_timer_set(s->loop, &r->timer, r->pidfd.fd < 0 ? 200 : grace);
	run_record(r);              /* the reason is durable before we go on */
	changed(r);
	if (r->stop_signal && r->stop_signal != SIGTERM)
		LOG(s, LOG_INFO, "container %s: stopping (signal %d, its image's StopSignal; "
		    "SIGKILL after %u s)", r->name, (int)r->stop_signal, timeout);
	else
		LOG(s, LOG_INFO, "container %s: stopping (SIGTERM, SIGKILL after %u s)", r->name,
		    timeout);
}

/* Where a stop of why leaves a run that has no process. */
static enum run_state stopped_state(enum ctr_stop_why why)
{
	return why == CTR_STOP_USER ? RS_STOPPED : why == CTR_STOP_SHUTDOWN ? RS_EXITED : RS_CREATED;
}

/* ctr_stop with this stop's own timeout (seconds before SIGKILL). A stop
 * already under way takes a shorter one: its SIGKILL comes sooner. */
static bool run_stop(struct ctr_run *r, enum ctr_stop_why why, unsigned timeout)
{
	struct ctr_sup *s = r->s;

	if (why == CTR_STOP_USER)
		r->want = false;
	else if (why == CTR_STOP_RESTART)
		r->want = true;
	if (r->state == RS_STOPPING) {
		/* already on its way: the owner's network change and the shutdown
		 * outrank a user's stop or restart; between those, the last wins */
		if (r->stopping < CTR_STOP_OWNER || why > r->stopping)
			r->stopping = why;
		run_record(r);
		if (timeout != r->stop_timeout && r->next_try_ms &&
		    loop_now_ms() + (uint64_t)timeout * 1000 + STOP_GRACE_EXTRA_MS < r->next_try_ms) {
			sigqueue(r->monitor, SIGTERM, (union sigval){ .sival_int = (int)timeout + 1 });
			r->next_try_ms = loop_now_ms() + (uint64_t)timeout * 1000 + STOP_GRACE_EXTRA_MS;
			loop_timer_set(s->loop, &r->timer, r->pidfd.fd < 0 ? 200 :
				       (uint64_t)timeout * 1000 + STOP_GRACE_EXTRA_MS);
		}
		return true;
	}
	if (!r->monitor) {
		loop_timer_cancel(s->loop, &r->timer);
		r->queued = false;
		if (r->state == RS_BACKOFF || why == CTR_STOP_USER)
			run_set_state(r, stopped_state(why));
		return false;
	}
	run_signal_stop(r, why, timeout);
	return true;
}

bool ctr_stop(struct ctr_sup *s, const char *name, enum ctr_stop_why why)
{
	struct ctr_run *r = run_find(s, name);

	return r && run_stop(r, why, r->stop_timeout);
}

bool ctr_busy(const struct ctr_sup *s, const char *name)
{
	const struct ctr_run *r = run_find(s, name);

	return r && r->monitor;
}

bool ctr_running(const struct ctr_sup *s, const char *name)
{
	const struct ctr_run *r = run_find(s, name);

	return r && r->monitor && r->state == RS_RUNNING;
}

bool ctr_stopping(const struct ctr_sup *s, const char *name)
{
	const struct ctr_run *r = run_find(s, name);

	return r && r->monitor && r->state == RS_STOPPING;
}

int ctr_sync(struct ctr_sup *s, const char *name, struct err *e)
{
	const struct ctr_spec *sp = s->lookup(s->ctx, name);
	struct ctr_run *r = run_find(s, name);
	uint64_t h;

	if (!sp || s->shutting_down)
		return 0;
	if (!r)
		r = run_new(s, name);
	r->stop_timeout = sp->cfg->stop_timeout;
	h = run_hash(sp);
	/* its image is not at hand (being pulled again, say): what runs is
	 * taken as what is configured, until the spec has the image */
	if (sp->cfg->image && !sp->image && r->has_hash)
		h = r->hash;
	if (r->monitor && run_hash_is(r, h) && r->warning == WARN_NEW_CANNOT_START)
		r->warning = NULL;          /* the configuration it runs is back */
	if (r->exit_pending) {
		/* it ended while no daemon watched: a restart or a changed
		 * configuration starts it again, anything else is the policy's */
		r->exit_pending = false;
		if (!run_hash_is(r, h) || !r->want)
			r->state = r->want ? RS_CREATED : RS_STOPPED;
		else
			run_apply_policy(r);
	}
	if (r->monitor && r->state != RS_STOPPING && !run_hash_is(r, h)) {
		bool fatal;

		/* a new definition that cannot start does not cost the old one */
		if (config_container_preflight(sp->cfg, &fatal, e) < 0) {
			r->warning = WARN_NEW_CANNOT_START;
			LOG(s, LOG_ERROR, "container %s: %s: %s", name, r->warning, e->msg);
			return err_wrap(e, "%s", r->warning);
		}
		LOG(s, LOG_INFO, "container %s: its configuration changed: restarting it", name);
		run_signal_stop(r, CTR_STOP_RESTART, r->stop_timeout);
		return 0;
	}
	if (!r->monitor && !run_hash_is(r, h) &&
	    (r->state == RS_EXITED || r->state == RS_ERROR || r->state == RS_BACKOFF)) {
		loop_timer_cancel(s->loop, &r->timer);
		r->state = RS_CREATED;      /* a new configuration gets a new try */
		r->backoff_s = 0;
	}
	if (sp->blocked || !r->want) {
		if (!r->want && r->state == RS_CREATED)
			run_set_state(r, RS_STOPPED);
		return 0;
	}
	if (r->state == RS_CREATED && !r->timer.pending)
		run_start(r);
	return 0;
}

/* Delete what dirfd holds (its entries, depth-first; links not followed:
 * an image's upper directory holds what the container wrote). Bounded by
 * depth so that a hostile tree cannot exhaust the daemon's stack. */
static void rm_tree_at(int dirfd, int depth)
{
	DIR *d;
	struct dirent *de;

	if (depth > 256) {
		close(dirfd);
		return;
	}
	d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d))) {
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			continue;
		fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		rm_tree_at(fd, depth + 1);
		unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void rm_tree(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	/* overlayfs's work directory keeps a mode-0 "work" inside */
	rm_tree_at(fd, 0);
	rmdir(path);
}

void ctr_forget(struct ctr_sup *s, const char *name)
{
	static const char *const files[] = { "spec", "hosts", "hostname", "resolv.conf",
					     "monitor", "exit", "lock", "root", NULL };
	struct ctr_run *r = run_find(s, name);
	char path[4096];

	if (r && r->monitor)
		return;             /* never while a process may use them */
	ctr_path_of(s, name, "upper", path, sizeof(path));
	rm_tree(path);
	ctr_path_of(s, name, "work", path, sizeof(path));
	rm_tree(path);
	for (size_t k = 0; files[k]; k++) {
		ctr_path_of(s, name, files[k], path, sizeof(path));
		if (unlink(path) < 0)
			rmdir(path);
	}
	ctr_path_of(s, name, NULL, path, sizeof(path));
	rmdir(path);
	if (r)
		run_free(r);
}

void ctr_prune(struct ctr_sup *s)
{
	struct ctr_run *r = s->runs, *next;

	for (; r; r = next) {
		next = r->next;
		if (!r->monitor && !s->lookup(s->ctx, r->name)) {
			LOG(s, LOG_INFO, "container %s: no longer configured: removed", r->name);
			ctr_forget(s, r->name);
		}
	}
}

bool ctr_any_busy(const struct ctr_sup *s)
{
	for (const struct ctr_run *r = s->runs; r; r = r->next)
		if (r->monitor)
			return true;
	return false;
}

size_t ctr_each_stopping(const struct ctr_sup *s, ctr_name_fn *fn, void *ctx)
{
	size_t n = 0;

	for (const struct ctr_run *r = s->runs; r; r = r->next)
		if (r->monitor && r->state == RS_STOPPING) {
			fn(ctx, r->name);
			n++;
		}
	return n;
}

size_t ctr_shutdown(struct ctr_sup *s, bool stop)
{
	size_t n = 0, left = 0;

	for (struct ctr_run *r = s->runs; r; r = r->next)
		n += r->monitor != 0;
	s->shutting_down = true;
	if (!stop) {
		if (n)
			LOG(s, LOG_INFO, "leaving %zu container%s running for the next daemon", n,
			    n == 1 ? "" : "s");
		return 0;
	}
	for (struct ctr_run *r = s->runs; r; r = r->next) {
		loop_timer_cancel(s->loop, &r->timer);
		if (r->monitor) {
			if (r->state == RS_STOPPING)
				r->stopping = CTR_STOP_SHUTDOWN;
			else
				run_signal_stop(r, CTR_STOP_SHUTDOWN, r->stop_timeout);
			left++;
		} else {
			/* a clean stop: the next daemon starts every container
			 * afresh (those in back-off or exited too) */
			run_clean_files(r);
		}
	}
	return left;
}

void ctr_sup_init(struct ctr_sup *s, struct loop *l, struct store *st, const char *state_dir)
{
	s->loop = l;
	s->store = st;
	s->state_dir = state_dir;
	s->runs = NULL;
	s->by_name = (struct name_index){ .name_of = run_name };
	s->shutting_down = false;
}

void ctr_sup_free(struct ctr_sup *s)
{
	while (s->runs)
		run_free(s->runs);
	name_index_free(&s->by_name);
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

/* Take over the monitor r's files name, if it is alive and of this boot.
 * Returns true when r now watches it; else the pid the file names (a
 * monitor that is gone), if any, goes to *seen, for messages only: that pid
 * may be anyone's by now. */
static bool run_adopt_files(struct ctr_run *r, const char *boot, pid_t *seen)
{
	char path[4096], text[1024], v[128];
	uint64_t start;
	ssize_t n;
	pid_t mon;
	int fd;

	ctr_path(r, "monitor", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;       /* never started, or cleanly stopped */
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	if (!kv(text, "boot", v, sizeof(v)) || strcmp(v, boot))
		return false;       /* from before a reboot: nothing to adopt */
	if (kv(text, "hash", v, sizeof(v))) {
		/* what run_hash wrote: 16 hex digits; anything else matches nothing */
		r->hash = strtoull(v, NULL, 16);
		r->has_hash = strlen(v) == 16 && strspn(v, "0123456789abcdef") == 16;
	}
	r->started_at = kv(text, "started", v, sizeof(v)) ? atoll(v) : 0;
	mon = kv(text, "monitor", v, sizeof(v)) ? (pid_t)atoi(v) : 0;
	start = kv(text, "start", v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
	if (mon <= 0)
		return false;
	fd = (int)syscall(SYS_pidfd_open, mon, 0);
	/* the pidfd first, then the start time: if they match, the pidfd is
	 * that monitor and not a process that got its pid later */
	if (fd < 0 || !start || ctr_proc_start(mon) != start) {
		if (fd >= 0)
			close(fd);
		if (seen)
			*seen = mon;
		return false;
	}
	loop_timer_cancel(r->s->loop, &r->timer);
	r->monitor = mon;
	r->child = false;
	r->init = kv(text, "init", v, sizeof(v)) ? (pid_t)atoi(v) : 0;
	r->started_ms = loop_now_ms() -
		(uint64_t)((int64_t)time(NULL) - r->started_at > 0 ?
			   ((int64_t)time(NULL) - r->started_at) * 1000 : 0);
	run_watch(r, fd);
	r->state = RS_RUNNING;
	r->exit_pending = false;
	LOG(r->s, LOG_INFO, "container %s: adopted its running monitor (pid %d, container pid %d)",
	    r->name, (int)mon, (int)r->init);
	return true;
}

static void adopt_one(struct ctr_sup *s, const char *name, const char *boot)
{
	struct store_container sc = { 0 };
	char error[ERR_MSG_MAX];
	struct ctr_run *r;
	bool restarting, stopping;
	pid_t gone = 0;
	int code;

	if (strlen(name) >= STORE_NAME_MAX)
		return;
	r = run_new(s, name);
	if (s->store)
		store_container_get(s->store, name, &sc, NULL);
	restarting = !strcmp(sc.state, "restarting");
	stopping = !strcmp(sc.state, "stopping");
	if (run_adopt_files(r, boot, &gone)) {
		/* a stop the previous daemon had begun goes on */
		if (restarting || stopping) {
			r->stop_timeout = 10;
			run_signal_stop(r, restarting ? CTR_STOP_RESTART : CTR_STOP_USER,
					r->stop_timeout);
		}
		return;
	}
	if (restarting) {
		/* its old process is gone: the restart's start is still owed */
		r->state = RS_CREATED;
		LOG(s, LOG_INFO, "container %s: finishing the restart a previous daemon began", name);
		return;
	}
	/* it ended while no daemon was watching: the policy decides, once the
	 * configuration is loaded (ctr_sync) */
	if (read_exit(r, &code, error, sizeof(error))) {
		r->exit_code = code;
		run_set_error(r, error);
	} else if (gone) {
		r->exit_code = 137;
		snprintf(error, sizeof(error), "its monitor (pid %d) was killed while the daemon "
			 "was down", (int)gone);
		run_set_error(r, error);
	} else {
		run_free(r);        /* never started, or cleanly stopped */
		return;
	}
	r->state = stopping ? RS_STOPPED : RS_EXITED;
	r->exit_pending = !stopping;
	LOG(s, LOG_INFO, "container %s: exited (code %d) while the daemon was down", name,
	    r->exit_code);
}

void ctr_adopt(struct ctr_sup *s)
{
	char dir[4096], boot[64];
	struct dirent *de;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/ctr", s->state_dir);
	dp = opendir(dir);
	if (!dp)
		return;
	ctr_boot_id(boot, sizeof(boot));
	while ((de = readdir(dp)))
		if (de->d_name[0] != '.')
			adopt_one(s, de->d_name, boot);
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

void ctr_status(const struct ctr_sup *s, const char *name, struct ctr_status *st)
{
	const struct ctr_spec *sp = s->lookup(s->ctx, name);
	const struct ctr_run *r = run_find(s, name);
	int64_t now = (int64_t)time(NULL);
	char t[32];

	memset(st, 0, sizeof(*st));
	st->exit_code = -1;
	st->error = "";
	st->warning = "";
	if (sp && sp->blocked && !(r && r->monitor)) {
		st->state = sp->blocked_wait ? "pulling" : "error";
		st->error = sp->blocked_wait ? "" : sp->blocked;
		snprintf(st->status, sizeof(st->status), "%s",
			 sp->blocked_status ? sp->blocked_status : "network not set up");
		if (r && sp->blocked_status) {
			/* what it waits for says more than how it last ended */
			st->restarts = r->restarts;
			st->exit_code = r->exit_code;
			st->started_at = r->started_at;
			st->warning = r->warning ? r->warning : "";
			return;
		}
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
		st->error = r->error ? r->error : "";
	st->warning = r->warning ? r->warning : "";
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
	case RS_STOPPING:
		snprintf(st->status, sizeof(st->status), "%s", !sp ? "stopping (removed)" :
			 r->want ? "stopping (restart follows)" : "stopping");
		break;
	case RS_EXITED:
	case RS_STOPPED:
	case RS_ERROR:
		if (!r->exited_at) {
			snprintf(st->status, sizeof(st->status), "-");
			break;
		}
		fmt_duration(t, sizeof(t), now > r->exited_at ? (uint64_t)(now - r->exited_at) : 0);
		if (r->exit_code >= 0)
			snprintf(st->status, sizeof(st->status), "%s (%d) %s ago",
				 r->state == RS_STOPPED ? "stopped" : "exited", r->exit_code, t);
		else
			snprintf(st->status, sizeof(st->status), "failed to start %s ago", t);
		break;
	default:
		if (r->queued)
			snprintf(st->status, sizeof(st->status), "waiting to start (%u starting)",
				 s->starting);
		else
			snprintf(st->status, sizeof(st->status), "%s", state_names[r->state]);
		break;
	}
}

/* ---- requests ---------------------------------------------------------------------- */

static int req_start(struct ctr_run *r, const struct ctr_spec *sp, struct buf *out,
		     struct err *e)
{
	if (sp->blocked && !r->monitor)
		return err_set(e, EINVAL, "container %s cannot start: %s", r->name, sp->blocked);
	r->want = true;
	if (r->state == RS_RUNNING || r->state == RS_STARTING) {
		buf_printf(out, "%s " CTR_ALREADY_RUNNING " (pid %d)\n", r->name, (int)r->init);
		return 0;
	}
	if (r->state == RS_STOPPING)
		return err_set(e, EBUSY, "container %s is stopping; start it once it has stopped",
			       r->name);
	r->backoff_s = 0;
	if (run_start(r) < 0)
		return err_set(e, EINVAL, "container %s cannot start: %s", r->name,
			       r->error ? r->error : "unknown reason");
	buf_printf(out, "starting %s\n", r->name);
	return 0;
}

static int req_stop(struct ctr_run *r, bool restart, unsigned timeout, struct buf *out)
{
	bool waiting = r->state == RS_BACKOFF;

	if (run_stop(r, restart ? CTR_STOP_RESTART : CTR_STOP_USER, timeout)) {
		buf_printf(out, "stopping %s (SIGTERM, SIGKILL after %u s)\n", r->name, timeout);
		return 0;
	}
	if (waiting && !restart) {
		buf_printf(out, "stopped %s (it was waiting to restart)\n", r->name);
		return 0;
	}
	if (restart) {
		r->backoff_s = 0;
		r->state = RS_CREATED;
		ctr_sync(r->s, r->name, &(struct err){ 0 });
		buf_printf(out, "starting %s\n", r->name);
		return 0;
	}
	buf_printf(out, "%s " CTR_NOT_RUNNING "\n", r->name);
	return 0;
}

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* The parent pid of pid (field 4 of /proc/PID/stat), or 0. */
static pid_t proc_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/* sig to r's init (its command with init = no; berth's init forwards it to
 * the command). The pid is the one the monitor cloned: it is taken as a
 * pidfd only while it is still the monitor's child, so a pid the kernel
 * handed out again is never signalled. */
static int run_kill(struct ctr_run *r, int sig, struct err *e)
{
	int fd, ret;

	if (!r->monitor || !r->init || (r->state != RS_RUNNING && r->state != RS_STOPPING))
		return err_set(e, ESRCH, "container %s " CTR_NOT_RUNNING, r->name);
	fd = (int)syscall(SYS_pidfd_open, r->init, 0);
	if (fd < 0 && errno != ENOSYS)
		return err_set(e, ESRCH, "container %s " CTR_NOT_RUNNING, r->name);
	if (proc_ppid(r->init) != r->monitor) {
		if (fd >= 0)
			close(fd);
		return err_set(e, ESRCH, "container %s " CTR_NOT_RUNNING, r->name);
	}
	if (fd >= 0) {
		ret = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
		close(fd);
	} else {
		ret = kill(r->init, sig);   /* before 5.3: the check above, then kill */
	}
	if (ret < 0)
		return err_sys(e, errno, "signal %d to container %s (pid %d)", sig, r->name,
			       (int)r->init);
	LOG(r->s, LOG_INFO, "container %s: signal %d (berth kill)", r->name, sig);
	return 0;
}

int ctr_kill(struct ctr_sup *s, const char *name, int sig, struct err *e)
{
	struct ctr_run *r = run_find(s, name);

	if (!r)
		return err_set(e, ESRCH, "container %s " CTR_NOT_RUNNING, name);
	return run_kill(r, sig, e);
}

static int req_kill(struct ctr_run *r, const char *arg, struct buf *out, struct err *e)
{
	char *end;
	long sig;

	errno = 0;
	sig = strtol(arg, &end, 10);
	if (errno || *end || end == arg || sig < 1 || sig >= _NSIG)
		return err_set(e, EINVAL, "kill takes a signal number (1..%d), not '%s'", _NSIG - 1,
			       arg);
	if (run_kill(r, (int)sig, e) < 0)
		return -1;
	buf_printf(out, "sent signal %ld to %s (pid %d)\n", sig, r->name, (int)r->init);
	return 0;
}

static int req_logs(struct ctr_sup *s, const struct ctl_request *rq, const char *name,
		    struct buf *out, struct err *e)
{
	const char *from = NULL;
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
		char line[64];

		/* reserve the cursor line, fill it in after reading */
		buf_printf(out, "cursor %-40.40s\n", "");
		if (ctr_log_from(s->state_dir, name, from, out, next, sizeof(next), e) < 0) {
			out->len = at;
			return -1;
		}
		snprintf(line, sizeof(line), "cursor %-40.40s\n", next);
		memcpy(out->data + at, line, 48);
		return 0;
	}
	if (cursor) {
		ctr_log_cursor(s->state_dir, name, next, sizeof(next));
		buf_printf(out, "cursor %-40.40s\n", next);
	}
	return ctr_log_read(s->state_dir, name, tail, out, e);
}

static void exec_env_line(struct buf *b, const char *val)
{
	buf_printf(b, "env=%s\n", val);
}

/* An image's records as exec-info lines: its env, user and groups, and its
 * working directory as cwd. */
static void exec_image_line(struct buf *b, const char *key, const char *val)
{
	if (strchr(val, '\n'))
		return;             /* cannot travel in this line format */
	if (!strcmp(key, "env") || !strcmp(key, "user") || !strcmp(key, "groups"))
		buf_printf(b, "%s=%s\n", key, val);
	else if (!strcmp(key, "workdir"))
		buf_printf(b, "cwd=%s\n", val);
}

static int req_exec_info(const struct ctr_run *r, const struct ctr_spec *sp, struct buf *out,
			 struct err *e)
{
	const struct cfg_container *cc = sp->cfg;
	size_t at;

	if (r->state != RS_RUNNING || !r->init)
		return err_set(e, ESRCH, "container %s is not running (%s)", r->name,
			       state_names[r->state]);
	buf_printf(out, "pid=%d\nstart=%" PRIu64 "\n", (int)r->init, ctr_proc_start(r->init));
	if ((cc->memory || cc->cpus_milli) && ctr_cgroup2())
		buf_printf(out, "cgroup=%s/%s\n", CTR_CGROUP_ROOT, cc->name);
	if (sp->image) {
		/* as the container's process runs: its user, directory, env */
		at = out->len;
		if (image_put(r->s, sp, exec_image_line, out, e) < 0)
			return -1;
		if (!memmem(out->data + at, out->len - at, "cwd=", 4))
			buf_puts(out, "cwd=/\n");
		return 0;
	}
	buf_puts(out, "cwd=/\n");
	default_env(cc, exec_env_line, out);
	for (size_t i = 0; i < cc->n_env; i++) {
		if (strchr(cc->env[i], '\n'))
			continue;   /* cannot travel in this line format */
		buf_printf(out, "env=%s\n", cc->env[i]);
	}
	return 0;
}

int ctr_exec_info(struct ctr_sup *s, const char *name, struct buf *out, struct err *e)
{
	const struct ctr_spec *sp = s->lookup(s->ctx, name);
	struct ctr_run *r = sp ? run_find(s, sp->cfg->name) : NULL;

	if (!r)
		return err_set(e, ENOENT, "no container %s", name);
	return req_exec_info(r, sp, out, e);
}

bool ctr_restart(struct ctr_sup *s, const char *name)
{
	struct ctr_run *r = run_find(s, name);

	if (!r || r->state != RS_RUNNING)
		return false;
	r->restarts++;
	return run_stop(r, CTR_STOP_RESTART, r->stop_timeout);
}

int ctr_request(struct ctr_sup *s, const struct ctl_request *rq, struct buf *out, struct err *e)
{
	const char *cmd = rq->argv[0];
	const struct ctr_spec *sp;
	struct ctr_run *r;

	bool stop = !strcmp(cmd, "stop") || !strcmp(cmd, "restart");
	unsigned long timeout = ULONG_MAX;

	if (rq->argc < 2 || (strcmp(cmd, "logs") && rq->argc != 2 &&
			     !(!strcmp(cmd, "kill") && rq->argc == 3) &&
			     !(stop && rq->argc == 4 && !strcmp(rq->argv[2], "--time"))) ||
	    (!strcmp(cmd, "kill") && rq->argc != 3))
		return err_set(e, EINVAL, "usage: berth %s NAME%s", cmd,
			       !strcmp(cmd, "logs") ? " [-f] [--tail N]" :
			       !strcmp(cmd, "kill") ? " SIGNUM" : stop ? " [--time SECONDS]" : "");
	if (stop && rq->argc == 4) {
		char *end;

		errno = 0;
		timeout = strtoul(rq->argv[3], &end, 10);
		if (errno || *end || end == rq->argv[3] || rq->argv[3][0] == '-' || timeout > 3600)
			return err_set(e, EINVAL, "-t takes seconds (0..3600), not '%s'", rq->argv[3]);
	}
	sp = s->lookup(s->ctx, rq->argv[1]);
	r = run_find(s, sp ? sp->cfg->name : rq->argv[1]);
	if (!strcmp(cmd, "state") && !sp && r) {
		struct ctr_status st;

		/* a removed container still stopping: `reload --wait` asks */
		ctr_status(s, r->name, &st);
		buf_printf(out, "state=%s\npid=%d\nerror=%s\n", st.state, st.pid, st.error);
		return 0;
	}
	if (!sp)
		return err_set(e, ENOENT, "no container named '%s'", rq->argv[1]);
	if (!strcmp(cmd, "logs"))
		return req_logs(s, rq, sp->cfg->name, out, e);
	if (!r)
		r = run_new(s, sp->cfg->name);
	if (!strcmp(cmd, "start"))
		return req_start(r, sp, out, e);
	if (stop)
		return req_stop(r, !strcmp(cmd, "restart"),
				timeout == ULONG_MAX ? r->stop_timeout : (unsigned)timeout, out);
	if (!strcmp(cmd, "kill"))
		return req_kill(r, rq->argv[2], out, e);
	if (!strcmp(cmd, "exec-info"))
		return req_exec_info(r, sp, out, e);
	if (!strcmp(cmd, "state")) {
		struct ctr_status st;

		ctr_status(s, r->name, &st);
		buf_printf(out, "state=%s\npid=%d\nerror=%s\n", st.state, st.pid, st.error);
		return 0;
	}
	return err_set(e, EINVAL, "unknown command '%s'", cmd);
}
