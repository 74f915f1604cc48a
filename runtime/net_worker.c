/* net_worker.c - the network work a caller need not wait for, in a worker
 * thread (DESIGN §10: the loop never waits):
 *   - removing an attachment's veth pair, which blocks ~20 ms in the kernel
 *     (an RCU barrier in the unregister path, net.c): a CNI DEL answers
 *     once the host end is down and the address released;
 *   - announcing a new interface's addresses (gratuitous ARP, unsolicited
 *     NA), a broadcast whose cost grows with the ports of the bridge (every
 *     receiver's work runs in the sender's context): an ADD answers once
 *     the interface is configured, the announcement follows within a
 *     millisecond or so.
 * One thread takes the jobs in order, with sockets of its own; what fails
 * comes back over a pipe and is logged from the loop. An attach of a
 * container with a job queued or under way waits for it first
 * (net_worker_wait), so that an old pair is never taken for the new one's,
 * nor the new one removed. */
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

struct net_job {
	bool announce;              /* else unplug */
	char name[STORE_NAME_MAX];
	char ifname[16];
	char netns[256];            /* announce: a runtime's netns; "": berth's own */
	struct net_ifaddr addr[NET_ADDRS_MAX];
	unsigned n_addr;
};

struct net_worker {
	struct daemon *d;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	ARRAY(struct net_job) queue;        /* v[0] goes next */
	char busy[STORE_NAME_MAX];          /* the job under way; "": none */
	bool stop;
	char *state_dir;                    /* where berth's own netns files are */
	int pipe[2];                        /* worker -> loop: one line per failure */
	struct loop_fd report;
};

static bool queued(const struct net_worker *w, const char *name)
{
	for (size_t i = 0; i < w->queue.n; i++)
		if (!strcmp(w->queue.v[i].name, name))
			return true;
	return !strcmp(w->busy, name);
}

static int run(struct net *n, const struct net_job *job, struct err *e)
{
	int ret;
	struct net_attach a = { .container = job->name, .ifname = job->ifname,
				.netns = job->netns[0] ? job->netns : NULL, .n_addr = job->n_addr };

	if (!job->announce)
		return net_unplug(n, job->name, job->ifname, e);
	memcpy(a.addr, job->addr, sizeof(a.addr));
	/* an interface already gone again (a DEL came first, the runtime
	 * removed its netns) needs no announcing; anything else is said */
	ret = net_announce(n, &a, e);
	return ret == -ENOENT || ret == -ENODEV ? 0 : ret;
}

static void *worker(void *arg)
{
	struct net_worker *w = arg;
	struct net *n = NULL;
	struct err e = { 0 };
	char line[ERR_MSG_MAX + 96];

	/* its own sockets, in the host netns the thread was made in */
	if (net_open(&n, w->state_dir, &e) < 0) {
		snprintf(line, sizeof(line), "network worker: %s\n", e.msg);
		(void)!write(w->pipe[1], line, strlen(line));
	}
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct net_job job;

		while (!w->queue.n && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		if (!w->queue.n)
			break;
		job = w->queue.v[0];
		memmove(w->queue.v, w->queue.v + 1, --w->queue.n * sizeof(job));
		memcpy(w->busy, job.name, sizeof(w->busy));
		pthread_mutex_unlock(&w->mu);
		err_clear(&e);
		if (!n || run(n, &job, &e) < 0) {
			snprintf(line, sizeof(line), "container %s: %s\n", job.name,
				 n ? e.msg : "the network worker has no sockets");
			(void)!write(w->pipe[1], line, strlen(line));
		}
		pthread_mutex_lock(&w->mu);
		w->busy[0] = 0;
		pthread_cond_broadcast(&w->done);
	}
	pthread_mutex_unlock(&w->mu);
	net_close(n);
	return NULL;
}

static void on_report(struct loop_fd *f, uint32_t events)
{
	struct net_worker *w = container_of(f, struct net_worker, report);
	char buf[4096];
	ssize_t len;

	(void)events;
	while ((len = read(f->fd, buf, sizeof(buf) - 1)) > 0) {
		buf[len] = 0;
		for (char *l = buf, *nl; *l; l = nl) {
			if ((nl = strchr(l, '\n')))
				*nl++ = 0;
			else
				nl = l + strlen(l);
			daemon_log(w->d, LOG_ERROR, "%s", l);
		}
	}
}

int net_worker_start(struct daemon *d, struct err *e)
{
	struct net_worker *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		abort();
	w->d = d;
	if (!(w->state_dir = strdup(d->cfg->daemon.state_dir)))
		abort();
	if (pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(w->state_dir);
		free(w);
		return err_sys(e, errno, "network worker: pipe");
	}
	w->report.fd = w->pipe[0];
	w->report.cb = on_report;
	if (loop_fd_add(&d->loop, &w->report, EPOLLIN, e) < 0)
		goto err;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	if ((ret = pthread_create(&w->thread, NULL, worker, w)) != 0) {
		loop_fd_del(&d->loop, &w->report);
		err_sys(e, ret, "network worker: start a thread");
		goto err;
	}
	d->net_worker = w;
	return 0;
err:
	close(w->pipe[0]);
	close(w->pipe[1]);
	free(w->state_dir);
	free(w);
	return -1;
}

static void push(struct net_worker *w, const struct net_job *job)
{
	struct net_job *slot;

	pthread_mutex_lock(&w->mu);
	if (!(slot = array_push(&w->queue)))
		abort();
	*slot = *job;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
}

void net_worker_unplug(struct daemon *d, const char *name, const char *ifname)
{
	struct net_job job = { 0 };
	struct err e = { 0 };

	if (!d->net_worker) {
		if (net_unplug(d->net, name, ifname, &e) < 0)
			daemon_log(d, LOG_ERROR, "container %s: %s", name, e.msg);
		return;
	}
	/* off the bridge now: its address may be handed out again at once */
	if (net_unplug_down(d->net, name, ifname, &e) < 0)
		daemon_log(d, LOG_ERROR, "container %s: %s", name, e.msg);
	snprintf(job.name, sizeof(job.name), "%s", name);
	snprintf(job.ifname, sizeof(job.ifname), "%s", ifname ? ifname : "eth0");
	push(d->net_worker, &job);
}

bool net_worker_announce(struct daemon *d, const struct net_attach *a)
{
	struct net_job job = { .announce = true, .n_addr = a->n_addr };

	if (!d->net_worker || a->n_addr > NET_ADDRS_MAX ||
	    (a->netns && strlen(a->netns) >= sizeof(job.netns)))
		return false;
	snprintf(job.name, sizeof(job.name), "%s", a->container);
	snprintf(job.ifname, sizeof(job.ifname), "%s", a->ifname ? a->ifname : "eth0");
	snprintf(job.netns, sizeof(job.netns), "%s", a->netns ? a->netns : "");
	memcpy(job.addr, a->addr, a->n_addr * sizeof(*a->addr));
	push(d->net_worker, &job);
	return true;
}

void net_worker_wait(struct daemon *d, const char *name)
{
	struct net_worker *w = d->net_worker;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	while (queued(w, name))
		pthread_cond_wait(&w->done, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

void net_worker_stop(struct daemon *d)
{
	struct net_worker *w = d->net_worker;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;                 /* after what is queued: nothing is left half-done */
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	on_report(&w->report, EPOLLIN);
	loop_fd_del(&d->loop, &w->report);
	close(w->pipe[0]);
	close(w->pipe[1]);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done);
	array_free(&w->queue);
	free(w->state_dir);
	free(w);
	d->net_worker = NULL;
}
