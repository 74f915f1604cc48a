/* unplug.c - net_unplug in a worker thread. Removing an attachment's veth
 * pair blocks ~20 ms in the kernel (an RCU barrier in the unregister path,
 * net.c), which a CNI DEL must not make its caller wait for, nor every other
 * client of the loop (DESIGN §10: the loop never waits). One thread takes
 * (container, interface) jobs in order; what fails comes back over a pipe
 * and is logged from the loop. An attach of a container whose unplug is
 * queued or under way waits for it first (unplug_wait), so that the old
 * pair is never taken for the new one's, nor the new one removed. */
#include "runtime/daemon_int.h"
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct unplug_job {
	char name[STORE_NAME_MAX];
	char ifname[16];
};

struct unplugger {
	struct daemon *d;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	ARRAY(struct unplug_job) queue;     /* v[0] goes next */
	char busy[STORE_NAME_MAX];          /* the job under way; "": none */
	bool stop;
	int pipe[2];                        /* worker -> loop: one line per failure */
	struct loop_fd report;
};

static bool queued(const struct unplugger *u, const char *name)
{
	for (size_t i = 0; i < u->queue.n; i++)
		if (!strcmp(u->queue.v[i].name, name))
			return true;
	return !strcmp(u->busy, name);
}

static void *worker(void *arg)
{
	struct unplugger *u = arg;
	struct net *n = NULL;
	struct err e = { 0 };
	char line[ERR_MSG_MAX + 96];

	/* its own sockets, in the host netns the thread was made in */
	if (net_open(&n, NULL, &e) < 0) {
		snprintf(line, sizeof(line), "unplug worker: %s: removing interfaces inline\n",
			 e.msg);
		(void)!write(u->pipe[1], line, strlen(line));
	}
	pthread_mutex_lock(&u->mu);
	for (;;) {
		struct unplug_job job;

		while (!u->queue.n && !u->stop)
			pthread_cond_wait(&u->work, &u->mu);
		if (!u->queue.n)
			break;
		job = u->queue.v[0];
		memmove(u->queue.v, u->queue.v + 1, --u->queue.n * sizeof(job));
		memcpy(u->busy, job.name, sizeof(u->busy));
		pthread_mutex_unlock(&u->mu);
		err_clear(&e);
		if (!n || net_unplug(n, job.name, job.ifname, &e) < 0) {
			snprintf(line, sizeof(line), "container %s: %s\n", job.name,
				 n ? e.msg : "no unplug worker");
			(void)!write(u->pipe[1], line, strlen(line));
		}
		pthread_mutex_lock(&u->mu);
		u->busy[0] = 0;
		pthread_cond_broadcast(&u->done);
	}
	pthread_mutex_unlock(&u->mu);
	net_close(n);
	return NULL;
}

static void on_report(struct loop_fd *f, uint32_t events)
{
	struct unplugger *u = container_of(f, struct unplugger, report);
	char buf[4096];
	ssize_t len;

	(void)events;
	while ((len = read(f->fd, buf, sizeof(buf) - 1)) > 0) {
		buf[len] = 0;
		for (char *l = buf, *nl; *l; l = nl + 1) {
			if (!(nl = strchr(l, '\n'))) {
				daemon_log(u->d, LOG_ERROR, "%s", l);
				break;
			}
			*nl = 0;
			daemon_log(u->d, LOG_ERROR, "%s", l);
		}
	}
}

int unplug_start(struct daemon *d, struct err *e)
{
	struct unplugger *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		abort();
	u->d = d;
	if (pipe2(u->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(u);
		return err_sys(e, errno, "unplug worker: pipe");
	}
	u->report.fd = u->pipe[0];
	u->report.cb = on_report;
	if (loop_fd_add(&d->loop, &u->report, EPOLLIN, e) < 0)
		goto err;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->work, NULL);
	pthread_cond_init(&u->done, NULL);
	if ((ret = pthread_create(&u->thread, NULL, worker, u)) != 0) {
		loop_fd_del(&d->loop, &u->report);
		err_sys(e, ret, "unplug worker: start a thread");
		goto err;
	}
	d->unplug = u;
	return 0;
err:
	close(u->pipe[0]);
	close(u->pipe[1]);
	free(u);
	return -1;
}

void unplug_later(struct daemon *d, const char *name, const char *ifname)
{
	struct unplugger *u = d->unplug;
	struct unplug_job *job;
	struct err e = { 0 };

	if (!u) {
		if (net_unplug(d->net, name, ifname, &e) < 0)
			daemon_log(d, LOG_ERROR, "container %s: %s", name, e.msg);
		return;
	}
	/* off the bridge now: its address may be handed out again at once */
	if (net_unplug_down(d->net, name, ifname, &e) < 0)
		daemon_log(d, LOG_ERROR, "container %s: %s", name, e.msg);
	pthread_mutex_lock(&u->mu);
	if (!(job = array_push(&u->queue)))
		abort();
	snprintf(job->name, sizeof(job->name), "%s", name);
	snprintf(job->ifname, sizeof(job->ifname), "%s", ifname ? ifname : "eth0");
	pthread_cond_signal(&u->work);
	pthread_mutex_unlock(&u->mu);
}

void unplug_wait(struct daemon *d, const char *name)
{
	struct unplugger *u = d->unplug;

	if (!u)
		return;
	pthread_mutex_lock(&u->mu);
	while (queued(u, name))
		pthread_cond_wait(&u->done, &u->mu);
	pthread_mutex_unlock(&u->mu);
}

void unplug_stop(struct daemon *d)
{
	struct unplugger *u = d->unplug;

	if (!u)
		return;
	pthread_mutex_lock(&u->mu);
	u->stop = true;                 /* after what is queued: nothing is left half-done */
	pthread_cond_signal(&u->work);
	pthread_mutex_unlock(&u->mu);
	pthread_join(u->thread, NULL);
	on_report(&u->report, EPOLLIN);
	loop_fd_del(&d->loop, &u->report);
	close(u->pipe[0]);
	close(u->pipe[1]);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->work);
	pthread_cond_destroy(&u->done);
	array_free(&u->queue);
	free(u);
	d->unplug = NULL;
}
