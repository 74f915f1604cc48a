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

struct daemon {
	int epfd;
	int sigfd;
	bool stopping;
};

static int daemon_open(struct daemon *d, struct err *e)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t mask;

	d->epfd = d->sigfd = -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return err_sys(e, errno, "block signals");
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return err_sys(e, errno, "signalfd");
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0)
		return err_sys(e, errno, "epoll_create1");
	ev.data.fd = d->sigfd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sigfd, &ev) < 0)
		return err_sys(e, errno, "epoll_ctl add signalfd");
	return 0;
}

static void daemon_close(struct daemon *d)
{
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->epfd >= 0)
		close(d->epfd);
}

static void daemon_on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			fprintf(stderr, "berth: %s, stopping\n", strsignal((int)si.ssi_signo));
			d->stopping = true;
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
	while (!d.stopping) {
		struct epoll_event evs[16];
		int n = epoll_wait(d.epfd, evs, (int)ARRAY_SIZE(evs), -1);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "berth daemon: epoll_wait: %s\n", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			if (evs[i].data.fd == d.sigfd)
				daemon_on_signal(&d);
	}
	daemon_close(&d);
	fprintf(stderr, "berth: stopped\n");
	return EXIT_OK;
}
