/* daemon.c - the daemon's life cycle: load the config, lock the state
 * directory, open store/net/dns and the control socket, reconcile, then run
 * the event loop until SIGTERM/SIGINT (SIGHUP reloads). */
#include "runtime/daemon_int.h"
#include "net/svc.h"
#include "runtime/ctl/ctl.h"
#include "runtime/ctr/ctr.h"
#include "dns/dns.h"
#include "net/nat.h"
#include "net/net.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void daemon_log(const struct daemon *d, enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	enum log_level max = d && d->cfg ? d->cfg->daemon.log_level : LOG_INFO;
	va_list ap;

	if (lvl > max)
		return;
	fprintf(stderr, "berth: %s: ", names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int daemon_load_config(const struct daemon *d, bool strict, struct config **out,
		       struct buf *errors_out, struct buf *warnings_out)
{
	struct config_errors errs = { 0 }, warnings = { 0 };
	const char *dir = d->config_dir;
	int ret;

	if (!dir)
		dir = config_default_dir();
	ret = config_load_cached(dir, NULL, d->cfg_cache, out, &errs);
	if (ret == 0) {
		/* a missing rootfs: a reload is refused; at start-up that
		 * container fails on its own and the others come up */
		config_preflight(*out, d->cfg, strict ? &errs : &warnings, &warnings);
		if (errs.n) {
			config_free(*out);
			*out = NULL;
			ret = -EINVAL;
		}
	}
	if (ret == 0) {
		struct rlimit rl;

		/* what `config check` warns about, against the limit we run with */
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			config_warnings(*out, (unsigned long long)rl.rlim_cur, &warnings);
	}
	for (size_t i = 0; i < errs.n; i++)
		buf_printf(errors_out, "%s\n", errs.v[i].msg);
	if (ret < 0 && !errs.n)
		buf_printf(errors_out, "cannot load the configuration from %s\n",
			   dir ? dir : "(embedded default)");
	for (size_t i = 0; i < warnings.n; i++) {
		daemon_log(d, LOG_WARN, "%s", warnings.v[i].msg);
		if (warnings_out)
			buf_printf(warnings_out, "warning: %s\n", warnings.v[i].msg);
	}
	config_errors_free(&errs);
	config_errors_free(&warnings);
	return ret;
}

/* The soft limit of open files is often 1,024 (systemd's default, a login
 * shell's), while a daemon with a thousand containers holds two thousand
 * (config_fds): take all the hard limit allows. Only the administrator can
 * raise the hard one (LimitNOFILE=, ulimit -Hn); `config check` and the
 * start-up log warn when it is too low for the configuration. */
static void daemon_raise_nofile(const struct daemon *d)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		daemon_log(d, LOG_WARN, "cannot raise the open files limit from %llu to %llu: %s",
			   (unsigned long long)was, (unsigned long long)rl.rlim_max,
			   strerror(errno));
		return;
	}
	daemon_log(d, LOG_INFO, "raised the open files limit (RLIMIT_NOFILE) from %llu to "
		   "the hard limit, %llu", (unsigned long long)was,
		   (unsigned long long)rl.rlim_max);
}

/* Tell systemd (Type=notify) about READY=1 / RELOADING=1 / STOPPING=1 without
 * libsystemd: one datagram to $NOTIFY_SOCKET ('@' = abstract). No-op elsewhere. */
static void daemon_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)!sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	close(fd);
}

/*
 * One daemon per state directory: an flock on STATE_DIR/berth.lock, which
 * dies with its holder and also holds the owner's pid for the message the
 * second one prints.
 *
 * "Dies with its holder" takes a moment: kill(2) returns as soon as SIGKILL
 * is queued, and the kernel drops the lock only when the killed daemon's
 * exit closes its descriptors (the lock's among the last: measured 2 to
 * 35 ms after the kill, with the holder still the killed daemon itself, in
 * state R or D; no child holds it, exec_monitor closes it before exec). A
 * daemon started at once after a kill -9, as init systems do, gave up on a
 * lock whose holder was already dying. So the lock is waited for, up to
 * LOCK_WAIT_MS: a dying holder lets go long before that; a live one is
 * reported after it.
 */
#define LOCK_WAIT_MS 2000
#define LOCK_POLL_MS 10

static int daemon_lock(struct daemon *d, const char *state_dir, struct err *e)
{
	const struct timespec nap = { .tv_nsec = LOCK_POLL_MS * 1000000L };
	uint64_t deadline = loop_now_ms() + LOCK_WAIT_MS;
	char path[4096], pid[32] = "";
	int fd, n;

	if (mkdir_p("state directory", state_dir, 0700, e) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/berth.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "open %s", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int en = errno;

		if (en == EINTR || (en == EWOULDBLOCK && loop_now_ms() < deadline)) {
			nanosleep(&nap, NULL);
			continue;
		}
		n = (int)read(fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (en == EWOULDBLOCK)
			return err_set(e, EBUSY, "another berth daemon%s%s%s is using state directory %s",
				       *pid ? " (pid " : "", pid, *pid ? ")" : "", state_dir);
		return err_sys(e, en, "lock %s", path);
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		daemon_log(d, LOG_WARN, "cannot write pid to %s", path);
	d->lock_fd = fd;
	return 0;
}

void daemon_log_ctx(void *ctx, enum log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	daemon_log(ctx, lvl, "%s", msg);
}

/* Make the TLS listener match [remote] of the running config: open, close, or
 * re-read its files and move it (the connected clients finish first). */
static void daemon_remote_apply(struct daemon *d, struct buf *out, struct buf *errors)
{
	const struct cfg_remote *r = &d->cfg->remote;
	struct err e = { 0 };

	if (!r->enabled) {
		if (d->remote) {
			remote_server_retire(d->remote);    /* may be serving this reload */
			d->remote = NULL;
			buf_puts(out, "- remote listener\n");
		}
		return;
	}
	if (!d->remote) {
		d->remote = remote_server_open(&d->loop, r, daemon_on_request, d, daemon_log_ctx, &e);
		if (!d->remote)
			buf_printf(errors, "remote listener: %s\n", e.msg);
		else
			buf_printf(out, "+ remote listener on %s\n", remote_server_addr(d->remote));
		return;
	}
	switch (remote_server_update(d->remote, r, &e)) {
	case 0:
		break;
	case 1:
		buf_printf(out, "~ remote listener on %s\n", remote_server_addr(d->remote));
		break;
	default:
		buf_printf(errors, "remote listener: %s (the previous one stays)\n", e.msg);
	}
}

/* The resolv.conf the upstreams come from changed: its nameservers go to
 * the DNS server at once, without a reload (the running config keeps them,
 * so that a converge sets the same). */
static void daemon_on_resolv_change(struct resolv_watch *w)
{
	struct daemon *d = container_of(w, struct daemon, resolv);
	struct dns_upstream ups[16];        /* as many as reconcile's apply_dns takes */
	const struct cfg_dns *cd;
	struct err e = { 0 };
	struct buf list;
	size_t n = 0;

	if (!d->cfg || !d->dns || !config_reread_resolv_conf(d->cfg))
		return;
	cd = &d->cfg->dns;
	buf_init(&list);
	for (size_t i = 0; i < cd->n_upstreams && n < ARRAY_SIZE(ups); i++) {
		char a[IP_STRLEN];

		ups[n++] = (struct dns_upstream){ .addr = cd->upstreams[i], .port = DNS_PORT };
		buf_printf(&list, "%s%s", i ? ", " : "", ip_format(&cd->upstreams[i], a));
	}
	if (dns_server_set_upstreams(d->dns, ups, n, &e) < 0)
		daemon_log(d, LOG_ERROR, "%s changed: %s", cd->resolv_conf, e.msg);
	else
		daemon_log(d, LOG_INFO, "%s changed: DNS upstreams now %s", cd->resolv_conf,
			   n ? list.data : "none (berth answers its own names only)");
	buf_free(&list);
}

/* Without [dns] upstream, follow the running config's resolv.conf. */
static void daemon_follow_resolv(struct daemon *d)
{
	struct err e = { 0 };

	if (!d->cfg->dns.resolv_conf) {
		resolv_watch_stop(&d->resolv);
		return;
	}
	if (resolv_watch_start(&d->resolv, &d->loop, d->cfg->dns.resolv_conf,
			       daemon_on_resolv_change, &e) < 0)
		daemon_log(d, LOG_WARN, "%s: its changes reach DNS only with a reload", e.msg);
	/* a change between reading it and watching it is not lost */
	daemon_on_resolv_change(&d->resolv);
}

/* The lines of text that start with one of the prefixes (NULL: every
 * line), the first max joined by "; " into sum (with "(and N more)"). */
static size_t lines_summary(const char *text, const char *const *prefixes, size_t max,
			    char *sum, size_t size)
{
	size_t n = 0, off = 0;

	if (size)
		sum[0] = '\0';
	for (const char *p = text ? text : ""; *p;) {
		size_t len = strcspn(p, "\n");
		bool want = !prefixes;

		for (size_t i = 0; prefixes && prefixes[i]; i++)
			want |= !strncmp(p, prefixes[i], strlen(prefixes[i]));
		if (want && len) {
			if (n < max && off < size)
				off += (size_t)snprintf(sum + off, size - off, "%s%.*s", n ? "; " : "",
							(int)len, p);
			n++;
		}
		p += len;
		p += *p == '\n';
	}
	if (n > max && off < size)
		snprintf(sum + off, size - off, " (and %zu more)", n - max);
	return n;
}

#define RELOAD_EVENT_ITEMS 3        /* errors or changes an event names; the log has all */

/*
 * Every reload, whatever asked for it (SIGHUP, `berth reload`, local or
 * remote), comes through here: it is logged with its outcome, and its
 * errors or changes, and recorded as an event (a dry run changes nothing:
 * it is neither). source says who asked ("signal", "request").
 */
static void daemon_reload(struct daemon *d, bool dry_run, const char *source, struct buf *out,
			  struct buf *errors)
{
	static const char *const change[] = { "+ ", "- ", "~ ", NULL };
	struct config *cfg = NULL;
	char sum[480], attrs[96];
	size_t n, problems;

	if (daemon_load_config(d, true, &cfg, errors, out) < 0) {
		d->reload_failures++;
		n = lines_summary(errors->data, NULL, RELOAD_EVENT_ITEMS, sum, sizeof(sum));
		daemon_log(d, LOG_ERROR, "reload (%s) rejected, the running configuration stays: "
			   "%zu error%s:\n%s", source, n, n == 1 ? "" : "s",
			   errors->data ? errors->data : "");
		snprintf(attrs, sizeof(attrs), "source=%s\nerrors=%zu", source, n);
		daemon_event(d, "reload", "rejected", "config", attrs, "%s", sum);
		return;
	}
	if (dry_run) {
		reconcile_diff(d->cfg, cfg, out);
		config_free(cfg);
		daemon_log(d, LOG_DEBUG, "reload --dry-run (%s): nothing applied", source);
		return;
	}
	reconcile_diff(d->cfg, cfg, out);
	d->reloads++;
	reconcile_apply(d, cfg, errors);
	daemon_follow_resolv(d);
	daemon_remote_apply(d, out, errors);
	n = lines_summary(out->data, change, RELOAD_EVENT_ITEMS, sum, sizeof(sum));
	problems = lines_summary(errors->data, NULL, 0, NULL, 0);
	daemon_log(d, LOG_INFO, "reload (%s) applied: %s", source, n ? sum : "no changes");
	if (problems)
		daemon_log(d, LOG_ERROR, "reload (%s): %zu problem%s while applying:\n%s", source,
			   problems, problems == 1 ? "" : "s", errors->data);
	snprintf(attrs, sizeof(attrs), "source=%s\nchanges=%zu\nproblems=%zu", source, n, problems);
	if (problems) {
		char first[480];

		lines_summary(errors->data, NULL, RELOAD_EVENT_ITEMS, first, sizeof(first));
		daemon_event(d, "reload", "applied", "config", attrs, "%s; problems: %s",
			     n ? sum : "no changes", first);
	} else {
		daemon_event(d, "reload", "applied", "config", attrs, "%s", n ? sum : "no changes");
	}
	reload_say_stopping(d, out);
}

/* SIGHUP: reload; a broken config is logged and the running one stays. */
static void daemon_on_sighup(struct daemon *d)
{
	struct buf out, errors;

	buf_init(&out);
	buf_init(&errors);
	daemon_notify("RELOADING=1");
	daemon_log(d, LOG_INFO, "SIGHUP: reloading the configuration");
	daemon_reload(d, false, "signal", &out, &errors);
	daemon_notify("READY=1");
	buf_free(&out);
	buf_free(&errors);
}

int daemon_request_reload(struct daemon *d, bool dry_run, struct buf *out, struct err *e);
int daemon_request_reload(struct daemon *d, bool dry_run, struct buf *out, struct err *e)
{
	struct buf errors;
	size_t before = d->reload_failures;
	int ret = 0;

	if (d->exiting)
		return err_set(e, EAGAIN, "the daemon is stopping");
	buf_init(&errors);
	daemon_reload(d, dry_run, "request", out, &errors);
	if (d->reload_failures != before) {
		size_t n = 0;

		for (size_t i = 0; i < errors.len; i++)
			n += errors.data[i] == '\n';
		ret = err_set(e, EINVAL, "reload rejected: %zu error%s in the configuration; the running configuration stays",
			      n, n == 1 ? "" : "s");
		buf_reset(out);
		buf_append(out, errors.data, errors.len);
	} else if (errors.len) {
		buf_puts(out, "problems while applying:\n");
		buf_append(out, errors.data, errors.len);
	}
	buf_free(&errors);
	return ret;
}

/* run_dir/berth.pid, once the control socket listens (what init scripts
 * and the example config expect): written whole (a temporary file renamed
 * over it), removed at a clean exit. Not the lock: state_dir/berth.lock is. */
static void daemon_pid_file(struct daemon *d, const char *run_dir)
{
	char path[4096], line[32];
	struct err e = { 0 };
	int n;

	snprintf(path, sizeof(path), "%s/berth.pid", run_dir);
	n = snprintf(line, sizeof(line), "%d\n", (int)getpid());
	if (file_write_atomic(path, line, (size_t)n, 0644, false, &e) < 0) {
		daemon_log(d, LOG_WARN, "pid file: %s", e.msg);
		return;
	}
	d->pid_file = strdup(path);
}

/* Remove the pid file if it still names this process. */
static void daemon_pid_file_remove(struct daemon *d)
{
	char line[32] = "";
	FILE *f;

	if (!d->pid_file)
		return;
	f = fopen(d->pid_file, "re");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
		if (atoi(line) == (int)getpid())
			unlink(d->pid_file);
	}
	free(d->pid_file);
	d->pid_file = NULL;
}

/* The longest a SIGTERM may take: every container gets its stop_timeout,
 * then the SIGKILL of its monitor some seconds to take effect. */
static uint64_t daemon_stop_bound_ms(const struct daemon *d)
{
	unsigned longest = 10;

	for (size_t i = 0; i < d->n_ctrs; i++)
		if (d->ctrs[i].cfg->stop_timeout > longest)
			longest = d->ctrs[i].cfg->stop_timeout;
	return (uint64_t)longest * 1000 + DAEMON_STOP_SLACK_MS;
}

static void daemon_on_exit_deadline(struct loop_timer *t)
{
	struct daemon *d = container_of(t, struct daemon, exit_deadline);

	daemon_log(d, LOG_ERROR, "containers did not stop in time (not even at SIGKILL): exiting");
	loop_stop(&d->loop);
}

static void daemon_on_signal(struct loop_fd *f, uint32_t events)
{
	struct daemon *d = container_of(f, struct daemon, sig);
	struct signalfd_siginfo si;

	(void)events;
	while (read(f->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (d->exiting)
				break;
			daemon_log(d, LOG_INFO, "%s, stopping", strsignal((int)si.ssi_signo));
			daemon_notify("STOPPING=1");
			/* pulls stop now, not once the containers have */
			image_mgr_cancel(&d->images);
			/* containers stop on the loop (DNS and the socket still
			 * answer meanwhile); the last one gone stops the loop */
			d->exiting = true;
			if (!ctr_shutdown(&d->sup, true))
				loop_stop(&d->loop);
			else
				loop_timer_set(&d->loop, &d->exit_deadline, daemon_stop_bound_ms(d));
			break;
		case SIGQUIT:
			/* an upgrade in place: the next daemon adopts the containers */
			daemon_log(d, LOG_INFO, "SIGQUIT, stopping; containers keep running");
			d->leave_containers = true;
			image_mgr_cancel(&d->images);
			daemon_notify("STOPPING=1");
			ctr_shutdown(&d->sup, false);
			loop_stop(&d->loop);
			break;
		case SIGHUP:
			daemon_on_sighup(d);
			break;
		case SIGCHLD:
			ctr_on_sigchld(&d->sup);
			break;
		default:
			break;
		}
	}
}

static void daemon_nat_log(void *ctx, enum nat_log_level lvl, const char *msg)
{
	static const enum log_level levels[] = {
		[NAT_LOG_ERROR] = LOG_ERROR, [NAT_LOG_WARN] = LOG_WARN, [NAT_LOG_INFO] = LOG_INFO,
	};

	daemon_log(ctx, levels[lvl], "%s", msg);
}

static void daemon_dns_log(void *ctx, enum dns_log_level lvl, const char *msg)
{
	static const enum log_level levels[] = {
		[DNS_LOG_ERROR] = LOG_ERROR, [DNS_LOG_WARN] = LOG_WARN, [DNS_LOG_INFO] = LOG_INFO,
		[DNS_LOG_DEBUG] = LOG_DEBUG,
	};

	daemon_log(ctx, levels[lvl], "%s", msg);
}

static int daemon_open(struct daemon *d, struct err *e)
{
	const struct cfg_daemon *cd = &d->cfg->daemon;
	char sock[4096];
	sigset_t mask;

	if (daemon_lock(d, cd->state_dir, e) < 0)
		return -1;
	/* A shell starts background jobs with SIGINT ignored, and an ignored
	 * signal is discarded even while blocked: give the signals we read
	 * from the signalfd their default action back. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return err_sys(e, errno, "block signals");
	d->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sig.fd < 0)
		return err_sys(e, errno, "signalfd");
	d->sig.cb = daemon_on_signal;
	if (loop_fd_add(&d->loop, &d->sig, EPOLLIN, e) < 0)
		return -1;
	if (store_open(&d->store, cd->state_dir, e) < 0)
		return -1;
	if (net_open(&d->net, cd->state_dir, e) < 0)
		return -1;
	if (net_worker_start(d, e) < 0) {
		daemon_log(d, LOG_WARN, "%s: interfaces are removed and announced inline", e->msg);
		err_clear(e);
	}
	if (nat_open(&d->nat, &d->loop, daemon_nat_log, d, e) < 0)
		return -1;
	fw_attach(d->nat, &d->fw_part, &d->fw);
	if (svc_open(&d->svc, d->nat, e) < 0)
		return -1;
	d->dns = dns_server_new(&d->loop, &(struct dns_config){ .cache_entries = d->cfg->dns.cache,
				.log = daemon_dns_log, .log_ctx = d }, e);
	if (!d->dns)
		return -1;
	if (mkdir_p("run directory", cd->run_dir, 0755, e) < 0)
		return -1;
	snprintf(sock, sizeof(sock), "%s/berth.sock", cd->run_dir);
	if (ctl_server_open(&d->ctl, &d->loop, sock, daemon_on_request, d, daemon_log_ctx, e) < 0)
		return -1;
	daemon_pid_file(d, cd->run_dir);
	if (d->cfg->remote.enabled) {
		d->remote = remote_server_open(&d->loop, &d->cfg->remote, daemon_on_request, d,
					       daemon_log_ctx, e);
		if (!d->remote)
			return -1;
		daemon_log(d, LOG_INFO, "remote management (TLS) on %s", remote_server_addr(d->remote));
	}
	return 0;
}

static void daemon_close(struct daemon *d)
{
	requests_close(d);          /* replies owed go out before their connections */
	events_close(d);
	images_close(d);            /* workers cancelled and joined, before the store goes */
	remote_server_close(d->remote);
	remote_server_close_retired();
	d->remote = NULL;
	ctl_server_close(&d->ctl);
	resolv_watch_stop(&d->resolv);
	ctr_sup_free(&d->sup);
	loop_timer_cancel(&d->loop, &d->converge);
	loop_timer_cancel(&d->loop, &d->exit_deadline);
	while (d->downs) {
		struct pending_down *pd = d->downs;

		d->downs = pd->next;
		free(pd);       /* the next daemon's reconcile finishes it */
	}
	net_worker_stop(d);         /* its queue is done before the net goes */
	reconcile_shutdown(d);
	cni_free(d);                /* after the containers that borrow from them */
	free(d->state_dir);
	if (d->sig.fd >= 0) {
		loop_fd_del(&d->loop, &d->sig);
		close(d->sig.fd);
	}
	loop_free(&d->loop);
	daemon_pid_file_remove(d);
	if (d->lock_fd >= 0)
		close(d->lock_fd);          /* releases the flock */
}

int daemon_main(const struct daemon_opts *o)
{
	struct daemon d = { .config_dir = o->config_dir, .lock_fd = -1, .sig.fd = -1,
			    .keep_network = o->keep_network };
	struct config *cfg = NULL;
	struct buf errors;
	struct err e = { 0 };
	char sum[128];
	int problems;

	d.started_ms = loop_now_ms();
	d.cfg_cache = config_cache_new();
	if (!d.cfg_cache) {
		fprintf(stderr, "berth: out of memory\n");
		return EXIT_FAIL;
	}
	daemon_raise_nofile(&d);        /* before the config's warnings compare with it */
	buf_init(&errors);
	if (daemon_load_config(&d, false, &cfg, &errors, NULL) < 0) {
		fprintf(stderr, "%sberth: the configuration has errors; not starting\n", errors.data);
		buf_free(&errors);
		config_cache_free(d.cfg_cache);
		return EXIT_FAIL;
	}
	d.cfg = cfg;
	if (loop_init(&d.loop, &e) < 0 || daemon_open(&d, &e) < 0) {
		fprintf(stderr, "berth: %s\n", e.msg);
		daemon_close(&d);
		return EXIT_FAIL;
	}
	reconcile_sup_init(&d);
	events_init(&d);
	if (images_init(&d, &e) < 0) {
		/* containers from a rootfs run all the same */
		daemon_log(&d, LOG_ERROR, "images: %s", e.msg);
		err_clear(&e);
	}
	d.exit_deadline.cb = daemon_on_exit_deadline;
	ctr_adopt(&d.sup);             /* before reconcile: what runs stays running */
	cni_restore(&d);               /* attachments are set up with the rest */
	/* reconcile_apply replaces d.cfg: hand it the config as if it were new */
	d.cfg = NULL;
	problems = reconcile_apply(&d, cfg, &errors);
	daemon_follow_resolv(&d);
	daemon_log(&d, LOG_INFO, "daemon started: %s (%s)%s", config_summary(d.cfg, sum, sizeof(sum)),
		   d.cfg->source, problems ? ", with problems (see above)" : "");
	daemon_event(&d, "daemon", "started", NULL, NULL, "pid %d, %s (%s)%s", (int)getpid(), sum,
		     d.cfg->source, problems ? ", with problems" : "");
	buf_free(&errors);
	daemon_notify("READY=1");      /* the control socket answers from here on */
	if (loop_run(&d.loop) < 0)
		daemon_log(&d, LOG_ERROR, "event loop: %s", strerror(errno));
	daemon_event(&d, "daemon", "stopped", NULL, NULL, "%s", d.leave_containers ?
		     "SIGQUIT: containers keep running" : "clean exit");
	daemon_close(&d);
	fprintf(stderr, "berth: stopped\n");
	return EXIT_OK;
}
