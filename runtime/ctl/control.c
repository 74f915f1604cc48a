/* control.c - the control protocol: request encoding, running a request
 * through the command table, the daemon's Unix socket (a transport of the
 * connection server in conn.c: peer credentials checked) and the CLI client. */
#include "runtime/ctl/conn.h"
#include "runtime/ctl/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- running a request ------------------------------------------------- */

void ctl_reply_error(struct buf *out, const char *msg)
{
	buf_puts(out, "error ");
	for (; *msg; msg++)         /* one line of message */
		buf_append(out, *msg == '\n' ? " " : msg, 1);
	buf_puts(out, "\n");
}

void ctl_format_reply(struct buf *out, int status, const struct buf *body, const struct err *e)
{
	if (status < 0)             /* a body may follow the message (e.g. every config error) */
		ctl_reply_error(out, e && e->msg[0] ? e->msg : "request failed");
	else
		buf_puts(out, "ok\n");
	if (body && body->len)
		buf_append(out, body->data, body->len);
}

int ctl_run_request(ctl_handler_fn *handler, void *ctx, const struct ctl_request *who,
		    char *line, size_t len, struct buf *out)
{
	char *argv[CTL_MAX_ARGS + 1];
	struct ctl_request rq = { .uid = who->uid, .read_only = who->read_only, .conn = who->conn };
	struct buf body;
	struct err e = { 0 };
	int ret;

	if (memchr(line, '\0', len)) {
		ctl_reply_error(out, "malformed request: NUL byte");
		return 0;
	}
	buf_init(&body);
	ret = ctl_parse_request(line, &rq, argv, &e);
	if (ret == 0)
		ret = handler(ctx, &rq, &body, &e);
	if (ret != CTL_PENDING)
		ctl_format_reply(out, ret, &body, &e);
	buf_free(&body);
	return ret == CTL_PENDING ? CTL_PENDING : 0;
}

void ctl_handle_line(ctl_handler_fn *handler, void *ctx, const struct ctl_request *who,
		     char *line, size_t len, struct buf *out)
{
	struct ctl_request sync = { .uid = who->uid, .read_only = who->read_only };

	if (ctl_run_request(handler, ctx, &sync, line, len, out) == CTL_PENDING)
		ctl_reply_error(out, "internal error: the reply was deferred without ctl_defer");
}

/* "ps" matches argv[0]; "image ls" argv[0] and argv[1]. */
static bool command_matches(const char *name, const struct ctl_request *rq)
{
	const char *sp = strchr(name, ' ');
	size_t n = sp ? (size_t)(sp - name) : strlen(name);

	if (strncmp(rq->argv[0], name, n) || rq->argv[0][n])
		return false;
	return !sp || (rq->argc > 1 && !strcmp(rq->argv[1], sp + 1));
}

int ctl_dispatch(const struct ctl_command *cmds, size_t n, struct daemon *d,
		 const struct ctl_request *rq, struct buf *out, struct err *e)
{
	const struct ctl_command *cmd = NULL;

	for (size_t i = 0; i < n && !cmd; i++)
		if (command_matches(cmds[i].name, rq))
			cmd = &cmds[i];
	/* fail closed: a read-only client runs only what is known to be a read */
	if (rq->read_only && (!cmd || cmd->mutates))
		return err_set(e, EPERM, "permission denied: read-only client");
	if (!cmd)
		return err_set(e, EINVAL, "unknown command '%s'", rq->argv[0]);
	return cmd->run(d, rq, out, e);
}

/* ---- the Unix socket: a transport of the connection server (conn.h) ------ */

struct ctl_unix_conn {
	struct conn c;
	bool allowed;               /* SO_PEERCRED said yes */
};

/* Root, the daemon's own user, and its group (the socket is 0660) may talk. */
static int unix_open(struct conn *c)
{
	struct ctl_unix_conn *u = container_of(c, struct ctl_unix_conn, c);
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(c->fd.fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return 0;               /* not allowed: told so once it asks */
	c->uid = cr.uid;
	u->allowed = cr.uid == 0 || cr.uid == geteuid() || cr.gid == getegid();
	return 0;
}

static ssize_t unix_read(struct conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(c->fd.fd, buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : n;
	}
}

static ssize_t unix_write(struct conn *c, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(c->fd.fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : n;
	}
}

static const char *unix_admit(struct conn *c, const char *line)
{
	(void)line;
	if (!container_of(c, struct ctl_unix_conn, c)->allowed)
		return "permission denied: only root and the daemon's user or group may use this socket";
	return NULL;
}

static void unix_refuse(int fd)
{
	static const char busy[] = "error too many clients, try again\n";

	(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static const struct conn_ops ctl_unix_ops = {
	.size = sizeof(struct ctl_unix_conn),
	.half_close = true,         /* `nc -N` shuts its side and still reads */
	.open = unix_open,
	.read = unix_read,
	.write = unix_write,
	.admit = unix_admit,
	.refuse = unix_refuse,
};

int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    ctl_handler_fn *handler, void *ctx, ctl_log_fn *log, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, ret;

	memset(s, 0, sizeof(*s));
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
	s->srv = calloc(1, sizeof(*s->srv));
	if (!s->srv) {
		ret = err_set(e, ENOMEM, "out of memory");
		goto err_unlink;
	}
	conn_server_init(s->srv, l, &ctl_unix_ops, CTL_MAX_CONNS, CTL_IDLE_MS, handler, ctx, log);
	snprintf(s->srv->what, sizeof(s->srv->what), "control socket %s", path);
	snprintf(s->path, sizeof(s->path), "%s", path);
	if ((ret = conn_server_listen(s->srv, fd, e)) < 0) {    /* closes fd */
		free(s->srv);
		s->srv = NULL;
		unlink(path);
		return ret;
	}
	return 0;
err_unlink:
	unlink(path);
err_close:
	close(fd);
	return ret;
}

void ctl_server_close(struct ctl_server *s)
{
	if (!s->srv)
		return;
	conn_server_close(s->srv);
	free(s->srv);
	s->srv = NULL;
	unlink(s->path);
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
