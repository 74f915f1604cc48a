/* test_loop.c - lib/ event loop: fd events, deletion mid-round, timer order. */
#include "lib/lib.h"
#include "t.h"

#include <sys/epoll.h>
#include <unistd.h>

struct pipe_watch {
	struct loop_fd lf;
	struct loop *l;
	struct pipe_watch *victim;  /* deleted by our callback */
	int calls;
};

static void on_pipe(struct loop_fd *f, uint32_t events)
{
	struct pipe_watch *w = container_of(f, struct pipe_watch, lf);
	char c;

	(void)events;
	w->calls++;
	(void)!read(f->fd, &c, 1);
	if (w->victim)
		loop_fd_del(w->l, &w->victim->lf);
}

static int order[8], norder;
struct tagged_timer {
	struct loop_timer t;
	int tag;
};

static void on_timer(struct loop_timer *t)
{
	order[norder++] = container_of(t, struct tagged_timer, t)->tag;
}

int main(void)
{
	struct loop l;
	struct err e;
	int p1[2], p2[2];
	struct pipe_watch a = { 0 }, b = { 0 };
	struct tagged_timer t1 = { .t.cb = on_timer, .tag = 1 }, t2 = { .t.cb = on_timer, .tag = 2 },
			    t3 = { .t.cb = on_timer, .tag = 3 };
	uint64_t start;

	T_OK(loop_init(&l, &e) == 0, "loop_init");
	T_OK(pipe(p1) == 0 && pipe(p2) == 0, "pipes");
	a.lf = (struct loop_fd){ .fd = p1[0], .cb = on_pipe };
	b.lf = (struct loop_fd){ .fd = p2[0], .cb = on_pipe };
	a.l = b.l = &l;
	T_OK(loop_fd_add(&l, &a.lf, EPOLLIN, &e) == 0 && loop_fd_add(&l, &b.lf, EPOLLIN, &e) == 0,
	     "two fds registered");
	(void)!write(p1[1], "x", 1);
	T_EQ(loop_run_once(&l, 1000), 1, "one readable fd: one callback");
	T_EQ(a.calls, 1, "the readable fd's callback ran");

	/* both readable; whichever runs first deletes the other */
	a.victim = &b;
	b.victim = &a;
	(void)!write(p1[1], "x", 1);
	(void)!write(p2[1], "x", 1);
	T_EQ(loop_run_once(&l, 1000), 1, "an fd deleted mid-round gets no callback in that round");
	T_EQ(a.calls + b.calls, 2, "exactly one of the two ran");

	loop_timer_set(&l, &t3.t, 30);
	loop_timer_set(&l, &t1.t, 10);
	loop_timer_set(&l, &t2.t, 20);
	loop_timer_set(&l, &t2.t, 25);      /* re-arming moves it */
	start = loop_now_ms();
	while (norder < 3 && loop_now_ms() - start < 2000)
		loop_run_once(&l, -1);
	T_EQ(norder, 3, "three timers fired");
	T_OK(order[0] == 1 && order[1] == 2 && order[2] == 3, "timers fire in deadline order");
	T_OK(loop_now_ms() - start >= 30, "the last timer waited its 30 ms");

	loop_timer_set(&l, &t1.t, 10);
	loop_timer_cancel(&l, &t1.t);
	norder = 0;
	T_EQ(loop_run_once(&l, 30), 0, "a cancelled timer does not fire");
	loop_free(&l);
	return t_done();
}
