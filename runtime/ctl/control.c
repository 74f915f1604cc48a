/* control.c - the control protocol: request encoding, the daemon's Unix-socket
 * server (non-blocking, bounded, peer credentials checked) and the CLI client. */
#include "runtime/ctl/ctl.h"
#include "runtime/ctl/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bool ctl_safe_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._/:=,@+-", c) != NULL;
}

int ctl_encode_request(char *buf, size_t len, bool json, int argc, char *const *argv)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	if (len > CTL_REQ_MAX)
		len = CTL_REQ_MAX;
	if (json) {
		if (len < 9)
			return -ENOSPC;
		memcpy(buf, "-o json ", 8);
		n = 8;
	}
	for (int i = 0; i < argc; i++) {
		const unsigned char *w = (const unsigned char *)argv[i];

		if (i > 0) {
			if (n + 1 >= len)
				return -ENOSPC;
			buf[n++] = ' ';
		}
		if (!*w) {          /* an empty word travels as "%" alone */
			if (n + 1 >= len)
				return -ENOSPC;
			buf[n++] = '%';
		}
		for (; *w; w++) {
			if (n + 3 >= len)
				return -ENOSPC;
			if (ctl_safe_byte(*w) && *w) {
				buf[n++] = (char)*w;
			} else {
				buf[n++] = '%';
				buf[n++] = hex[*w >> 4];
				buf[n++] = hex[*w & 15];
			}
		}
	}
	if (n + 1 >= len)
		return -ENOSPC;
	buf[n++] = '\n';
	buf[n] = '\0';
	return (int)n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode one %-escaped word in place; returns 0 or -EINVAL. */
static int ctl_unescape(char *w)
{
	char *r = w, *o = w;

	if (!strcmp(w, "%")) {
		*w = '\0';
		return 0;
	}
	while (*r) {
		if (*r == '%') {
			int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -EINVAL;
			*o++ = (char)(hi << 4 | lo);
			r += 3;
		} else {
			*o++ = *r++;
		}
	}
	*o = '\0';
	return 0;
}

int ctl_parse_request(char *line, struct ctl_request *rq, char **argv, struct err *e)
{
	int argc = 0;
	char *p = line, *save = NULL;

	rq->json = false;
	for (char *w = strtok_r(p, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (argc >= CTL_MAX_ARGS)
			return err_set(e, EINVAL, "too many words in the request (max %d)", CTL_MAX_ARGS);
		if (ctl_unescape(w) < 0)
			return err_set(e, EINVAL, "malformed %%-escape in the request");
		argv[argc++] = w;
	}
	argv[argc] = NULL;
	if (argc >= 2 && !strcmp(argv[0], "-o") && !strcmp(argv[1], "json")) {
		rq->json = true;
		argv += 2;
		argc -= 2;
	}
	if (argc == 0)
		return err_set(e, EINVAL, "empty request");
	rq->argc = argc;
	rq->argv = argv;
	return 0;
}

/* ---- server ------------------------------------------------------------- */

struct ctl_conn {
	struct loop_fd fd;
	struct loop_timer idle;
	struct ctl_server *srv;
	struct ctl_conn *next;
	uid_t uid;
	bool allowed;
	char in[CTL_REQ_MAX + 1];
	size_t inlen;
	struct buf out;
	size_t outoff;
};

static void ctl_conn_close(struct ctl_conn *c)
{
	struct ctl_server *s = c->srv;

	for (struct ctl_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->nconns--;
	loop_fd_del(s->loop, &c->fd);
	loop_timer_cancel(s->loop, &c->idle);
	close(c->fd.fd);
	buf_free(&c->out);
	free(c);
}

static void ctl_conn_flush(struct ctl_conn *c)
{
	while (c->outoff < c->out.len) {
		ssize_t n = send(c->fd.fd, c->out.data + c->outoff, c->out.len - c->outoff,
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;     /* wait for EPOLLOUT */
			break;
		}
		c->outoff += (size_t)n;
	}
	ctl_conn_close(c);
}

void ctl_reply_error(struct buf *out, const char *msg)
{
	buf_puts(out, "error ");
	for (; *msg; msg++)         /* one line of message */
		buf_append(out, *msg == '\n' ? " " : msg, 1);
	buf_puts(out, "\n");
}

static void ctl_conn_reply_error(struct ctl_conn *c, const char *msg)
{
	buf_reset(&c->out);
	ctl_reply_error(&c->out, msg);
}

void ctl_handle_line(ctl_handler_fn *handler, void *ctx, const struct ctl_request *who,
		     char *line, size_t len, struct buf *out)
{
	char *argv[CTL_MAX_ARGS + 1];
	struct ctl_request rq = { .uid = who->uid, .read_only = who->read_only };
	struct buf body;
	struct err e = { 0 };

	if (memchr(line, '\0', len)) {
		ctl_reply_error(out, "malformed request: NUL byte");
		return;
	}
	buf_init(&body);
	if (ctl_parse_request(line, &rq, argv, &e) < 0 || handler(ctx, &rq, &body, &e) < 0) {
		/* a body may follow the message (e.g. every config error) */
		ctl_reply_error(out, e.msg[0] ? e.msg : "request failed");
	} else {
		buf_puts(out, "ok\n");
	}
	if (body.len)
		buf_append(out, body.data, body.len);
	buf_free(&body);
}

static void ctl_conn_dispatch(struct ctl_conn *c, size_t len)
{
	struct ctl_server *s = c->srv;
	struct ctl_request who = { .uid = c->uid };

	if (!c->allowed)
		ctl_conn_reply_error(c, "permission denied: only root and the daemon's user or group may use this socket");
	else
		ctl_handle_line(s->handler, s->ctx, &who, c->in, len, &c->out);
	loop_timer_cancel(s->loop, &c->idle);
	loop_fd_mod(s->loop, &c->fd, EPOLLOUT, NULL);
	ctl_conn_flush(c);
}

static void ctl_conn_on_event(struct loop_fd *f, uint32_t events)
{
	struct ctl_conn *c = container_of(f, struct ctl_conn, fd);
	char *nl;
	ssize_t n;

	if (c->out.len) {            /* reply under way */
		ctl_conn_flush(c);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	n = recv(f->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ctl_conn_close(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	nl = memchr(c->in, '\n', c->inlen);
	if (nl) {
		*nl = '\0';
		ctl_conn_dispatch(c, (size_t)(nl - c->in));
	} else if (c->inlen >= sizeof(c->in) - 1) {
		ctl_conn_reply_error(c, CTL_ERR_TOO_LONG);
		loop_fd_mod(c->srv->loop, f, EPOLLOUT, NULL);
		ctl_conn_flush(c);
	}
}

static void ctl_conn_on_idle(struct loop_timer *t)
{
	ctl_conn_close(container_of(t, struct ctl_conn, idle));
}

/* Root, the daemon's own user, and its group (the socket is 0660) may talk. */
static bool ctl_peer_allowed(int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	*uid = cr.uid;
	return cr.uid == 0 || cr.uid == geteuid() || cr.gid == getegid();
}

/* At the limit, the oldest client that has not finished its request makes
 * room, so clients holding idle connections cannot lock everyone else out. */
static bool ctl_evict_idle(struct ctl_server *s)
{
	struct ctl_conn *oldest = NULL;

	for (struct ctl_conn *c = s->conns; c; c = c->next)
		if (!c->out.len)
			oldest = c;         /* the list is newest first */
	if (!oldest)
		return false;
	ctl_conn_close(oldest);
	return true;
}

static void ctl_server_on_accept(struct loop_fd *f, uint32_t events)
{
	struct ctl_server *s = container_of(f, struct ctl_server, listen);

	(void)events;
	for (;;) {
		int fd = accept4(f->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_conn *c;

		if (fd < 0)
			return;     /* EAGAIN, or a transient error: the next event retries */
		if (s->nconns >= CTL_MAX_CONNS && !ctl_evict_idle(s)) {
			static const char busy[] = "error too many clients, try again\n";
			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd.fd = fd;
		c->fd.cb = ctl_conn_on_event;
		c->idle.cb = ctl_conn_on_idle;
		c->allowed = ctl_peer_allowed(fd, &c->uid);
		buf_init(&c->out);
		if (loop_fd_add(s->loop, &c->fd, EPOLLIN, NULL) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
		loop_timer_set(s->loop, &c->idle, CTL_IDLE_MS);
	}
}

int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    ctl_handler_fn *handler, void *ctx, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, ret;

	memset(s, 0, sizeof(*s));
	s->listen.fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, "control socket path %s is longer than %zu bytes",
			       path, sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "control socket");
	/* The caller holds the daemon lock, so a socket file left here is stale. */
	if (unlink(path) < 0 && errno != ENOENT) {
		ret = err_sys(e, errno, "remove stale control socket %s", path);
		goto err_close;
	}
	old = umask(0117);          /* born 0660: no window with a wider mode */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0) {
		ret = err_sys(e, errno, "bind control socket %s", path);
		goto err_close;
	}
	if (listen(fd, 64) < 0) {
		ret = err_sys(e, errno, "listen on control socket %s", path);
		goto err_unlink;
	}
	s->loop = l;
	s->handler = handler;
	s->ctx = ctx;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->listen.fd = fd;
	s->listen.cb = ctl_server_on_accept;
	if ((ret = loop_fd_add(l, &s->listen, EPOLLIN, e)) < 0)
		goto err_unlink;
	return 0;
err_unlink:
	unlink(path);
err_close:
	close(fd);
	s->listen.fd = -1;
	return ret;
}

void ctl_server_close(struct ctl_server *s)
{
	while (s->conns)
		ctl_conn_close(s->conns);
	if (s->listen.fd >= 0) {
		loop_fd_del(s->loop, &s->listen);
		close(s->listen.fd);
		unlink(s->path);
		s->listen.fd = -1;
	}
}

/* ---- client ------------------------------------------------------------- */

static const struct ctl_remote *ctl_remote_target;

void ctl_use_remote(const struct ctl_remote *r)
{
	ctl_remote_target = r;
}

int ctl_parse_reply(struct buf *reply, const char *where, struct buf *body, struct err *e)
{
	char *nl = reply->len ? memchr(reply->data, '\n', reply->len) : NULL;

	if (!nl)
		return err_set(e, EPROTO, "berth at %s closed the connection without a reply", where);
	if (!strncmp(reply->data, "ok\n", 3)) {
		buf_append(body, nl + 1, reply->len - (size_t)(nl + 1 - reply->data));
		return 0;
	}
	if (!strncmp(reply->data, "error ", 6)) {
		*nl = '\0';
		err_set(e, EIO, "%s", reply->data + 6);
		buf_append(body, nl + 1, reply->len - (size_t)(nl + 1 - reply->data));
		return 1;
	}
	return err_set(e, EPROTO, "berth at %s sent a malformed reply", where);
}

int ctl_call(const char *path, bool json, int argc, char *const *argv, struct buf *body,
	     struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[CTL_REQ_MAX + 1];
	struct buf reply;
	int fd, n, ret;

	if (ctl_remote_target)
		return remote_call(ctl_remote_target, json, argc, argv, body, e);
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, ENAMETOOLONG, "socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	n = ctl_encode_request(req, sizeof(req), json, argc, argv);
	if (n < 0)
		return err_set(e, E2BIG, "request too long (max %d bytes)", CTL_REQ_MAX);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_sys(e, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int en = errno;

		close(fd);
		err_set(e, en, "cannot reach berth at %s: %s (is the daemon running?)", path,
			strerror(en));
		return -en;
	}
	for (int off = 0; off < n;) {
		ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0) {
			ret = err_sys(e, errno, "send request to %s", path);
			close(fd);
			return ret;
		}
		off += (int)w;
	}
	buf_init(&reply);
	for (;;) {
		char chunk[8192];
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = err_sys(e, errno, "read reply from %s", path);
			goto out;
		}
		if (r == 0)
			break;
		buf_append(&reply, chunk, (size_t)r);
	}
	ret = ctl_parse_reply(&reply, path, body, e);
out:
	buf_free(&reply);
	close(fd);
	return ret;
}
