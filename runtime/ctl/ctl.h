/* ctl.h - runtime/ctl: the control protocol: one request line of
 * words, one response; the Unix-socket server inside the daemon, the CLI client,
 * and aligned-table / JSON output.
 *
 * Wire format, the same on the Unix socket and inside TLS:
 *   request:  WORD[ WORD...]\n        at most CTL_REQ_MAX bytes with the newline.
 *             Bytes of a word outside [A-Za-z0-9._/:=,@+-] travel as %XX, so a
 *             word may hold spaces, '%' or newlines. Leading words "-o json"
 *             ask for JSON.
 *   response: "ok\n" BODY  |  "error MESSAGE\n" [DETAILS]; then the server
 *             closes. DETAILS (e.g. every error of a rejected config) go to
 *             the user's stderr after the message.
 */
#ifndef BERTH_CTL_H
#define BERTH_CTL_H

#include "runtime/config/config.h"
#include "lib/lib.h"

#include <sys/types.h>

#define CTL_REQ_MAX 4096            /* bytes, newline included */
#define CTL_MAX_ARGS 64
#define CTL_MAX_CONNS 64            /* concurrent clients; more are refused */
#define CTL_IDLE_MS 10000           /* a client that sends nothing is closed */

struct ctl_request {
	int argc;
	char **argv;                /* argv[0] is the command */
	bool json;                  /* -o json */
	uid_t uid;                  /* the peer, from SO_PEERCRED; (uid_t)-1 over TLS */
	bool read_only;             /* a [remote] read_only client: reads only */
};

/* Run one request: append the body to out and return 0, or return -errno with
 * the message in e (sent as "error MESSAGE", followed by out as details). */
typedef int ctl_handler_fn(void *ctx, const struct ctl_request *rq, struct buf *out,
			   struct err *e);

struct ctl_server {
	struct loop *loop;
	struct loop_fd listen;
	char path[108];
	ctl_handler_fn *handler;
	void *ctx;
	int nconns;
	struct ctl_conn *conns;     /* open connections */
};

/* Encode argv into buf as a request line (with '\n'). Returns its length, or
 * -ENOSPC when it does not fit in len (or in CTL_REQ_MAX). */
int ctl_encode_request(char *buf, size_t len, bool json, int argc, char *const *argv);
/* Decode a request line in place (line without its '\n', NUL-terminated).
 * Fills rq->argc/argv (argv must hold CTL_MAX_ARGS + 1) and rq->json.
 * Returns 0 or -EINVAL with the reason. */
int ctl_parse_request(char *line, struct ctl_request *rq, char **argv, struct err *e);

/* Turn one received request line (its '\n' replaced by a NUL; len bytes
 * before it) into the reply bytes appended to out: parse, run the handler
 * with who's uid/read_only, format "ok\n" BODY or "error MSG\n" DETAILS.
 * The Unix socket and the TLS listener share it. */
void ctl_handle_line(ctl_handler_fn *handler, void *ctx, const struct ctl_request *who,
		     char *line, size_t len, struct buf *out);
/* Append "error MSG\n" (MSG on one line) to out. */
void ctl_reply_error(struct buf *out, const char *msg);
#define CTL_ERR_TOO_LONG "request too long (max 4096 bytes)"

/* Listen on path (mode 0660; a stale socket file is replaced) and serve
 * requests from the loop. */
int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    ctl_handler_fn *handler, void *ctx, struct err *e);
void ctl_server_close(struct ctl_server *s);

/* Where the CLI sends requests when -r is given (DESIGN §7). */
struct ctl_remote {
	const char *host;           /* HOST:PORT or [V6]:PORT */
	const char *cert, *key;     /* the client's certificate (chain) and key */
	const char *ca;             /* the CA that signed the server's certificate */
};

/* From now on ctl_call() talks to r over TLS instead of a Unix socket (r is
 * borrowed; NULL goes back to the socket). */
void ctl_use_remote(const struct ctl_remote *r);
/* Split a whole reply into body/e with ctl_call()'s return contract; where
 * names the daemon in messages. */
int ctl_parse_reply(struct buf *reply, const char *where, struct buf *body, struct err *e);

/* Send one request to the daemon at path and read the whole reply. Returns 0
 * with the body in body when the daemon said ok; 1 when it said error (the
 * message in e, any details in body); -errno when it could not be reached
 * (the reason in e). With ctl_use_remote(), path is ignored. */
int ctl_call(const char *path, bool json, int argc, char *const *argv, struct buf *body,
	     struct err *e);

/* Tables: column names in upper case ("NAME", "HOST PORT"); a trailing '#'
 * marks a numeric column ("RESTARTS#"), printed bare in JSON. Text output is
 * aligned columns; JSON is an array of objects keyed by the lower-case names
 * with '_' for spaces. */
struct table {
	size_t ncols, nrows;
	const char *cols[16];
	char **cells;               /* nrows * ncols, owned */
};

void table_init(struct table *t, size_t ncols, const char *const *cols);
void table_add(struct table *t, ...);  /* ncols strings (NULL prints "-") */
void table_render(const struct table *t, bool json, struct buf *out);
void table_free(struct table *t);

/* ---- the daemon's listener (remote.c) ------------------------------------ */

struct remote_server;

typedef void remote_log_fn(void *ctx, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Load [remote]'s files and listen; requests go to handler like on the Unix
 * socket. Returns the server, or NULL with the reason in e. */
struct remote_server *remote_server_open(struct loop *l, const struct cfg_remote *cfg,
					 ctl_handler_fn *handler, void *ctx,
					 remote_log_fn *log, struct err *e);
/* Reload: re-read the files (a renewed certificate takes effect for new
 * clients) and reopen the listener if its address changed. On failure the
 * running listener stays and e says why (-1). Returns 1 when the address,
 * a file's contents or a key list changed, else 0. */
int remote_server_update(struct remote_server *s, const struct cfg_remote *cfg, struct err *e);
void remote_server_close(struct remote_server *s);
/* Stop listening now; free s once its connections are done. Safe inside a
 * request handler running on one of them (a reload that drops [remote]). */
void remote_server_retire(struct remote_server *s);
/* At shutdown: close retired servers whose clients have not finished. */
void remote_server_close_retired(void);
/* The address it listens on, "ADDR:PORT" or "[ADDR6]:PORT". */
const char *remote_server_addr(const struct remote_server *s);

/* ---- the CLI side --------------------------------------------------------- */

/* ctl_call() over TLS to r->host (HOST:PORT, [V6]:PORT). Same contract. */
int remote_call(const struct ctl_remote *r, bool json, int argc, char *const *argv,
		struct buf *body, struct err *e);

/* `berth tls init|client|spki ...` (cmd_tls.c); argv[0] is "tls". */
int cmd_tls(int argc, char **argv);

#endif
