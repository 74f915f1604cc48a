/* main.c - berth's entry point: global options, then one command. */
#include "runtime/runtime.h"
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
};

struct command {
	const char *name;
	const char *args;
	const char *summary;
	int (*run)(struct globals *g, int argc, char **argv);
};

static int cmd_help(struct globals *g, int argc, char **argv);

static int cmd_version(struct globals *g, int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: berth version\n");
		return EXIT_USAGE;
	}
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

/* Where the daemon listens: -s, then $BERTH_SOCKET, then the run_dir of the
 * config (-c DIR, else /etc/berth when present), else the default. */
static const char *socket_path(const struct globals *g, struct err *e)
{
	static char path[4096];
	const char *env = getenv("BERTH_SOCKET"), *dir = g->config_dir;
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	struct config_file ini;
	char *text;

	if (g->socket)
		return g->socket;
	if (env && *env)
		return env;
	if (!dir)
		dir = config_default_dir();
	if (!dir)
		return DEFAULT_SOCKET;
	/* Only berth.ini says where run_dir is: a broken container or policy
	 * file must not keep the user from talking to the daemon (to reload). */
	snprintf(path, sizeof(path), "%s/berth.ini", dir);
	ini.path = "berth.ini";
	ini.text = text = read_small_file(path, &ini.len);
	if (config_load_files(&ini, text ? 1 : 0, dir, NULL, &cfg, &errs) < 0) {
		err_set(e, EINVAL, "cannot find the daemon's socket: %s/berth.ini has errors "
			"(see: berth config check -c %s)", dir, dir);
		config_errors_free(&errs);
		free(text);
		return NULL;
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
		fprintf(stderr, "berth: %s\n", e.msg);
		return EXIT_FAIL;
	}
	buf_init(&body);
	ret = ctl_call(path, g->json, argc, argv, &body, &e);
	if (ret == 0) {
		fwrite(body.data ? body.data : "", 1, body.len, stdout);
	} else {
		fprintf(stderr, "berth: %s\n", e.msg);
		fwrite(body.data ? body.data : "", 1, body.len, stderr);
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

/* start, stop, restart, logs, exec (runtime/ctr/cmd_ctr.c) */
static int cmd_ctr_entry(struct globals *g, int argc, char **argv)
{
	struct err e = { 0 };
	const char *path = socket_path(g, &e);

	if (!path) {
		fprintf(stderr, "berth: %s\n", e.msg);
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
		fprintf(stderr, "berth: %s\n", e.msg);
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
		fprintf(stderr, "berth: %s\n", e.msg);
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

static const struct command commands[] = {
	{ "config", "check [-c DIR] | keys", "validate the configuration without applying it; list its keys", cmd_config },
	{ "net", "attach|detach NAME ...", "a container network by hand (also bridge-delete BR)",
	  cmd_net_entry },
	{ "daemon", "[-c DIR] [--foreground] [--keep-network]", "run the daemon", cmd_daemon },
	{ "status", "", "the daemon's version, pid, uptime, config and socket", cmd_remote },
	{ "ps", "", "containers: state, networks, addresses", cmd_remote },
	{ "inspect", "NAME", "everything about one container, as JSON", cmd_remote },
	{ "start", "NAME", "start a stopped container", cmd_ctr_entry },
	{ "stop", "NAME", "stop a container (SIGTERM, SIGKILL after stop_timeout)", cmd_ctr_entry },
	{ "restart", "NAME", "stop, then start a container", cmd_ctr_entry },
	{ "logs", "NAME [-f] [--tail N]", "a container's stdout and stderr", cmd_ctr_entry },
	{ "exec", "NAME -- CMD [ARG...]", "run a command inside a running container", cmd_ctr_entry },
	{ "image", "pull REF | import FILE|DIR [--name REF] | ls | inspect REF | rm REF | prune [--all]",
	  "images: fetch from a registry, import an archive, list, remove", cmd_image_entry },
	{ "ip", "ls", "address allocations", cmd_remote },
	{ "ports", "", "published ports", cmd_remote },
	{ "port", "NAME", "a container's published ports (80/tcp -> 0.0.0.0:8080)", cmd_remote },
	{ "network", "ls | inspect NAME", "networks: subnets, gateway, bridge, containers, free addresses",
	  cmd_remote },
	{ "events", "[-f] [--since T] [--type T]", "what happened (containers, reloads, ports, ...)",
	  cmd_follow_entry },
	{ "stats", "[--no-stream] [NAME...]", "containers' CPU, memory and traffic", cmd_follow_entry },
	{ "dns", "ls | query NAME", "the names berth answers for", cmd_remote },
	{ "policy", "ls | why SRC DST PORT/PROTO", "policies; which rule allows or denies", cmd_remote },
	{ "reload", "[--dry-run] [--wait]", "apply the configuration again (all or nothing; --wait: "
	  "until the containers it stops are gone)", cmd_remote },
	{ "metrics", "", "Prometheus text format", cmd_remote },
	{ "tls", "init DIR --name N --ip A", "certificates for remote management (also: client, spki)",
	  cmd_tls_entry },
	{ "version", "", "print version, commit, architecture and library versions", cmd_version },
	{ "help", "", "list the commands", cmd_help },
	{ "monitor", NULL, NULL, cmd_monitor },     /* internal: started by the daemon */
	{ "init", NULL, NULL, cmd_init },           /* internal: a container's PID 1 */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: berth [-c DIR] [-s SOCKET] [-o json] [-r HOST:PORT --cert C --key K --ca CA]\n"
		"             COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].summary)    /* internal commands have none */
			fprintf(f, "  %-10s %-26s %s\n", commands[i].name, commands[i].args,
				commands[i].summary);
}

static int cmd_help(struct globals *g, int argc, char **argv)
{
	(void)g, (void)argc, (void)argv;
	usage(stdout);
	return EXIT_OK;
}

/* Strip "-o json" anywhere after the command too, as DESIGN §7 allows. */
static int strip_output_option(struct globals *g, int *argc, char **argv)
{
	int j = 0;

	for (int i = 0; i < *argc; i++) {
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
	*argc = j;
	return 0;
}

int main(int argc, char **argv)
{
	struct globals g = { 0 };
	int i;

	/* Started by a container runtime as a CNI plugin: nothing else applies. */
	if (getenv("CNI_COMMAND"))
		return cni_plugin_main();
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];

		if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
			usage(stdout);
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
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
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
	if (strcmp(argv[0], "daemon") != 0 && strcmp(argv[0], "exec") != 0 &&
	    strcmp(argv[0], "monitor") != 0 && strcmp(argv[0], "init") != 0 &&
	    strip_output_option(&g, &argc, argv) < 0)
		return EXIT_USAGE;
	for (size_t c = 0; c < ARRAY_SIZE(commands); c++)
		if (!strcmp(argv[0], commands[c].name))
			return commands[c].run(&g, argc, argv);
	fprintf(stderr, "berth: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return EXIT_USAGE;
}
