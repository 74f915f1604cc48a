/* conn.h - the one connection server behind the control socket and the TLS
 * listener. Internal to runtime/ctl/: the rest of berth uses ctl.h.
 *
 * The server owns what every transport needs alike: the listener on the
 * loop, accept4, the list of connections and its limit (at the limit the
 * connection idle longest makes room, RFC 7766 §6.2.3), the request line and
 * reply buffers, the idle deadline, a listener that rests when the process
 * runs out of descriptors, deferred replies, and closing (mark, then reap
 * after dispatch: STYLE H4). A transport (struct conn_ops) supplies what
 * differs: the Unix socket checks SO_PEERCRED and moves bytes with
 * recv/send; TLS drives a BearSSL engine and knows the client's key. This is
 * redis's ConnectionType (connection.h; socket.c, unix.c, tls.c).
 *
 * A connection's life:
 *   READING  the request line (TLS: the handshake first)
 *   RUNNING  the handler runs, synchronously
 *   PENDING  the handler took the reply (ctl_defer) and answers later
 *   WRITING  the reply goes out
 *   ENDING   the transport ends its stream (TLS: close_notify)
 *   LINGER   our side is shut; input is discarded until the client closes,
 *            so unread input cannot turn the close into a reset that loses
 *            the reply
 *   CLOSED   waiting to be freed after the loop's round
 * The idle deadline runs in every state but RUNNING and PENDING: from accept
 * for the request, then again from the start of the reply.
 */
#ifndef BERTH_CTL_CONN_H
#define BERTH_CTL_CONN_H

#include "runtime/ctl/ctl.h"
#include "lib/lib.h"

#include <sys/types.h>

#define CONN_ACCEPT_BURST 64        /* accepts per listener event; the next round takes more */
#define CONN_REST_MS 200            /* out of descriptors: the listener rests this long */
#define CONN_DRAIN_BURST 16         /* reads of discarded input per event */

enum conn_state {
	CONN_READING,
	CONN_RUNNING,
	CONN_PENDING,
	CONN_WRITING,
	CONN_ENDING,
	CONN_LINGER,
	CONN_CLOSED,
};

/* What the server tells a transport, for its log. */
enum conn_note {
	CONN_NOTE_TOO_LONG,         /* the request line is too long: refused */
	CONN_NOTE_TIMEOUT,          /* the idle deadline passed (see c->state) */
	CONN_NOTE_EVICTED,          /* closed to make room for a new client */
};

struct conn_server;

struct conn {
	struct loop_fd fd;
	struct loop_timer idle;
	struct conn_server *srv;
	struct conn *next;          /* the server's list, newest first */
	enum conn_state state;
	uint32_t polled;            /* the events the loop watches */
	uint64_t last_active_ms;    /* accept, or the client's last bytes */
	bool deferred;              /* the handler called ctl_defer */
	bool rd_eof;                /* PENDING: the client shut its sending side */
	uid_t uid;                  /* who: SO_PEERCRED; (uid_t)-1 over TLS */
	bool read_only;             /* [remote] read_only */
	struct ctl_reply *reply;    /* owed to the client (PENDING) */
	char in[CTL_REQ_MAX + 1];
	size_t inlen;
	struct buf out;
	size_t outoff;
};

/* A transport. Byte I/O returns a count, 0 at the end of the client's
 * stream, or -errno (-EAGAIN: wait for the loop). Optional hooks may be NULL. */
struct conn_ops {
	size_t size;                /* of the transport's connection, which embeds struct conn */
	bool half_close;            /* EOF while a reply is pending may be a half close */
	/* A connection was accepted: set it up (c->fd.fd is open). -errno drops it. */
	int (*open)(struct conn *c);
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	ssize_t (*write)(struct conn *c, const void *buf, size_t len);
	/* The reply is written: end the stream. 0 when done, -EAGAIN to be called again. */
	int (*end)(struct conn *c);
	/* The events to wait for after read/write/end said -EAGAIN; base is what
	 * the server would wait for. */
	uint32_t (*events)(struct conn *c, uint32_t base);
	/* A request line arrived: NULL to run it, or a refusal sent as the error. */
	const char *(*admit)(struct conn *c, const char *line);
	void (*note)(struct conn *c, enum conn_note what);
	/* Free what open() set up (the server closes the fd and frees c). */
	void (*release)(struct conn *c);
	/* Full, and nobody to evict: tell the client before the fd is closed. */
	void (*refuse)(int fd);
};

struct conn_server {
	struct loop *loop;
	const struct conn_ops *ops;
	char what[160];             /* "control socket PATH": for the log */
	struct loop_fd listen;      /* fd -1: not listening */
	struct loop_timer rest;     /* the listener's pause after EMFILE & co. */
	struct loop_timer reap;     /* frees closed connections after the round */
	ctl_handler_fn *handler;
	void *ctx;                  /* for handler and log */
	ctl_log_fn *log;            /* may be NULL */
	int max_conns;
	unsigned idle_ms;
	int nconns;                 /* open, not counting those closed */
	struct conn *conns;
	bool starved;               /* accept is out of descriptors (logged once) */
	bool retired;               /* no listener: drained() once the last one is gone */
	void (*drained)(struct conn_server *s);
};

void conn_server_init(struct conn_server *s, struct loop *l, const struct conn_ops *ops,
		      int max_conns, unsigned idle_ms, ctl_handler_fn *handler, void *ctx,
		      ctl_log_fn *log);
/* Serve the listening socket fd (non-blocking, CLOEXEC); s owns it from now
 * on, also on failure. */
int conn_server_listen(struct conn_server *s, int fd, struct err *e);
/* Stop listening and close the listening socket. */
void conn_server_unlisten(struct conn_server *s);
/* Stop listening; drained(s) runs from the loop once no connection is left
 * (at once if there is none). Safe inside a handler on one of s's own. */
void conn_server_retire(struct conn_server *s, void (*drained)(struct conn_server *s));
/* Close every connection and the listener now (owed replies are cancelled).
 * Not from inside a handler of s: use conn_server_retire. */
void conn_server_close(struct conn_server *s);

/* Close c: mark it and let the loop free it after this round (STYLE H4). */
void conn_close(struct conn *c);

/* control.c: run one request line (NUL-terminated, len bytes) with who's
 * uid/read_only and conn: parse, call the handler, and append the reply to
 * out. Returns CTL_PENDING, with nothing appended, when the handler returned
 * it; else 0. */
int ctl_run_request(ctl_handler_fn *handler, void *ctx, const struct ctl_request *who,
		    char *line, size_t len, struct buf *out);
/* Append "ok\n" BODY (status >= 0) or "error MSG\n" BODY to out. */
void ctl_format_reply(struct buf *out, int status, const struct buf *body, const struct err *e);

#endif
