/* conn.c - the one connection server of the control protocol (conn.h): accept,
 * buffers, idle deadline, limit with longest-idle eviction, a listener that
 * rests when descriptors run out, deferred replies, mark-then-reap closing.
 * The Unix socket (control.c) and the TLS listener (remote.c) plug into it
 * with their transport operations. */
#include "runtime/ctl/conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A reply owed to a client. The owner (who called ctl_defer) holds it until
 * ctl_reply_finish; the connection only points at it, and forgets it when
 * the client goes away first. */
struct ctl_reply {
	struct conn *conn;          /* NULL once the client is gone */
	ctl_cancel_fn *cancel;
	void *arg;
};

static void conn_write(struct conn *c);
static void conn_end(struct conn *c);
static void conn_linger(struct conn *c);

static void conn_srv_log(struct conn_server *s, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conn_srv_log(struct conn_server *s, enum log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->log(s->ctx, lvl, "%s", msg);
}

/* Watch what the state needs (and the transport asks for). */
static void conn_poll(struct conn *c)
{
	const struct conn_ops *ops = c->srv->ops;
	uint32_t ev;

	switch (c->state) {
	case CONN_READING:
		ev = EPOLLIN;
		break;
	case CONN_PENDING:
		ev = c->rd_eof ? 0 : EPOLLIN;   /* HUP and ERR are reported anyway */
		break;
	case CONN_WRITING:
	case CONN_ENDING:
		ev = EPOLLOUT;
		break;
	case CONN_LINGER:
		ev = EPOLLIN;               /* raw socket: no transport in the way */
		if (ev != c->polled && loop_fd_mod(c->srv->loop, &c->fd, ev, NULL) == 0)
			c->polled = ev;
		return;
	default:
		return;
	}
	if (ops->events)
		ev = ops->events(c, ev);
	if (ev != c->polled && loop_fd_mod(c->srv->loop, &c->fd, ev, NULL) == 0)
		c->polled = ev;
}

static void conn_reap_soon(struct conn_server *s)
{
	loop_timer_set(s->loop, &s->reap, 0);
}

/* The client is gone before its deferred reply: tell the owner, who still
 * holds the reply and frees it with ctl_reply_finish (which then sends
 * nothing). */
static void conn_cancel_reply(struct conn *c)
{
	struct ctl_reply *r = c->reply;

	if (!r)
		return;
	c->reply = NULL;
	r->conn = NULL;
	if (r->cancel)
		r->cancel(r, r->arg);
}

void conn_close(struct conn *c)
{
	struct conn_server *s = c->srv;

	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	s->nconns--;
	loop_fd_del(s->loop, &c->fd);       /* also drops events already fired */
	loop_timer_cancel(s->loop, &c->idle);
	/* The descriptor goes now (a starved listener needs it); the memory
	 * after the round, as a caller up the stack may still hold c. */
	close(c->fd.fd);
	c->fd.fd = -1;
	conn_cancel_reply(c);
	conn_reap_soon(s);
}

static void conn_free(struct conn *c)
{
	const struct conn_ops *ops = c->srv->ops;

	if (ops->release)
		ops->release(c);
	buf_free(&c->out);
	free(c);
}

/* Free closed connections; then a retired server with none left goes. */
static void conn_reap(struct conn_server *s)
{
	for (struct conn **pp = &s->conns; *pp;) {
		struct conn *c = *pp;

		if (c->state == CONN_CLOSED) {
			*pp = c->next;
			conn_free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void conn_on_reap(struct loop_timer *t)
{
	struct conn_server *s = container_of(t, struct conn_server, reap);

	conn_reap(s);
	if (s->retired && !s->conns)
		s->drained(s);              /* may free s */
}

/* The reply is in c->out: send it. */
static void conn_reply(struct conn *c)
{
	c->state = CONN_WRITING;
	c->outoff = 0;
	loop_timer_set(c->srv->loop, &c->idle, c->srv->idle_ms);
	conn_write(c);
}

static void conn_write(struct conn *c)
{
	const struct conn_ops *ops = c->srv->ops;

	while (c->outoff < c->out.len) {
		ssize_t n = ops->write(c, c->out.data + c->outoff, c->out.len - c->outoff);

		if (n == -EAGAIN) {
			conn_poll(c);
			return;
		}
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	c->state = CONN_ENDING;
	conn_end(c);
}

static void conn_end(struct conn *c)
{
	const struct conn_ops *ops = c->srv->ops;
	int ret = ops->end ? ops->end(c) : 0;

	if (ret == -EAGAIN) {
		conn_poll(c);
		return;
	}
	if (ret < 0 || shutdown(c->fd.fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	c->state = CONN_LINGER;
	conn_linger(c);
}

/* Our side is done: discard what the client still sends until it closes
 * (bounded per event, and in time by the idle deadline). */
static void conn_linger(struct conn *c)
{
	char sink[4096];

	for (int i = 0; i < CONN_DRAIN_BURST; i++) {
		ssize_t n = recv(c->fd.fd, sink, sizeof(sink), 0);

		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		conn_close(c);
		return;
	}
	conn_poll(c);
}

static void conn_run(struct conn *c, size_t len)
{
	struct conn_server *s = c->srv;
	const char *refusal = s->ops->admit ? s->ops->admit(c, c->in) : NULL;
	struct ctl_request who = { .uid = c->uid, .read_only = c->read_only, .conn = c };
	struct buf sync;
	int ret;

	loop_timer_cancel(s->loop, &c->idle);
	if (refusal) {
		ctl_reply_error(&c->out, refusal);
		conn_reply(c);
		return;
	}
	buf_init(&sync);
	c->state = CONN_RUNNING;
	ret = ctl_run_request(s->handler, s->ctx, &who, c->in, len, &sync);
	if (c->state == CONN_CLOSED) {
		buf_free(&sync);
		return;
	}
	if (c->deferred) {
		/* A handler that took the reply answers through it, whatever it
		 * returned; it may even have answered already. */
		buf_free(&sync);
		if (c->reply) {
			c->state = CONN_PENDING;
			conn_poll(c);
			return;
		}
	} else if (ret == CTL_PENDING) {
		buf_free(&sync);
		ctl_reply_error(&c->out, "internal error: the reply was deferred without ctl_defer");
	} else {
		buf_free(&c->out);
		c->out = sync;
	}
	conn_reply(c);
}

static void conn_read_request(struct conn *c)
{
	const struct conn_ops *ops = c->srv->ops;

	for (;;) {
		size_t room = sizeof(c->in) - 1 - c->inlen;
		ssize_t n;
		char *nl;

		if (room == 0) {
			if (ops->note)
				ops->note(c, CONN_NOTE_TOO_LONG);
			loop_timer_cancel(c->srv->loop, &c->idle);
			ctl_reply_error(&c->out, CTL_ERR_TOO_LONG);
			conn_reply(c);
			return;
		}
		n = ops->read(c, c->in + c->inlen, room);
		if (n == -EAGAIN) {
			conn_poll(c);
			return;
		}
		if (n <= 0) {
			conn_close(c);
			return;
		}
		nl = memchr(c->in + c->inlen, '\n', (size_t)n);
		c->inlen += (size_t)n;
		c->in[c->inlen] = '\0';
		if (nl) {
			*nl = '\0';
			conn_run(c, (size_t)(nl - c->in));
			return;
		}
	}
}

/* A reply is owed: read only to notice the client going away (what it sends
 * meanwhile is dropped, like anything after the request line). */
static void conn_watch_pending(struct conn *c, uint32_t events)
{
	const struct conn_ops *ops = c->srv->ops;
	char sink[1024];

	if (c->rd_eof) {
		if (events & (EPOLLHUP | EPOLLERR))
			conn_close(c);
		return;
	}
	for (int i = 0; i < CONN_DRAIN_BURST; i++) {
		ssize_t n = ops->read(c, sink, sizeof(sink));

		if (n > 0)
			continue;
		if (n == -EAGAIN)
			break;
		if (n == 0 && ops->half_close && !(events & (EPOLLHUP | EPOLLERR))) {
			c->rd_eof = true;   /* shut for writing only: it still waits */
			break;
		}
		conn_close(c);
		return;
	}
	conn_poll(c);
}

static void conn_on_event(struct loop_fd *f, uint32_t events)
{
	struct conn *c = container_of(f, struct conn, fd);

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		c->last_active_ms = loop_now_ms();
	switch (c->state) {
	case CONN_READING:
		conn_read_request(c);
		break;
	case CONN_PENDING:
		conn_watch_pending(c, events);
		break;
	case CONN_WRITING:
		conn_write(c);
		break;
	case CONN_ENDING:
		conn_end(c);
		break;
	case CONN_LINGER:
		conn_linger(c);
		break;
	default:
		break;
	}
}

static void conn_on_idle(struct loop_timer *t)
{
	struct conn *c = container_of(t, struct conn, idle);

	if (c->srv->ops->note)
		c->srv->ops->note(c, CONN_NOTE_TIMEOUT);
	conn_close(c);
}

/* At the limit, the connection idle longest among those waiting on their
 * client (for a request, or to close after the reply) makes room: clients
 * holding connections open cannot lock the others out (RFC 7766 §6.2.3).
 * Those whose reply is being made or sent are left alone. */
static bool conn_evict(struct conn_server *s)
{
	struct conn *victim = NULL;

	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->state != CONN_READING && c->state != CONN_LINGER)
			continue;
		/* newest first: on a tie the older one goes */
		if (!victim || c->last_active_ms <= victim->last_active_ms)
			victim = c;
	}
	if (!victim)
		return false;
	if (s->ops->note)
		s->ops->note(victim, CONN_NOTE_EVICTED);
	conn_close(victim);
	return true;
}

static void conn_admit(struct conn_server *s, int fd)
{
	const struct conn_ops *ops = s->ops;
	struct conn *c;

	if (s->nconns >= s->max_conns && !conn_evict(s)) {
		if (ops->refuse)
			ops->refuse(fd);
		close(fd);
		return;
	}
	c = calloc(1, ops->size);
	if (!c) {
		close(fd);
		return;
	}
	c->srv = s;
	c->fd.fd = fd;
	c->fd.cb = conn_on_event;
	c->idle.cb = conn_on_idle;
	c->state = CONN_READING;
	c->uid = (uid_t)-1;
	c->last_active_ms = loop_now_ms();
	buf_init(&c->out);
	if (ops->open && ops->open(c) < 0) {
		close(fd);
		free(c);
		return;
	}
	if (loop_fd_add(s->loop, &c->fd, EPOLLIN, NULL) < 0) {
		if (ops->release)
			ops->release(c);
		close(fd);
		free(c);
		return;
	}
	c->polled = EPOLLIN;
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	loop_timer_set(s->loop, &c->idle, s->idle_ms);
}

/* Out of descriptors (or memory): with a level-triggered listener, retrying
 * at once would spin as long as the shortage lasts. Rest a moment instead,
 * and say so once per episode. */
static void conn_server_starve(struct conn_server *s, int en)
{
	loop_fd_del(s->loop, &s->listen);
	loop_timer_set(s->loop, &s->rest, CONN_REST_MS);
	if (s->starved)
		return;
	s->starved = true;
	conn_srv_log(s, LOG_WARN, "%s: cannot accept connections: %s; retrying every %d ms "
		     "until it can", s->what, strerror(en), CONN_REST_MS);
}

static void conn_server_on_rested(struct loop_timer *t)
{
	struct conn_server *s = container_of(t, struct conn_server, rest);

	if (s->listen.fd < 0)
		return;
	if (loop_fd_add(s->loop, &s->listen, EPOLLIN, NULL) < 0)
		loop_timer_set(s->loop, &s->rest, CONN_REST_MS);
}

static void conn_server_on_accept(struct loop_fd *f, uint32_t events)
{
	struct conn_server *s = container_of(f, struct conn_server, listen);

	(void)events;
	for (int i = 0; i < CONN_ACCEPT_BURST; i++) {
		int fd = accept4(f->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			/* accept(2): network errors pending on the new socket */
			case ENETDOWN: case EPROTO: case ENOPROTOOPT: case EHOSTDOWN:
			case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
				continue;
			case EAGAIN:
				break;
			default:            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, ... */
				conn_server_starve(s, errno);
				return;
			}
			break;
		}
		if (s->starved) {
			s->starved = false;
			conn_srv_log(s, LOG_INFO, "%s: accepting connections again", s->what);
		}
		conn_admit(s, fd);
	}
}

void conn_server_init(struct conn_server *s, struct loop *l, const struct conn_ops *ops,
		      int max_conns, unsigned idle_ms, ctl_handler_fn *handler, void *ctx,
		      ctl_log_fn *log)
{
	memset(s, 0, sizeof(*s));
	s->loop = l;
	s->ops = ops;
	s->listen.fd = -1;
	s->listen.cb = conn_server_on_accept;
	s->rest.cb = conn_server_on_rested;
	s->reap.cb = conn_on_reap;
	s->handler = handler;
	s->ctx = ctx;
	s->log = log;
	s->max_conns = max_conns;
	s->idle_ms = idle_ms;
}

int conn_server_listen(struct conn_server *s, int fd, struct err *e)
{
	int ret;

	s->listen.fd = fd;
	if ((ret = loop_fd_add(s->loop, &s->listen, EPOLLIN, e)) < 0) {
		close(fd);
		s->listen.fd = -1;
	}
	return ret;
}

void conn_server_unlisten(struct conn_server *s)
{
	loop_timer_cancel(s->loop, &s->rest);
	if (s->listen.fd < 0)
		return;
	loop_fd_del(s->loop, &s->listen);
	close(s->listen.fd);
	s->listen.fd = -1;
	s->starved = false;
}

void conn_server_retire(struct conn_server *s, void (*drained)(struct conn_server *s))
{
	conn_server_unlisten(s);
	s->retired = true;
	s->drained = drained;
	conn_reap_soon(s);          /* from the loop, never under the caller */
}

void conn_server_close(struct conn_server *s)
{
	conn_server_unlisten(s);
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	conn_reap(s);
	loop_timer_cancel(s->loop, &s->reap);
	s->retired = false;
}

/* ---- deferred replies (ctl.h) -------------------------------------------- */

struct ctl_reply *ctl_defer(const struct ctl_request *rq, ctl_cancel_fn *cancel, void *arg)
{
	struct conn *c = rq->conn;
	struct ctl_reply *r;

	if (!c || c->state != CONN_RUNNING || c->deferred)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		abort();                    /* as buf_*: out of memory is fatal */
	r->conn = c;
	r->cancel = cancel;
	r->arg = arg;
	c->reply = r;
	c->deferred = true;
	return r;
}

bool ctl_reply_gone(const struct ctl_reply *r)
{
	return !r->conn;
}

void ctl_reply_finish(struct ctl_reply *r, int status, const struct buf *body,
		      const struct err *e)
{
	struct conn *c;

	if (!r)
		return;
	c = r->conn;
	free(r);
	if (!c)
		return;                     /* the client went away: nothing to send */
	c->reply = NULL;
	ctl_format_reply(&c->out, status, body, e);
	if (c->state == CONN_PENDING)
		conn_reply(c);              /* else still RUNNING: conn_run sends it */
}
