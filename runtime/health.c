/* health.c - containers' health checks (issue 23), run by the daemon.
 *
 * Design decisions:
 *  - Docker's state machine: "starting" from each start of the process,
 *    "healthy" after a probe succeeds, "unhealthy" after health_retries
 *    failures in a row; failures within health_start_period of the start
 *    do not count while it is still starting. Defaults: interval 10 s (the
 *    issue's), timeout 5 s, retries 3, start_period 0 (docker's are 30 s,
 *    30 s, 3, 0: a gateway wants to notice sooner, and a probe that takes
 *    5 s on a local socket is a failure). The first probe comes one interval
 *    after the start, as docker's; the next one interval after the end of
 *    the previous probe.
 *  - tcp and http probes never leave the loop: the socket is created in the
 *    container's network namespace (setns there, socket(), setns back: a
 *    socket keeps the namespace it was made in) and is non-blocking. They
 *    connect to 127.0.0.1 inside that namespace, not to the container's
 *    address on its bridge: a check asks whether the process answers (as
 *    docker's HEALTHCHECK curl localhost does), whatever its networks, and
 *    neither the firewall's policies (host -> container may be denied)
 *    nor a network being re-created change the answer.
 *  - exec probes run like `berth exec` (ctr_join_spawn): the daemon forks
 *    the joining process and watches it through a pidfd; at the timeout it
 *    gets SIGKILL and the command with it (its parent-death signal). Its
 *    status comes from waitid on the pidfd, or from the supervisor's
 *    SIGCHLD reaping (on_reap) when that came first.
 *  - One timer per container (the next probe, or the running probe's
 *    timeout) and one or two fds only while a probe runs; the output kept is
 *    a fixed HEALTH_OUT_MAX bytes, nothing is allocated per probe.
 *  - Service membership (DNS): a container with a check is in its service's
 *    answers only while its process runs and it is healthy (Kubernetes
 *    readiness: not before its first success), and leaves at the probe that
 *    makes it unhealthy or when its process ends. Without a check nothing
 *    changes: the service follows its network, as before.
 *  - ps shows health only while the process runs; inspect keeps the last
 *    probe after it ended (as docker inspect does).
 */
#include "runtime/daemon_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

enum probe_phase { PH_IDLE, PH_CONNECT, PH_SEND, PH_RECV, PH_EXEC };

struct health {
	struct health *next;
	struct daemon *d;
	char name[STORE_NAME_MAX];
	bool active;                /* its process runs: probes are scheduled */
	bool seen;                  /* health_sync: still has a check */
	enum health_status status;
	unsigned streak;            /* failures in a row */
	uint64_t run_start_ms;      /* the start start_period counts from */
	enum probe_phase phase;
	struct loop_timer timer;    /* PH_IDLE: the next probe; else the timeout */
	struct loop_fd io;          /* the socket, or an exec's output pipe */
	struct loop_fd proc;        /* exec: its pidfd */
	pid_t pid;                  /* exec: the joining process, 0: none */
	size_t sent;                /* http: bytes of the request sent */
	char out[HEALTH_OUT_MAX];   /* this probe's output (the first bytes) */
	size_t out_len;
	/* the last probe that ended */
	bool have_last;
	int64_t last_start, last_end;       /* unix seconds */
	int last_exit;              /* 0 healthy, 1 unhealthy (docker's) */
	char last_out[HEALTH_OUT_MAX];
	uint64_t probes, failures;  /* counters since the daemon started */
};

static const char *const status_names[] = { "starting", "healthy", "unhealthy" };

const char *health_status_word(enum health_status s)
{
	return status_names[s];
}

static const char *health_key(const void *o)
{
	return ((const struct health *)o)->name;
}

static struct health *health_find(const struct daemon *d, const char *name)
{
	return d->health_by_name.name_of ? name_index_get(&d->health_by_name, name) : NULL;
}

/* The check of name now (the running config's), or NULL. */
static const struct cfg_health *check_of(const struct daemon *d, const char *name)
{
	const struct ctr *c = daemon_ctr(d, name);

	return c && !c->cfg->cni && c->cfg->health.kind != HEALTH_NONE ? &c->cfg->health : NULL;
}

static bool running(const struct daemon *d, const char *name)
{
	struct ctr_status st;

	ctr_status(&d->sup, name, &st);
	return !strcmp(st.state, "running");
}

/* ---- one probe ------------------------------------------------------------- */

static void io_close(struct health *h)
{
	if (h->io.fd >= 0) {
		loop_fd_del(&h->d->loop, &h->io);
		close(h->io.fd);
		h->io.fd = -1;
	}
}

static void proc_close(struct health *h)
{
	if (h->proc.fd >= 0) {
		loop_fd_del(&h->d->loop, &h->proc);
		close(h->proc.fd);
		h->proc.fd = -1;
	}
}

/* Stop whatever of a probe runs (its result is not wanted). */
static void probe_abort(struct health *h)
{
	io_close(h);
	proc_close(h);
	if (h->pid > 0)
		kill(h->pid, SIGKILL);  /* reaped by SIGCHLD (on_reap ignores it then) */
	h->pid = 0;
	h->phase = PH_IDLE;
}

static void out_add(struct health *h, const char *p, size_t n)
{
	size_t room = sizeof(h->out) - 1 - h->out_len;

	if (n > room)
		n = room;
	memcpy(h->out + h->out_len, p, n);
	h->out_len += n;
	h->out[h->out_len] = '\0';
}

static void transition(struct health *h, enum health_status to)
{
	struct daemon *d = h->d;
	const struct cfg_health *ch = check_of(d, h->name);
	char attrs[64];

	h->status = to;
	snprintf(attrs, sizeof(attrs), "health=%s", status_names[to]);
	daemon_log(d, to == HS_UNHEALTHY ? LOG_WARN : LOG_INFO, "container %s: %s%s%s",
		   h->name, status_names[to], to == HS_UNHEALTHY ? ": " : "",
		   to == HS_UNHEALTHY ? h->last_out : "");
	daemon_event(d, "container", "health_status", h->name, attrs, "%s%s%s", status_names[to],
		     to == HS_UNHEALTHY ? ": " : "", to == HS_UNHEALTHY ? h->last_out : "");
	reconcile_dns_one(d, h->name);      /* in or out of its service */
	services_refresh(d, h->name);       /* and of its services' VIPs */
	if (to == HS_UNHEALTHY && ch && ch->on_unhealthy == ON_UNHEALTHY_RESTART &&
	    ctr_restart(&d->sup, h->name)) {
		daemon_log(d, LOG_WARN, "container %s: unhealthy: restarting it (on_unhealthy = "
			   "restart)", h->name);
		/* no probes while it stops: "restarted" begins them again */
		h->active = false;
		loop_timer_cancel(&d->loop, &h->timer);
	}
}

/* The probe ended: ok or not, msg what it said (appended to its output). */
static void probe_end(struct health *h, bool ok, const char *msg)
{
	const struct cfg_health *ch = check_of(h->d, h->name);

	io_close(h);
	proc_close(h);
	if (h->pid > 0)
		kill(h->pid, SIGKILL);  /* still running (timed out, or the check changed) */
	h->pid = 0;
	h->phase = PH_IDLE;
	if (msg && *msg) {
		if (h->out_len && h->out[h->out_len - 1] != '\n')
			out_add(h, "\n", 1);
		out_add(h, msg, strlen(msg));
	}
	while (h->out_len && (h->out[h->out_len - 1] == '\n' || h->out[h->out_len - 1] == '\r'))
		h->out[--h->out_len] = '\0';
	h->have_last = true;
	h->last_end = (int64_t)time(NULL);
	h->last_exit = ok ? 0 : 1;
	memcpy(h->last_out, h->out, h->out_len + 1);
	h->probes++;
	if (!ch) {
		h->active = false;
		loop_timer_cancel(&h->d->loop, &h->timer);
		return;
	}
	loop_timer_set(&h->d->loop, &h->timer, ch->interval_ms);
	if (ok) {
		h->streak = 0;
		if (h->status != HS_HEALTHY)
			transition(h, HS_HEALTHY);
		return;
	}
	h->failures++;
	if (h->status == HS_STARTING && loop_now_ms() - h->run_start_ms < ch->start_period_ms)
		return;                 /* still starting: does not count */
	h->streak++;
	if (h->streak >= ch->retries && h->status != HS_UNHEALTHY)
		transition(h, HS_UNHEALTHY);
}

/* Enter the netns at path just for socket(): the socket stays there. */
static int socket_in(const struct daemon *d, const char *path, struct err *e)
{
	static int self = -1;       /* the daemon's own namespace, opened once */
	int ns, fd, er;

	if (self < 0 && (self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		return err_set(e, errno, "open /proc/thread-self/ns/net");
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return err_set(e, errno, "open %s", path);
	if (setns(ns, CLONE_NEWNET) < 0) {
		er = errno;
		close(ns);
		return err_set(e, er, "setns %s", path);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	er = errno;
	if (setns(self, CLONE_NEWNET) < 0) {
		/* the daemon's own sockets would be made in the container's
		 * namespace from now on: nothing sane can go on */
		daemon_log(d, LOG_ERROR, "setns back to the daemon's network namespace: %s",
			   strerror(errno));
		abort();
	}
	close(ns);
	if (fd < 0)
		return err_set(e, er, "socket");
	return fd;
}

static void http_send(struct health *h, const struct cfg_health *ch)
{
	char req[HEALTH_PATH_MAX + 160];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n"
			 "User-Agent: berth-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
			 ch->path, (unsigned)ch->port);
	ssize_t w;

	if (n < 0 || (size_t)n >= sizeof(req)) {
		probe_end(h, false, "the request does not fit");
		return;
	}
	w = send(h->io.fd, req + h->sent, (size_t)n - h->sent, MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN && errno != EINTR) {
		char msg[128];

		snprintf(msg, sizeof(msg), "send: %s", strerror(errno));
		probe_end(h, false, msg);
		return;
	}
	if (w > 0)
		h->sent += (size_t)w;
	if (h->sent < (size_t)n) {
		h->phase = PH_SEND;
		loop_fd_mod(&h->d->loop, &h->io, EPOLLOUT, NULL);
		return;
	}
	h->phase = PH_RECV;
	loop_fd_mod(&h->d->loop, &h->io, EPOLLIN, NULL);
}

/* An answer's status line, once it is all here: 1 healthy, 0 not, -1 more. */
static int http_status(struct health *h, bool eof, char *msg, size_t size)
{
	const char *nl = memchr(h->out, '\n', h->out_len);
	int code;

	if (!nl) {
		if (!eof && h->out_len < sizeof(h->out) - 1)
			return -1;
		snprintf(msg, size, eof ? "the connection ended before a status line" :
			 "not an HTTP answer");
		return 0;
	}
	if (strncmp(h->out, "HTTP/", 5) || sscanf(h->out, "HTTP/%*d.%*d %d", &code) != 1) {
		snprintf(msg, size, "not an HTTP answer");
		return 0;
	}
	msg[0] = '\0';
	return code >= 200 && code < 400;
}

static void io_cb(struct loop_fd *f, uint32_t events)
{
	struct health *h = container_of(f, struct health, io);
	const struct cfg_health *ch = check_of(h->d, h->name);
	char buf[512], msg[160];
	ssize_t n;
	int er = 0, r;

	if (!ch || (h->phase != PH_EXEC && ch->kind == HEALTH_EXEC) ||
	    (h->phase == PH_EXEC && ch->kind != HEALTH_EXEC)) {
		/* a reload changed the check under this probe */
		probe_end(h, false, ch ? "the check changed" : "the check was removed");
		return;
	}
	switch (h->phase) {
	case PH_CONNECT:
		if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &er, &(socklen_t){ sizeof(er) }) < 0)
			er = errno;
		if (er || (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLOUT))) {
			snprintf(msg, sizeof(msg), "connect 127.0.0.1:%u: %s", (unsigned)ch->port,
				 strerror(er ? er : ECONNREFUSED));
			probe_end(h, false, msg);
			return;
		}
		if (ch->kind == HEALTH_TCP) {
			snprintf(msg, sizeof(msg), "connected to 127.0.0.1:%u", (unsigned)ch->port);
			probe_end(h, true, msg);
			return;
		}
		http_send(h, ch);
		return;
	case PH_SEND:
		http_send(h, ch);
		return;
	case PH_RECV:
		n = recv(f->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			snprintf(msg, sizeof(msg), "recv: %s", strerror(errno));
			probe_end(h, false, msg);
			return;
		}
		out_add(h, buf, (size_t)n);
		r = http_status(h, n == 0, msg, sizeof(msg));
		if (r < 0)
			return;
		/* the status line is what is kept of the answer */
		{
			const char *nl = memchr(h->out, '\n', h->out_len);

			if (nl) {
				h->out_len = (size_t)(nl - h->out);
				h->out[h->out_len] = '\0';
			}
		}
		probe_end(h, r == 1, msg);
		return;
	case PH_EXEC:
		/* the command's output; the end of the probe is its exit */
		while ((n = read(f->fd, buf, sizeof(buf))) > 0)
			out_add(h, buf, (size_t)n);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			io_close(h);
		return;
	default:
		return;
	}
}

/* The exec probe's process ended with status (waitpid's). */
static void exec_done(struct health *h, int st)
{
	char buf[512], msg[96];
	ssize_t n;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 126;

	/* what it wrote last */
	while (h->io.fd >= 0 && (n = read(h->io.fd, buf, sizeof(buf))) > 0)
		out_add(h, buf, (size_t)n);
	h->pid = 0;
	msg[0] = '\0';
	if (code)
		snprintf(msg, sizeof(msg), "exit code %d", code);
	probe_end(h, code == 0, msg);
}

static void proc_cb(struct loop_fd *f, uint32_t events)
{
	struct health *h = container_of(f, struct health, proc);
	siginfo_t si = { 0 };

	(void)events;
	if (syscall(SYS_waitid, P_PIDFD, f->fd, &si, WEXITED | WNOHANG, NULL) < 0) {
		/* reaped by the supervisor's SIGCHLD first: on_reap had it, or
		 * will; stop watching */
		proc_close(h);
		return;
	}
	if (!si.si_pid)
		return;                 /* not yet */
	exec_done(h, si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 :
		  si.si_status & 0x7f);
}

void health_on_reap(void *ctx, pid_t pid, int status)
{
	struct daemon *d = ctx;

	for (struct health *h = d->health; h; h = h->next)
		if (h->pid == pid && h->phase == PH_EXEC) {
			exec_done(h, status);
			return;
		}
}

static int exec_begin(struct health *h, const struct cfg_health *ch, char *msg, size_t size)
{
	struct ctr_exec_opts o = { .tty_sock = -1, .die_with_parent = true };
	struct ctr_join j = { .pidns = -1, .ns = { -1, -1, -1, -1 }, .root = -1 };
	struct err e = { 0 };
	struct buf info;
	int p[2] = { -1, -1 }, fd;
	pid_t pid;

	buf_init(&info);
	if (ctr_exec_info(&h->d->sup, h->name, &info, &e) < 0 ||
	    ctr_join_open(&j, h->name, info.data, &e) < 0) {
		snprintf(msg, size, "%s", e.msg);
		buf_free(&info);
		return -1;
	}
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(msg, size, "pipe: %s", strerror(errno));
		goto fail;
	}
	o.out_fd = p[1];
	pid = ctr_join_spawn(h->name, info.data, &j, ch->argv, &o);
	if (pid < 0) {
		snprintf(msg, size, "fork: %s", strerror(errno));
		goto fail;
	}
	close(p[1]);
	ctr_join_close(&j);
	buf_free(&info);
	h->pid = pid;
	h->phase = PH_EXEC;
	h->io.fd = p[0];
	if (loop_fd_add(&h->d->loop, &h->io, EPOLLIN, NULL) < 0) {
		close(p[0]);
		h->io.fd = -1;
	}
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		h->proc.fd = fd;
		if (loop_fd_add(&h->d->loop, &h->proc, EPOLLIN, NULL) < 0) {
			close(fd);
			h->proc.fd = -1;
		}
	}
	/* without a pidfd, SIGCHLD (on_reap) still says when it ended */
	return 0;
fail:
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	ctr_join_close(&j);
	buf_free(&info);
	return -1;
}

static void probe_begin(struct health *h)
{
	struct daemon *d = h->d;
	const struct cfg_health *ch = check_of(d, h->name);
	const struct ctr *c = daemon_ctr(d, h->name);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char path[4096], msg[ERR_MSG_MAX + 64];
	struct err e = { 0 };
	int fd;

	if (!ch || !c) {
		h->active = false;
		return;
	}
	h->out_len = 0;
	h->out[0] = '\0';
	h->sent = 0;
	h->last_start = (int64_t)time(NULL);
	loop_timer_set(&d->loop, &h->timer, ch->timeout_ms);
	if (ch->kind == HEALTH_EXEC) {
		if (exec_begin(h, ch, msg, sizeof(msg)) < 0)
			probe_end(h, false, msg);
		return;
	}
	daemon_netns_path(d, c->cfg, path, sizeof(path));
	fd = socket_in(d, path, &e);
	if (fd < 0) {
		probe_end(h, false, e.msg);
		return;
	}
	h->io.fd = fd;
	h->phase = PH_CONNECT;
	sa.sin_port = htons(ch->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		snprintf(msg, sizeof(msg), "connect 127.0.0.1:%u: %s", (unsigned)ch->port,
			 strerror(errno));
		close(fd);
		h->io.fd = -1;
		probe_end(h, false, msg);
		return;
	}
	if (loop_fd_add(&d->loop, &h->io, EPOLLOUT, &e) < 0) {
		close(fd);
		h->io.fd = -1;
		probe_end(h, false, e.msg);
	}
}

static void timer_cb(struct loop_timer *t)
{
	struct health *h = container_of(t, struct health, timer);
	const struct cfg_health *ch = check_of(h->d, h->name);
	char msg[96];

	if (!h->active)
		return;
	if (h->phase == PH_IDLE) {
		/* a stop under way (its "stopped" ends the probes): no probe of
		 * a process on its way out; look again an interval later */
		if (!running(h->d, h->name)) {
			if (ch)
				loop_timer_set(&h->d->loop, &h->timer, ch->interval_ms);
			return;
		}
		probe_begin(h);
		return;
	}
	snprintf(msg, sizeof(msg), "timed out after %u ms", ch ? (unsigned)ch->timeout_ms : 0);
	probe_end(h, false, msg);       /* kills an exec's process: the command follows
					 * (its parent-death signal) */
}

/* ---- life cycle ------------------------------------------------------------ */

static void activate(struct health *h)
{
	const struct cfg_health *ch = check_of(h->d, h->name);

	if (!ch)
		return;
	probe_abort(h);
	h->active = true;
	h->status = HS_STARTING;
	h->streak = 0;
	h->run_start_ms = loop_now_ms();
	loop_timer_set(&h->d->loop, &h->timer, ch->interval_ms);
}

static void deactivate(struct health *h)
{
	bool was = h->active;

	probe_abort(h);
	h->active = false;
	loop_timer_cancel(&h->d->loop, &h->timer);
	if (was) {
		reconcile_dns_one(h->d, h->name);   /* out of its service */
		services_refresh(h->d, h->name);
	}
}

static struct health *health_new(struct daemon *d, const char *name)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h)
		abort();
	h->d = d;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->io = (struct loop_fd){ .fd = -1, .cb = io_cb };
	h->proc = (struct loop_fd){ .fd = -1, .cb = proc_cb };
	h->timer.cb = timer_cb;
	if (!d->health_by_name.name_of)
		d->health_by_name.name_of = health_key;
	if (!name_index_put(&d->health_by_name, h))
		abort();
	h->next = d->health;
	d->health = h;
	return h;
}

void health_on_ctr(struct daemon *d, const char *name, const char *action)
{
	struct health *h;

	if (!check_of(d, name))
		return;
	h = health_find(d, name);
	if (!strcmp(action, "started") || !strcmp(action, "restarted"))
		activate(h ? h : health_new(d, name));
	else if (h && (!strcmp(action, "died") || !strcmp(action, "stopped")))
		deactivate(h);
}

void health_sync(struct daemon *d)
{
	struct health **pp;

	for (struct health *h = d->health; h; h = h->next)
		h->seen = false;
	for (size_t i = 0; i < d->n_ctrs; i++) {
		const struct cfg_container *c = d->ctrs[i].cfg;
		struct health *h;

		if (c->cni || c->health.kind == HEALTH_NONE)
			continue;
		h = health_find(d, c->name);
		if (!h)
			h = health_new(d, c->name);
		h->seen = true;
		/* adopted at start-up, or a check added by a reload */
		if (!h->active && running(d, c->name))
			activate(h);
	}
	for (pp = &d->health; *pp;) {
		struct health *h = *pp;

		if (h->seen) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		probe_abort(h);
		loop_timer_cancel(&d->loop, &h->timer);
		name_index_del(&d->health_by_name, h->name);
		reconcile_dns_one(d, h->name);      /* no check: back in its service */
		services_refresh(d, h->name);
		free(h);
	}
}

void health_free(struct daemon *d)
{
	while (d->health) {
		struct health *h = d->health;

		d->health = h->next;
		probe_abort(h);
		loop_timer_cancel(&d->loop, &h->timer);
		free(h);
	}
	name_index_free(&d->health_by_name);
}

/* ---- what others see --------------------------------------------------------- */

bool health_in_service(const struct daemon *d, const struct cfg_container *c)
{
	const struct health *h;

	if (c->cni)
		return true;        /* its runtime runs it while it is attached */
	if (c->health.kind == HEALTH_NONE)
		return ctr_running(&d->sup, c->name);   /* a stopped one leaves */
	h = health_find(d, c->name);
	return h && h->active && h->status == HS_HEALTHY;
}

bool health_status_of(const struct daemon *d, const char *name, enum health_status *out)
{
	const struct health *h = check_of(d, name) ? health_find(d, name) : NULL;

	if (!h || !h->active)
		return false;
	*out = h->status;
	return true;
}

void health_inspect(const struct daemon *d, const char *name, struct buf *out)
{
	const struct cfg_health *ch = check_of(d, name);
	const struct health *h = ch ? health_find(d, name) : NULL;
	static const char *const kinds[] = { "none", "tcp", "http", "exec" };

	if (!ch) {
		buf_puts(out, "null");
		return;
	}
	buf_puts(out, "{\"status\":");
	if (h && h->active)
		buf_json_string(out, status_names[h->status]);
	else
		buf_puts(out, "null");
	buf_printf(out, ",\"failing_streak\":%u,\"check\":{\"type\":\"%s\"", h ? h->streak : 0,
		   kinds[ch->kind]);
	if (ch->kind != HEALTH_EXEC)
		buf_printf(out, ",\"port\":%u", (unsigned)ch->port);
	if (ch->kind == HEALTH_HTTP) {
		buf_puts(out, ",\"path\":");
		buf_json_string(out, ch->path);
	}
	if (ch->kind == HEALTH_EXEC) {
		buf_puts(out, ",\"command\":[");
		for (size_t i = 0; i < ch->argc; i++) {
			buf_puts(out, i ? "," : "");
			buf_json_string(out, ch->argv[i]);
		}
		buf_puts(out, "]");
	}
	buf_printf(out, ",\"interval_ms\":%u,\"timeout_ms\":%u,\"retries\":%u,"
		   "\"start_period_ms\":%u,\"on_unhealthy\":\"%s\"},\"probes\":%llu,"
		   "\"failures\":%llu,\"last\":", ch->interval_ms, ch->timeout_ms, ch->retries,
		   ch->start_period_ms, ch->on_unhealthy == ON_UNHEALTHY_RESTART ? "restart" : "none",
		   h ? (unsigned long long)h->probes : 0ULL,
		   h ? (unsigned long long)h->failures : 0ULL);
	if (!h || !h->have_last) {
		buf_puts(out, "null}");
		return;
	}
	buf_puts(out, "{\"start\":");
	buf_json_time(out, h->last_start);
	buf_puts(out, ",\"end\":");
	buf_json_time(out, h->last_end);
	buf_printf(out, ",\"exit_code\":%d,\"output\":", h->last_exit);
	buf_json_string(out, h->last_out);
	buf_puts(out, "}}");
}
