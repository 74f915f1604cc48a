/* daemon.c - the daemon: one epoll loop fed by signalfd (and, later, timers,
 * netlink, DNS and control sockets). */
#include "runtime/runtime.h"
#include "lib/lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The daemon's context: every piece of mutable state the process has. */
struct daemon {
	struct loop loop;
	struct loop_fd sig;
};

static void daemon_on_signal(struct loop_fd *f, uint32_t events);

static int daemon_open(struct daemon *d, struct err *e)
{
	sigset_t mask;

	d->sig.fd = -1;
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
	return loop_fd_add(&d->loop, &d->sig, EPOLLIN, e);
}

static void daemon_close(struct daemon *d)
{
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
			loop_stop(&d->loop);
			break;
		case SIGHUP:
			fprintf(stderr, "berth: SIGHUP: reload\n");
			break;
		default:
			break;
		}
	}
}

int daemon_main(const struct daemon_opts *o)
{
	struct daemon d = { 0 };
	struct err e = { 0 };

	if (daemon_open(&d, &e) < 0) {
		fprintf(stderr, "berth daemon: %s\n", e.msg);
		daemon_close(&d);
		return EXIT_FAIL;
	}
	fprintf(stderr, "berth: daemon started (config: %s)\n",
		o->config_dir ? o->config_dir : "embedded default");
	if (loop_run(&d.loop) < 0)
		fprintf(stderr, "berth daemon: event loop: %s\n", strerror(errno));
	daemon_close(&d);
	fprintf(stderr, "berth: stopped\n");
	return EXIT_OK;
}
