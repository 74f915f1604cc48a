/* ctl.h - runtime/ctl: the control protocol: one request line of
 * words, one response; the request table, the servers inside the daemon (the
 * Unix socket and the TLS listener, one connection server behind both), the
 * CLI client, and aligned-table / JSON output.
 *
 * Wire format, the same on the Unix socket and inside TLS:
 *   request:  WORD[ WORD...]\n        at most CTL_REQ_MAX bytes with the newline.
 *             Bytes of a word outside [A-Za-z0-9._/:=,@+-] travel as %XX, so a
 *             word may hold spaces, '%' or newlines. Leading words "-o json"
 *             ask for JSON.
 *   response: "ok\n" BODY  |  "error MESSAGE\n" [DETAILS]; then the server
 *             closes. DETAILS (e.g. every error of a rejected config) go to
 *             the user's stderr after the message (cli_print_error; with
 *             -o json both go to stdout as one object).
 */
#ifndef BERTH_CTL_H
#define BERTH_CTL_H

#include "runtime/config/config.h"
#include "lib/lib.h"

#include <sys/types.h>

#define CTL_REQ_MAX 4096            /* bytes, newline included */
#define CTL_MAX_ARGS 64
#define CTL_MAX_CONNS 64            /* concurrent clients; at the limit the one idle longest goes */
#define CTL_IDLE_MS 10000           /* to send the request, and again to take the reply */

struct conn;
struct conn_server;
struct daemon;                     /* the owner of the commands (runtime/daemon_int.h) */

struct ctl_request {
	int argc;
	char **argv;                /* argv[0] is the command */
	bool json;                  /* -o json */
	uid_t uid;                  /* the peer, from SO_PEERCRED; (uid_t)-1 over TLS */
	bool read_only;             /* a [remote] read_only client: reads only */
	struct conn *conn;          /* private: the connection (ctl_defer); NULL outside a server */
};

/* Run one request: append the body to out and return 0, or return -errno with
 * the message in e (sent as "error MESSAGE", followed by out as details), or
 * return CTL_PENDING after taking the reply with ctl_defer(). */
typedef int ctl_handler_fn(void *ctx, const struct ctl_request *rq, struct buf *out,
			   struct err *e);

typedef void ctl_log_fn(void *ctx, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- the request table ----------------------------------------------------- */

/* One command the daemon answers. The daemon's table (runtime/requests.c) is
 * the one place that says which commands exist and which of them change
 * something; the read-only rule of [remote] reads the same rows. */
typedef int ctl_command_fn(struct daemon *d, const struct ctl_request *rq, struct buf *out,
			   struct err *e);

struct ctl_command {
	const char *name;           /* argv[0], or "argv[0] argv[1]" (a subcommand whose
				     * mutates differs from its command's row, which
				     * comes after it: the first row that matches runs) */
	ctl_command_fn *run;
	bool mutates;               /* changes something: refused to read-only clients */
};

/* Run rq's command from the table cmds[n]. A read-only client may run only
 * the rows that do not mutate (an unknown command counts as one that does:
 * "permission denied: read-only client"); otherwise an unknown command is
 * "unknown command 'NAME'". Returns what the command returned. */
int ctl_dispatch(const struct ctl_command *cmds, size_t n, struct daemon *d,
		 const struct ctl_request *rq, struct buf *out, struct err *e);

/* ---- deferred replies ------------------------------------------------------- */

/* A handler that must not block the loop (it waits for containers to stop,
 * say) takes the reply with ctl_defer(), starts its work, and returns
 * CTL_PENDING; once done, it calls ctl_reply_finish() from wherever the loop
 * got it to (a timer, a pidfd), and the client gets exactly what a
 * synchronous reply would have given it. Works on the Unix socket and over
 * TLS alike; the client waits with its connection open. */
#define CTL_PENDING 1

struct ctl_reply;
/* The client went away before the reply: r stays the owner's until it calls
 * ctl_reply_finish(r, ...), which then sends nothing. Called once, from the
 * loop; the owner may finish r right here. */
typedef void ctl_cancel_fn(struct ctl_reply *r, void *arg);

/* Take the reply to rq (inside its handler, once). cancel may be NULL (then
 * ctl_reply_gone() tells). The handler must return CTL_PENDING; whatever it
 * returns, the reply goes through r. NULL when rq cannot be deferred (it
 * came through ctl_handle_line, not a connection). rq and its words are
 * valid only during the handler: keep copies. */
struct ctl_reply *ctl_defer(const struct ctl_request *rq, ctl_cancel_fn *cancel, void *arg);
/* Send the reply and free r: status >= 0 sends "ok" and body; status < 0
 * "error" with e's message and body as details (body and e may be NULL). If
 * the client has gone, only frees r. Exactly once per ctl_defer(). */
void ctl_reply_finish(struct ctl_reply *r, int status, const struct buf *body,
		      const struct err *e);
/* Has the client gone (would ctl_reply_finish send nothing)? */
bool ctl_reply_gone(const struct ctl_reply *r);

/* ---- the wire ---------------------------------------------------------------- */

struct ctl_server {
	struct conn_server *srv;    /* NULL while closed */
	char path[108];
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
 * Synchronous: the handler cannot defer here (ctl_defer gives NULL). */
void ctl_handle_line(ctl_handler_fn *handler, void *ctx, const struct ctl_request *who,
		     char *line, size_t len, struct buf *out);
/* Append "error MSG\n" (MSG on one line) to out. */
void ctl_reply_error(struct buf *out, const char *msg);
#define CTL_ERR_TOO_LONG "request too long (max 4096 bytes)"

/* Listen on path (mode 0660; a stale socket file is replaced) and serve
 * requests from the loop; log (may be NULL) hears of trouble accepting.
 * ctl_server_close on a zeroed or closed s does nothing. */
int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    ctl_handler_fn *handler, void *ctx, ctl_log_fn *log, struct err *e);
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

/* Tables: one spec per column, TITLE[#|[]][=key][?null]:
 *   TITLE   the heading, upper case ("NAME", "HOST PORT");
 *   #       a number, printed bare in JSON ("RESTARTS#");
 *   []      a list: the cell is comma-separated, JSON gets an array of
 *           strings ("NETWORKS[]" -> "networks":["a","b"]; absent: []);
 *   =key    the JSON name when it is not the title's ("PORT#=container_port");
 *   ?null   the text people see for an absent cell ("HOST IP?*"), "-" if not given.
 * Text output is aligned columns; JSON is an array of objects keyed by the
 * lower-case titles with '_' for spaces, absent cells (NULL or "") null. */
struct table {
	size_t ncols, nrows;
	const char *cols[16];
	char **cells;               /* nrows * ncols, owned; NULL: absent */
};

void table_init(struct table *t, size_t ncols, const char *const *cols);
void table_add(struct table *t, ...);  /* ncols strings; NULL or "": absent */
void table_render(const struct table *t, bool json, struct buf *out);
void table_free(struct table *t);

/* A duration for people, largest unit first: "5s", "12m 5s", "3h 0m 5s",
 * "2d 3h 12m 5s" (JSON gives seconds: *_seconds). Returns buf. */
char *cli_duration(char *buf, size_t size, uint64_t seconds);

/* A failed command, printed once at the edge: for people "berth: MSG" on
 * stderr and details (lines) after it; with -o json one object on stdout,
 * {"error":"MSG","details":["line",...]} (details [] when there are none),
 * so that a program reading stdout always gets JSON. details may be NULL. */
void cli_print_error(bool json, const char *msg, const struct buf *details);

/* ---- the daemon's listener (remote.c) ------------------------------------ */

struct remote_server;

/* Load [remote]'s files and listen; requests go to handler like on the Unix
 * socket. Returns the server, or NULL with the reason in e. */
struct remote_server *remote_server_open(struct loop *l, const struct cfg_remote *cfg,
					 ctl_handler_fn *handler, void *ctx,
					 ctl_log_fn *log, struct err *e);
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
