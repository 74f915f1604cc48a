/* main.c - berth's entry point: global options, then one command. */
#include "runtime/runtime.h"
#include "runtime/cli.h"
#include "runtime/cni/cni.h"
#include "runtime/config/config.h"
#include "runtime/ctl/ctl.h"
#include "runtime/ctr/ctr.h"
#include "runtime/image/image.h"
#include "lib/lib.h"
#include "version.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options that come before the command (DESIGN §7). */
struct globals {
	const char *config_dir;     /* -c DIR */
	const char *socket;         /* -s SOCKET */
	bool json;                  /* -o json */
	struct ctl_remote remote;   /* -r HOST:PORT --cert --key --ca */
	const struct cli_command *cmd;  /* the command being run (its usage) */
};

static int cmd_help(struct globals *g, int argc, char **argv);
static int cmd_completion(struct globals *g, int argc, char **argv);
static int cmd_doc(struct globals *g, int argc, char **argv);

static int cmd_version(struct globals *g, int argc, char **argv)
{
	(void)argc, (void)argv;
	if (g->json) {
		printf("{\"version\":\"%s\",\"commit\":\"%s\",\"arch\":\"%s\","
		       "\"sqlite\":\"%s\",\"bearssl\":\"%s\"}\n",
		       BERTH_VERSION, BERTH_COMMIT, BERTH_ARCH, sqlite3_libversion(),
		       BERTH_BEARSSL_VERSION);
		return EXIT_OK;
	}
	printf("berth %s\n", BERTH_VERSION);
	printf("commit:  %s\n", BERTH_COMMIT);
	printf("arch:    %s\n", BERTH_ARCH);
	printf("sqlite:  %s\n", sqlite3_libversion());
	printf("bearssl: %s\n", BERTH_BEARSSL_VERSION);
	return EXIT_OK;
}

#define DEFAULT_SOCKET "/run/berth/berth.sock"

/* The whole of a file of at most 1 MiB, NUL-terminated; NULL if unreadable. */
static char *read_small_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *text = f ? malloc(CONFIG_FILE_MAX + 1) : NULL;

	*len = 0;
	if (text)
		*len = fread(text, 1, CONFIG_FILE_MAX, f);
	if (f)
		fclose(f);
	if (text)
		text[*len] = '\0';
	return text;
}

/* Blank every line of text outside [daemon] (keeping the line numbers), so
 * that an error elsewhere in berth.ini does not hide where run_dir is. */
static void keep_daemon_section(char *text)
{
	bool keep = false;

	for (char *line = text; *line; ) {
		char *end = line + strcspn(line, "\n"), *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {        /* a section: is it [daemon] (or [ daemon ])? */
			p += 1 + strspn(p + 1, " \t");
			keep = !strncmp(p, "daemon", 6);
			p += 6;
			keep = keep && p[strspn(p, " \t")] == ']';
		}
		if (!keep)
			memset(line, ' ', (size_t)(end - line));
		line = *end ? end + 1 : end;
	}
}

/* Where the daemon listens: -s, then $BERTH_SOCKET, then the run_dir of the
 * config (-c DIR, else /etc/berth when present), else the default. Only
 * berth.ini's [daemon] says where run_dir is: a broken container, policy or
 * network must not keep the user from talking to the daemon (to reload).
 * When [daemon] itself has errors the CLI tries the default socket, and says
 * so with the first error; an empty berth.ini means the default run_dir. */
static const char *socket_path(const struct globals *g, struct err *e)
{
	static char path[4096];
	const char *env = getenv("BERTH_SOCKET"), *dir = g->config_dir;
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	struct config_file ini;
	char *text;

	(void)e;
	if (g->socket)
		return g->socket;
	if (env && *env)
		return env;
	if (!dir)
		dir = config_default_dir();
	if (!dir)
		return DEFAULT_SOCKET;
	snprintf(path, sizeof(path), "%s/berth.ini", dir);
	ini.path = "berth.ini";
	ini.text = text = read_small_file(path, &ini.len);
	if (text) {
		keep_daemon_section(text);
		ini.len = strlen(text);
	}
	if (config_load_files(&ini, text ? 1 : 0, dir, NULL, &cfg, &errs) < 0) {
		fprintf(stderr, "berth: %s/%s; trying the default socket %s (see: berth config "
			"check -c %s)\n", dir, errs.n ? errs.v[0].msg : "berth.ini has errors",
			DEFAULT_SOCKET, dir);
		config_errors_free(&errs);
		free(text);
		return DEFAULT_SOCKET;
	}
	free(text);
	snprintf(path, sizeof(path), "%s/berth.sock", cfg->daemon.run_dir);
	config_free(cfg);
	return path;
}

/* A command the daemon runs: send it, print the body, or the error once. */
static int cmd_remote(struct globals *g, int argc, char **argv)
{
	struct buf body;
	struct err e = { 0 };
	int ret;

	const char *path = g->remote.host ? g->remote.host : socket_path(g, &e);

	if (!path) {
		cli_print_error(g->json, e.msg, NULL);
		return EXIT_FAIL;
	}
	buf_init(&body);
	ret = ctl_call(path, g->json, argc, argv, &body, &e);
	if (ret == 0) {
		fwrite(body.data ? body.data : "", 1, body.len, stdout);
	} else if (ret == 1 && !strncmp(e.msg, "usage: ", 7) && g->cmd) {
		/* the daemon judged the arguments (an older CLI, a form the table
		 * lets through): a usage error all the same, with its usage */
		buf_free(&body);
		return cli_usage_error(g->cmd, g->json, "the daemon refused these arguments");
	} else {
		cli_print_error(g->json, e.msg, &body);
	}
	buf_free(&body);
	return ret == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_daemon(struct globals *g, int argc, char **argv)
{
	struct daemon_opts o = { .config_dir = g->config_dir };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--foreground") || !strcmp(argv[i], "-f")) {
			o.foreground = true;
		} else if (!strcmp(argv[i], "--keep-network")) {
			o.keep_network = true;
		} else if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			o.config_dir = argv[++i];
		} else {
			fprintf(stderr, "berth daemon: unknown option '%s'\n"
				"usage: berth daemon [-c DIR] [--foreground] [--keep-network]\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	return daemon_main(&o);
}

static int cmd_net_entry(struct globals *g, int argc, char **argv)
{
	(void)g;
	return cmd_net(argc, argv);
}

static int cmd_tls_entry(struct globals *g, int argc, char **argv)
{
	(void)g;
	return cmd_tls(argc, argv);
}

static int cmd_config(struct globals *g, int argc, char **argv)
{
	return config_cmd(g->config_dir, g->json, argc, argv);
}

/* run, rm, start, stop, restart, kill, logs, exec (runtime/ctr/cmd_ctr.c) */
static int cmd_ctr_entry(struct globals *g, int argc, char **argv)
{
	struct err e = { 0 };
	const char *path = socket_path(g, &e);

	if (!path) {
		cli_print_error(g->json, e.msg, NULL);
		return EXIT_FAIL;
	}
	return cmd_ctr(path, g->json, argc, argv);
}

/* image pull|import (runtime/image/cmd_image.c: they follow the job they
 * start); ls, inspect, status, rm and prune are requests like any other. */
static int cmd_image_entry(struct globals *g, int argc, char **argv)
{
	struct err e = { 0 };
	const char *path;

	if (argc < 2) {
		fprintf(stderr, "usage: berth image pull REF | import FILE|DIR [--name REF] | ls | "
			"inspect REF | status REF|JOB | rm REF | prune [--all]\n");
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "pull") && strcmp(argv[1], "import"))
		return cmd_remote(g, argc, argv);
	path = g->remote.host ? g->remote.host : socket_path(g, &e);
	if (!path) {
		cli_print_error(g->json, e.msg, NULL);
		return EXIT_FAIL;
	}
	return cmd_image(path, g->json, argc, argv);
}

/* events, stats (runtime/cmd_events.c, cmd_stats.c): they follow */
static int cmd_follow_entry(struct globals *g, int argc, char **argv)
{
	struct err e = { 0 };
	const char *path = g->remote.host ? g->remote.host : socket_path(g, &e);

	if (!path) {
		cli_print_error(g->json, e.msg, NULL);
		return EXIT_FAIL;
	}
	if (!strcmp(argv[0], "stats"))
		return cmd_stats(path, g->json, argc, argv);
	return cmd_events(path, g->json, argc, argv);
}

static int cmd_monitor(struct globals *g, int argc, char **argv)
{
	(void)g;
	return ctr_monitor_main(argc, argv);
}

static int cmd_init(struct globals *g, int argc, char **argv)
{
	(void)g;
	return ctr_init_main(argc, argv);
}

/*
 * The commands: one row each, the single source of `berth help`, the usage
 * printed on bad input, berth(8) and the bash completion (runtime/cli.h says
 * how forms are written). Rows whose flags lack CLI_OWN_ARGS have their
 * arguments checked here, before anything is sent to the daemon.
 */
static const struct cli_command commands[] = {
	{ "status", FORMS(""), "the daemon's version, pid, uptime, config and socket",
	  "Asks the running daemon who it is: its version, pid, how long it has been up, the "
	  "configuration it runs and the socket it answers on.",
	  NULL, 0, cmd_remote },
	{ "ps", FORMS(""), "containers: state, networks, addresses",
	  "Lists the configured containers with their state, pid, restarts, networks and "
	  "addresses.",
	  NULL, 0, cmd_remote },
	{ "inspect", FORMS("NAME"), "everything about one container, as JSON",
	  "Prints everything berth knows about one container as one JSON document: its "
	  "configuration, state, addresses, ports and labels.",
	  NULL, 0, cmd_remote },
	{ "run", FORMS("NAME -- CMD [ARG...]"),
	  "create a container: write containers.d/NAME.ini and reload",
	  "Writes containers.d/NAME.ini from the options and reloads, as if the file had been "
	  "written by hand, then waits until the container runs; a name that exists is "
	  "refused. An invalid option gets the file:line message config check would give, and "
	  "leaves no file behind. Remove the container with berth rm.",
	  OPTS({ "--image", NULL, "REF", NULL, "the image to run (pulled when missing)", false },
	       { "--rootfs", NULL, "DIR", NULL, "a root directory to run instead of an image", false },
	       { "-p", "--publish", "SPEC", NULL, "publish a port: [HOST_IP:]HOST_PORT:PORT[/PROTO]",
		 true },
	       { "-l", "--label", "K=V", NULL, "a label (what policies select)", true },
	       { "--network", "--net", "NETWORK", NULL, "a network to attach to (default: default)",
		 true },
	       { "-e", "--env", "K=V", NULL, "an environment variable", true },
	       { "--restart", NULL, "always|on-failure|no", NULL, "the restart policy (default no)",
		 false },
	       { "--health", NULL, "SPEC", NULL, "a health check: tcp:PORT, http:PORT/PATH or "
		 "exec:CMD", false },
	       { "--health-interval", NULL, "DURATION", NULL, "between probes (default 10s)", false },
	       { "--health-timeout", NULL, "DURATION", NULL, "a probe's limit (default 5s)", false },
	       { "--health-retries", NULL, "N", NULL, "failures in a row that make it unhealthy "
		 "(default 3)", false },
	       { "--health-start-period", NULL, "DURATION", NULL, "failures that do not count "
		 "after a start (default 0)", false },
	       { "--on-unhealthy", NULL, "none|restart", NULL, "what an unhealthy container gets",
		 false },
	       { "-d", "--detach", NULL, NULL, "return once the file is applied, without waiting "
		 "for the container to run", false }),
	  CLI_OWN_ARGS, cmd_ctr_entry },
	{ "start", FORMS("NAME"), "start a stopped container",
	  "Starts a container that is stopped (by berth stop, or after it exited with restart "
	  "= no). Starting one that runs says so and exits 3.",
	  NULL, 0, cmd_ctr_entry },
	{ "stop", FORMS("NAME"), "stop a container (SIGTERM, SIGKILL after stop_timeout)",
	  "Sends the container SIGTERM, then SIGKILL after its stop_timeout, and waits until it "
	  "is gone. It stays stopped until berth start (or a restart of the daemon). Stopping a "
	  "container that is already stopped says so and exits 3.",
	  OPTS({ "-t", "--time", "SECONDS", NULL, "the grace before SIGKILL, instead of stop_timeout",
		 false }),
	  0, cmd_ctr_entry },
	{ "restart", FORMS("NAME"), "stop, then start a container",
	  "Stops the container as berth stop does, then starts it again.",
	  NULL, 0, cmd_ctr_entry },
	{ "kill", FORMS("NAME"), "send a container's process a signal",
	  "Sends a signal to the container's main process (SIGKILL unless -s says otherwise). "
	  "Its restart policy then applies, as for any exit.",
	  OPTS({ "-s", "--signal", "SIGNAL", NULL, "the signal, by name (TERM, SIGHUP) or number",
		 false }),
	  0, cmd_ctr_entry },
	{ "rm", FORMS("NAME"), "remove a container: its file, then reload",
	  "Removes containers.d/NAME.ini and reloads, which stops the container and releases its "
	  "addresses; if the reload fails the file is put back. A running container is refused "
	  "unless -f is given.",
	  OPTS({ "-f", "--force", NULL, NULL, "a running one too (killed with SIGKILL)", false }),
	  0, cmd_ctr_entry },
	{ "logs", FORMS("NAME"), "a container's stdout and stderr",
	  "Prints what the container wrote to stdout and stderr, kept in a size-capped log per "
	  "container. Options may come before or after the name.",
	  OPTS({ "-f", "--follow", NULL, NULL, "keep printing what it writes, until Ctrl-C", false },
	       { "--tail", "-n", "N", NULL, "only the last N lines", false }),
	  0, cmd_ctr_entry },
	{ "exec", FORMS("NAME [--] CMD [ARG...]"), "run a command inside a running container",
	  "Runs a command in the container's namespaces and root and exits with its status. "
	  "Its options come before NAME; what follows NAME is the command. With -it it gets a "
	  "pseudo-terminal, for a shell: berth exec -it web sh.",
	  OPTS({ "-i", "--interactive", NULL, NULL, "pass standard input on (else /dev/null)",
		 false },
	       { "-t", "--tty", NULL, NULL, "a pseudo-terminal (with -i: -it)", false }),
	  CLI_OWN_ARGS | CLI_RAW_ARGS, cmd_ctr_entry },
	{ "stats", FORMS("[NAME...]"), "CPU, memory and traffic per container",
	  "Shows each running container's CPU and memory use (from its cgroup, when it has one) "
	  "and the packets and bytes it sent and received, refreshed every second until Ctrl-C.",
	  OPTS({ "--no-stream", NULL, NULL, NULL, "print once and exit", false }),
	  0, cmd_follow_entry },
	{ "events", FORMS(""), "what happened: containers, reloads, ports, policies",
	  "Prints what happened, oldest first: containers created, started, died (with their "
	  "exit code), restarted and stopped; reloads applied or rejected (with their errors); "
	  "ports published and withdrawn; policies changed. The daemon keeps the most recent "
	  "events in its store.",
	  OPTS({ "-f", "--follow", NULL, NULL, "keep printing events as they happen", false },
	       { "--since", NULL, "TIME", NULL, "only events after TIME (RFC 3339, or an age: 10m)",
		 false },
	       { "--type", NULL, "TYPE", NULL, "only these kinds (a comma list): container, "
		 "network, reload, port, policy, image, cni, daemon, service", true }),
	  0, cmd_follow_entry },
	{ "port", FORMS("NAME [PORT[/PROTO]]"), "one container's published ports",
	  "Lists the ports one container publishes on the host, as berth ports does for all.",
	  NULL, 0, cmd_remote },
	{ "ports", FORMS(""), "published ports",
	  "Lists every published port: host address and port, container, its port and the "
	  "protocol.",
	  NULL, 0, cmd_remote },
	{ "network", FORMS("ls", "inspect NETWORK"), "networks: subnets, gateway, containers",
	  "ls lists the networks with their bridge, subnets and gateway; inspect shows one "
	  "with its containers and how many addresses are free.",
	  NULL, 0, cmd_remote },
	{ "service", FORMS("ls"), "services: virtual IPs, ports, ready backends",
	  "ls lists the services with their virtual IPs, ports (PORT:TARGET/PROTO when the "
	  "backends listen on another port), how many ready backends each has and how it "
	  "balances between them.",
	  NULL, 0, cmd_remote },
	{ "ip", FORMS("ls"), "address allocations",
	  "Lists every address berth has allocated: network, address and owner.",
	  NULL, 0, cmd_remote },
	{ "dns", FORMS("ls", "query NAME"), "the names berth answers for",
	  "ls lists every name berth's DNS server answers for; query shows the records of one "
	  "name (NAME, NAME.DOMAIN or SERVICE.DOMAIN), as a container would get them.",
	  NULL, 0, cmd_remote },
	{ "policy", FORMS("ls", "why SRC DST PORT[/PROTO]"),
	  "policies; which rule allows or denies",
	  "ls lists the policies with the containers each selects. why judges one connection on "
	  "the rules the kernel was given and says which rule allows or denies it, and why: SRC "
	  "and DST are container names or addresses (or world, host), PORT/PROTO as in 80/tcp.",
	  NULL, 0, cmd_remote },
	{ "reload", FORMS(""), "apply the configuration again (all or nothing)",
	  "Reads the configuration again and applies the differences: all of it, or, on any "
	  "error, nothing (the running configuration stays, and the errors are printed). "
	  "SIGHUP does the same.",
	  OPTS({ "--dry-run", NULL, NULL, NULL, "say what would change, change nothing", false },
	       { "--wait", NULL, NULL, NULL, "return when the containers it stops are gone", false }),
	  0, cmd_remote },
	{ "image", FORMS("pull REF", "import FILE|DIR", "ls", "inspect REF", "status REF|JOB",
		     "rm REF", "prune"),
	  "images: fetch from a registry, import an archive, list, remove",
	  "pull fetches an image from an OCI registry and import reads an OCI or docker save "
	  "archive (or directory), both following the job until it is done; ls lists the "
	  "images, inspect shows one, status a pull or import in progress; rm removes an image "
	  "(refused while a container uses it) and prune the images newer pulls replaced.",
	  OPTS({ "--name", NULL, "REF", "import", "the name to give the imported image", false },
	       { "--all", NULL, NULL, "prune", "every image no container uses", false }),
	  0, cmd_image_entry },
	{ "metrics", FORMS(""), "Prometheus text format",
	  "Prints the daemon's metrics in the Prometheus text format.",
	  NULL, 0, cmd_remote },
	{ "config", FORMS("check", "keys"),
	  "validate the configuration without applying it; list its keys",
	  "check loads the configuration as a reload would and prints each error with its "
	  "file:line, or a summary when it is fine; it exits 1 on errors. keys lists every key "
	  "of every section with its type, default and meaning (berth.ini(5) is made from the "
	  "same tables).",
	  OPTS({ "-c", NULL, "DIR", "check", "the configuration directory to check", false }),
	  0, cmd_config },
	{ "daemon", FORMS(""), "run the daemon",
	  "Runs the daemon: applies the configuration (-c DIR, else /etc/berth, else the "
	  "embedded default), runs its containers and answers on the control socket until "
	  "SIGTERM; SIGHUP reloads.",
	  OPTS({ "-c", NULL, "DIR", NULL, "the configuration directory", false },
	       { "-f", "--foreground", NULL, NULL, "stay in the foreground (for init systems)", false },
	       { "--keep-network", NULL, NULL, NULL, "leave berth's nf_tables table when stopping",
		 false }),
	  CLI_RAW_ARGS, cmd_daemon },
	{ "net", FORMS("attach NAME", "check NAME", "unplug NAME", "detach NAME",
		       "bridge-delete BR"),
	  "a container network by hand (tests, debugging)",
	  "Sets up, checks and removes a container's network without the daemon. attach creates "
	  "the netns (under --state-dir DIR, or joins --netns PATH, a namespace someone else "
	  "owns), a veth pair with its host end on --bridge BR (created with the --gateway "
	  "addresses when missing) and the container end as --ifname with the --ip addresses; "
	  "check prints nothing and exits 0 when all of that is in place, else the first "
	  "problem; unplug removes the host end of an attachment made with --netns; detach "
	  "removes the netns; bridge-delete removes a bridge.",
	  OPTS({ "--state-dir", NULL, "DIR", NULL, "where the netns files live", false },
	       { "--netns", NULL, "PATH", NULL, "a namespace someone else owns", false },
	       { "--bridge", NULL, "BR", NULL, "the bridge", false },
	       { "--gateway", NULL, "A/LEN", NULL, "the bridge's address (one per family)", true },
	       { "--ip", NULL, "A/LEN", NULL, "the container's address (one per family)", true },
	       { "--ifname", NULL, "NAME", NULL, "the container's interface (default eth0)",
		 false },
	       { "--mtu", NULL, "N", NULL, "the MTU (default 1500)", false },
	       { "--mac", NULL, "MAC", NULL, "the container interface's MAC address", false },
	       { "--show", NULL, NULL, "attach", "print 'mac MAC host HOSTIF HOSTMAC bridge BRMAC'",
		 false }),
	  CLI_OWN_ARGS, cmd_net_entry },
	{ "tls", FORMS("init DIR", "client DIR NAME", "spki CERT"),
	  "certificates for remote management",
	  "init makes a CA, a server and a client certificate in DIR for [remote]; client makes "
	  "another client certificate from DIR's CA; spki prints the key hash that [remote] "
	  "read_only takes.",
	  OPTS({ "--name", NULL, "NAME", "init", "the server's name", false },
	       { "--ip", NULL, "ADDR", "init", "an address of the server", true },
	       { "--dns", NULL, "NAME", "init", "a DNS name of the server", true }),
	  CLI_OWN_ARGS, cmd_tls_entry },
	{ "version", FORMS(""), "print version, commit, architecture and library versions",
	  "Prints berth's version, the commit it was built from, its architecture and the "
	  "versions of SQLite and BearSSL inside it.",
	  NULL, 0, cmd_version },
	{ "completion", FORMS("bash"), "the bash completion script",
	  "Prints the bash completion script: commands, options, container and network names. "
	  "Load it with: . <(berth completion bash)",
	  NULL, 0, cmd_completion },
	{ "help", FORMS("[COMMAND]"), "the commands, or one command's usage and options",
	  "Lists the commands, or shows one command's usage, options and what it does (as "
	  "berth COMMAND --help does).",
	  NULL, 0, cmd_help },
	/* internal */
	{ "monitor", NULL, NULL, NULL, NULL, CLI_INTERNAL | CLI_OWN_ARGS | CLI_RAW_ARGS,
	  cmd_monitor },        /* started by the daemon */
	{ "init", NULL, NULL, NULL, NULL, CLI_INTERNAL | CLI_OWN_ARGS | CLI_RAW_ARGS,
	  cmd_init },           /* a container's PID 1 */
	{ "doc", FORMS("man8", "man5"), NULL, NULL, NULL, CLI_INTERNAL, cmd_doc },
	                        /* the build: berth(8), berth.ini(5) */
};

static int cmd_help(struct globals *g, int argc, char **argv)
{
	const struct cli_command *c;

	(void)g;
	if (argc < 2) {
		cli_overview(stdout, commands, ARRAY_SIZE(commands));
		return EXIT_OK;
	}
	c = cli_find(commands, ARRAY_SIZE(commands), argv[1]);
	if (!c || (c->flags & CLI_INTERNAL)) {
		fprintf(stderr, "berth help: unknown command '%s'\n", argv[1]);
		cli_names(stderr, commands, ARRAY_SIZE(commands));
		return EXIT_USAGE;
	}
	cli_help(stdout, c);
	return EXIT_OK;
}

static int cmd_completion(struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	cli_bash_completion(stdout, commands, ARRAY_SIZE(commands));
	return EXIT_OK;
}

static int cmd_doc(struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc;
	if (!strcmp(argv[1], "man8"))
		cli_man_berth(stdout, commands, ARRAY_SIZE(commands), BERTH_VERSION);
	else
		cli_man_config(stdout, BERTH_VERSION);
	return fflush(stdout) ? EXIT_FAIL : EXIT_OK;
}

/* Strip "-o json" anywhere after the command too, as DESIGN §7 allows (up to
 * "--": what follows is a command's, as in run NAME -- CMD). */
static int strip_output_option(struct globals *g, int *argc, char **argv)
{
	int j = 0, i;

	for (i = 0; i < *argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < *argc) {
			if (strcmp(argv[i + 1], "json") != 0) {
				fprintf(stderr, "berth: -o takes 'json', not '%s'\n", argv[i + 1]);
				return -1;
			}
			g->json = true;
			i++;
			continue;
		}
		argv[j++] = argv[i];
	}
	while (i < *argc)
		argv[j++] = argv[i++];
	*argc = j;
	return 0;
}

/* An unknown command: what there is, not the whole manual. */
static int unknown_command(const char *name)
{
	fprintf(stderr, "berth: unknown command '%s'\n", name);
	cli_names(stderr, commands, ARRAY_SIZE(commands));
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;
	struct globals g = { 0 };
	char why[256];
	int i;

	/* Started by a container runtime as a CNI plugin: nothing else applies. */
	if (getenv("CNI_COMMAND"))
		return cni_plugin_main();
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];

		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			cli_overview(stdout, commands, ARRAY_SIZE(commands));
			return EXIT_OK;
		}
		if (!strcmp(opt, "--version"))
			return cmd_version(&g, 1, argv);
		if (i + 1 >= argc) {
			fprintf(stderr, "berth: option %s needs a value\n", opt);
			return EXIT_USAGE;
		}
		if (!strcmp(opt, "-c")) {
			g.config_dir = argv[++i];
		} else if (!strcmp(opt, "-s")) {
			g.socket = argv[++i];
		} else if (!strcmp(opt, "-r")) {
			g.remote.host = argv[++i];
		} else if (!strcmp(opt, "--cert")) {
			g.remote.cert = argv[++i];
		} else if (!strcmp(opt, "--key")) {
			g.remote.key = argv[++i];
		} else if (!strcmp(opt, "--ca")) {
			g.remote.ca = argv[++i];
		} else if (!strcmp(opt, "-o")) {
			if (strcmp(argv[++i], "json") != 0) {
				fprintf(stderr, "berth: -o takes 'json', not '%s'\n", argv[i]);
				return EXIT_USAGE;
			}
			g.json = true;
		} else {
			fprintf(stderr, "berth: unknown option '%s'\n", opt);
			fprintf(stderr, "usage: berth [-c DIR] [-s SOCKET] [-o json] [-r HOST:PORT "
				"--cert C --key K --ca CA] COMMAND [ARGS...]\n"
				"see: berth help\n");
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		cli_overview(stderr, commands, ARRAY_SIZE(commands));
		return EXIT_USAGE;
	}
	if (g.remote.host || g.remote.cert || g.remote.key || g.remote.ca) {
		if (!g.remote.host || !g.remote.cert || !g.remote.key || !g.remote.ca) {
			fprintf(stderr, "berth: remote management needs all of -r HOST:PORT, --cert, "
				"--key and --ca\n");
			return EXIT_USAGE;
		}
		ctl_use_remote(&g.remote);  /* every daemon command goes over TLS */
	}
	argc -= i;
	argv += i;
	cmd = cli_find(commands, ARRAY_SIZE(commands), argv[0]);
	if (!cmd)
		return unknown_command(argv[0]);
	if (!(cmd->flags & CLI_RAW_ARGS) && strip_output_option(&g, &argc, argv) < 0)
		return EXIT_USAGE;
	if (!(cmd->flags & CLI_INTERNAL) && cli_help_asked(cmd, argc, argv)) {
		cli_help(stdout, cmd);
		return EXIT_OK;
	}
	if (!(cmd->flags & CLI_OWN_ARGS) && cli_check_args(cmd, argc, argv, why, sizeof(why)) < 0)
		return cli_usage_error(cmd, g.json, why);
	g.cmd = cmd;
	return cmd->run(&g, argc, argv);
}
