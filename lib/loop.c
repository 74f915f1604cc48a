/* loop.c - a small epoll event loop with embedded fd and timer handles. */
#include "lib/lib.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int loop_init(struct loop *l, struct err *e)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return err_sys(e, errno, "epoll_create1");
	return 0;
}

void loop_free(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
	while (l->timers)
		loop_timer_cancel(l, l->timers);
}

int loop_fd_add(struct loop *l, struct loop_fd *f, uint32_t events, struct err *e)
{
	struct epoll_event ev = { .events = events, .data.ptr = f };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, f->fd, &ev) < 0)
		return err_sys(e, errno, "epoll_ctl add fd %d", f->fd);
	f->registered = true;
	return 0;
}

int loop_fd_mod(struct loop *l, struct loop_fd *f, uint32_t events, struct err *e)
{
	struct epoll_event ev = { .events = events, .data.ptr = f };

	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, f->fd, &ev) < 0)
		return err_sys(e, errno, "epoll_ctl mod fd %d", f->fd);
	return 0;
}

void loop_fd_del(struct loop *l, struct loop_fd *f)
{
	if (!f->registered)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, f->fd, NULL);
	f->registered = false;
	/* the owner may free f right after this: forget its pending events */
	for (int i = l->cur + 1; i < l->nfired; i++)
		if (l->fired[i].fd == f)
			l->fired[i].fd = NULL;
}

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	if (!t->pending)
		return;
	if (t->prev)
		t->prev->next = t->next;
	else
		l->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
	t->pending = false;
}

void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t ms)
{
	struct loop_timer **pp = &l->timers, *prev = NULL;

	loop_timer_cancel(l, t);
	t->deadline_ms = loop_now_ms() + ms;
	/* equal deadlines fire in the order they were set */
	while (*pp && (*pp)->deadline_ms <= t->deadline_ms) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	t->next = *pp;
	t->prev = prev;
	if (*pp)
		(*pp)->prev = t;
	*pp = t;
	t->pending = true;
}

static int loop_run_timers(struct loop *l)
{
	uint64_t now = loop_now_ms();
	int n = 0;

	while (l->timers && l->timers->deadline_ms <= now) {
		struct loop_timer *t = l->timers;

		loop_timer_cancel(l, t);
		t->cb(t);            /* may re-arm t or cancel others */
		n++;
	}
	return n;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	int wait = max_wait_ms, n, ran;

	if (l->timers) {
		uint64_t now = loop_now_ms(), due = l->timers->deadline_ms;
		int until = due <= now ? 0 : (due - now > 60000 ? 60000 : (int)(due - now));

		if (wait < 0 || until < wait)
			wait = until;
	}
	n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, wait);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		l->fired[i].events = evs[i].events;
		l->fired[i].fd = evs[i].data.ptr;
	}
	l->nfired = n;
	ran = 0;
	for (l->cur = 0; l->cur < l->nfired; l->cur++) {
		struct loop_fd *f = l->fired[l->cur].fd;

		if (f) {
			f->cb(f, l->fired[l->cur].events);
			ran++;
		}
	}
	l->nfired = l->cur = 0;
	return ran + loop_run_timers(l);
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int r = loop_run_once(l, -1);

		if (r < 0)
			return r;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
