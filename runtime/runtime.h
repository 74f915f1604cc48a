/* runtime.h - the program: command dispatch, the daemon and its event loop.
 * runtime/ is the only module that knows all the others (DESIGN §1). */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include <stdbool.h>

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

#endif
