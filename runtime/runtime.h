/* runtime.h - the program: command dispatch, the daemon and its event loop.
 * runtime/ is the only module that knows all the others (DESIGN §1). */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

struct err;

/* Exit codes of the CLI (s6 style): 0 ok, 1 the operation failed, 2 usage,
 * 3 nothing to do: the container already was as asked (`stop` of a stopped
 * container, `start` of a running one), said once, so that a script can
 * tell "done now" from "was already so" and neither from a failure. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_NOOP = 3,
};

struct daemon_opts {
	const char *config_dir;     /* -c DIR; NULL: the embedded default config */
	bool foreground;
	bool keep_network;          /* --keep-network: leave table inet berth at stop */
};

/* Run the daemon until SIGTERM/SIGINT. Returns an exit code. */
int daemon_main(const struct daemon_opts *o);

/* `berth net attach|detach|bridge-delete ...` (runtime/cmd_net.c). argv[0] is
 * "net". Returns an exit code. */
int cmd_net(int argc, char **argv);

/* `berth events [-f] [--since T] [--type T]...` (cmd_events.c) and `berth
 * stats [--no-stream] [NAME...]` (cmd_stats.c) against the daemon at socket
 * (ignored with a remote target). argv[0] is the command. Return an exit
 * code. */
int cmd_events(const char *socket, bool json, int argc, char **argv);
int cmd_stats(const char *socket, bool json, int argc, char **argv);
/* --since T: RFC 3339 ("2026-12-07T16:47:37Z", an offset, a fraction),
 * unix seconds, or a duration before now ("10m", "1h30m", "2d") into unix
 * seconds. Returns 0 or -EINVAL with the reason. */
int events_parse_since(const char *s, int64_t now, int64_t *out, struct err *e);

#endif
