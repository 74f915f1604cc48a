/* daemon.c - the daemon: one epoll loop fed by signalfd (and, later, timers,
 * netlink, DNS and control sockets). */
#include "runtime/runtime.h"
#include "runtime/control.h"
#include "lib/lib.h"
#include "version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The daemon's context: every piece of mutable state the process has. */
struct daemon {
	struct loop loop;
	struct loop_fd sig;
	struct ctl_server ctl;
	const char *run_dir;
	uint64_t started_ms;
};

/* ---- control requests --------------------------------------------------- */

static int req_status(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		      struct err *e)
{
	static const char *const cols[] = { "KEY", "VALUE" };
	char pid[16], uptime[32];
	struct table t;

	(void)e;
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(uptime, sizeof(uptime), "%llu",
		 (unsigned long long)((loop_now_ms() - d->started_ms) / 1000));
	if (rq->json) {
		buf_printf(out, "{\"version\":\"%s\",\"commit\":\"%s\",\"pid\":%s,"
			   "\"uptime_seconds\":%s,\"socket\":", BERTH_VERSION, BERTH_COMMIT,
			   pid, uptime);
		buf_json_string(out, d->ctl.path);
		buf_puts(out, "}\n");
		return 0;
	}
	table_init(&t, 2, cols);
	table_add(&t, "version", BERTH_VERSION);
	table_add(&t, "commit", BERTH_COMMIT);
	table_add(&t, "pid", pid);
	table_add(&t, "uptime", uptime);
	table_add(&t, "socket", d->ctl.path);
	table_render(&t, false, out);
	table_free(&t);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct daemon *d, const struct ctl_request *rq, struct buf *out,
		   struct err *e);
} requests[] = {
	{ "status", req_status },
};

static int daemon_on_request(void *ctx, const struct ctl_request *rq, struct buf *out,
			     struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(requests); i++)
		if (!strcmp(rq->argv[0], requests[i].name))
			return requests[i].run(ctx, rq, out, e);
	return err_set(e, EINVAL, "unknown command '%s'", rq->argv[0]);
}

/* ---- life cycle --------------------------------------------------------- */

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

/* mkdir -p with mode for the missing components. */
static int mkdir_p(const char *path, mode_t mode, struct err *e)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n >= sizeof(tmp))
		return err_set(e, ENAMETOOLONG, "path too long: %s", path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(tmp, mode) < 0 && errno != EEXIST)
				return err_sys(e, errno, "create directory %s", tmp);
			if (!c)
				break;
			*p = c;
		}
	}
	return 0;
}

static void daemon_on_signal(struct loop_fd *f, uint32_t events);

static int daemon_open(struct daemon *d, struct err *e)
{
	char sock[4096];
	sigset_t mask;

	d->sig.fd = -1;
	d->ctl.listen.fd = -1;
	d->started_ms = loop_now_ms();
	if (loop_init(&d->loop, e) < 0)
		return -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return err_sys(e, errno, "block signals");
	d->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sig.fd < 0)
		return err_sys(e, errno, "signalfd");
	d->sig.cb = daemon_on_signal;
	if (loop_fd_add(&d->loop, &d->sig, EPOLLIN, e) < 0)
		return -1;
	if (mkdir_p(d->run_dir, 0755, e) < 0)
		return -1;
	snprintf(sock, sizeof(sock), "%s/berth.sock", d->run_dir);
	return ctl_server_open(&d->ctl, &d->loop, sock, daemon_on_request, d, e);
}

static void daemon_close(struct daemon *d)
{
	ctl_server_close(&d->ctl);
	loop_fd_del(&d->loop, &d->sig);
	if (d->sig.fd >= 0)
		close(d->sig.fd);
	loop_free(&d->loop);
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
			fprintf(stderr, "berth: %s, stopping\n", strsignal((int)si.ssi_signo));
			daemon_notify("STOPPING=1");
			loop_stop(&d->loop);
			break;
		case SIGHUP:
			fprintf(stderr, "berth: SIGHUP: reload\n");
			daemon_notify("RELOADING=1");
			daemon_notify("READY=1");
			break;
		default:
			break;
		}
	}
}

int daemon_main(const struct daemon_opts *o)
{
	struct daemon d = { .run_dir = o->run_dir ? o->run_dir : "/run/berth" };
	struct err e = { 0 };

	if (daemon_open(&d, &e) < 0) {
		fprintf(stderr, "berth daemon: %s\n", e.msg);
		daemon_close(&d);
		return EXIT_FAIL;
	}
	fprintf(stderr, "berth: daemon started (config: %s)\n",
		o->config_dir ? o->config_dir : "embedded default");
	daemon_notify("READY=1");      /* the control socket answers from here on */
	if (loop_run(&d.loop) < 0)
		fprintf(stderr, "berth daemon: event loop: %s\n", strerror(errno));
	daemon_close(&d);
	fprintf(stderr, "berth: stopped\n");
	return EXIT_OK;
}
