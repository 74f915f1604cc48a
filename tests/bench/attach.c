/* attach.c - benchmark: time to attach/detach one container network, berth vs the CNI bridge plugin.
 *
 *   attach berth N STATE_DIR [v4] [warm]   N containers on one bridge through net.h;
 *                                   warm: from a spare made ready (untimed) by net_prepare
 *   attach cni N DATA_DIR           the same through /usr/lib/cni/bridge + host-local
 *
 * Prints one line: "<who> N=<n> attach p50 <ms> p99 <ms> detach p50 <ms> p99 <ms>".
 * Run it inside a throwaway `unshare --net --mount` (tests/bench/attach.sh). */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;


static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[i < n ? i : n - 1];
}

static void report(const char *who, int n, double *att, double *det)
{
	printf("%-12s N=%-5d attach p50 %7.3f ms  p99 %7.3f ms   detach p50 %7.3f ms  p99 %7.3f ms\n",
	       who, n, pct(att, n, 0.5), pct(att, n, 0.99), pct(det, n, 0.5), pct(det, n, 0.99));
}

static void die(const char *what, const struct err *e)
{
	fprintf(stderr, "attach: %s: %s\n", what, e ? e->msg : strerror(errno));
	exit(1);
}

/* Wait (up to 5 s) until the kernel has destroyed the pairs of detached
 * containers, so that one round does not bill its clean-up to the next. */
static void wait_gone(const char *ifname)
{
	for (int i = 0; i < 500 && if_nametoindex(ifname); i++)
		usleep(10000);
}

static int bench_berth(int n, const char *dir, bool v6, bool warm)
{
	struct net_bridge b = { .name = "bench0", .n_gw = v6 ? 2 : 1 };
	struct err e = { 0 };
	struct net *net;
	double *att = calloc((size_t)n, sizeof(double)), *det = calloc((size_t)n, sizeof(double));
	double *tmp = calloc((size_t)n, sizeof(double));
	char name[32], host[16];

	ip_parse("10.88.0.1", &b.gw[0].addr, NULL);
	b.gw[0].plen = 16;
	ip_parse("fd88::1", &b.gw[1].addr, NULL);
	b.gw[1].plen = 64;
	if (!att || !det || !tmp || net_open(&net, dir, &e) < 0 || net_bridge_ensure(net, &b, &e) < 0)
		die("set up", &e);
	/* A bridge lives long; a new one floods multicast to all ports until
	 * its querier is trusted (1 s, net.c), so start measuring after that. */
	usleep(1100 * 1000);
	for (int i = 0; i < n; i++) {
		struct net_attach a = { .container = name, .bridge = "bench0",
					.n_addr = v6 ? 2 : 1, .n_gw = v6 ? 2 : 1 };
		double t0;

		/* Warm: the daemon keeps a spare ready when idle (untimed). */
		if (warm && net_prepare(net, "bench0", 1, &e) < 0)
			die("prepare", &e);
		snprintf(name, sizeof(name), "c%d", i);
		ip_from_v4(&a.addr[0].addr, 0x0a580000u + 2 + (uint32_t)i);
		a.addr[0].plen = 16;
		ip_parse("fd88::", &a.addr[1].addr, NULL);
		ip_add(&a.addr[1].addr, 2 + (uint64_t)i);
		a.addr[1].plen = 64;
		a.gw[0] = b.gw[0].addr;
		a.gw[1] = b.gw[1].addr;
		t0 = now_ms();
		if (net_attach(net, &a, &e) < 0)
			die("attach", &e);
		att[i] = now_ms() - t0;
	}
	for (int i = 0; i < n; i++) {
		double t0;

		snprintf(name, sizeof(name), "c%d", i);
		t0 = now_ms();
		if (net_detach(net, name, &e) < 0)
			die("detach", &e);
		det[i] = now_ms() - t0;
	}
	snprintf(name, sizeof(name), "c%d", n - 1);
	net_ifname_host(name, "eth0", host, NULL);
	wait_gone(host);
	/* Does one attach cost more when N are already there? Compare the
	 * first and the last tenth (before report() sorts att). */
	double first = n >= 100 ? pct(memcpy(tmp, att, sizeof(double) * (size_t)(n / 10)), n / 10, 0.5) : 0;
	double last = n >= 100 ? pct(memcpy(tmp, att + n - n / 10, sizeof(double) * (size_t)(n / 10)),
				     n / 10, 0.5) : 0;
	report(warm ? (v6 ? "warm v4+v6" : "warm v4") : (v6 ? "berth v4+v6" : "berth v4"), n,
	       att, det);
	if (n >= 100)
		printf("%-12s N=%-5d attach p50 of the first %d: %.3f ms, of the last %d: %.3f ms\n",
		       "  growth", n, n / 10, first, n / 10, last);
	net_close(net);
	free(att);
	free(det);
	free(tmp);
	return 0;
}

/* Run argv with env and stdin; return the wall time in ms, or -1. */
static double run_timed(char **argv, char **env, const char *in, bool timed)
{
	posix_spawn_file_actions_t fa;
	int p[2], st;
	pid_t pid;
	double t0;

	if (pipe(p) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	posix_spawn_file_actions_addclose(&fa, p[1]);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	t0 = now_ms();
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, env ? env : environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(p[0]);
	if (in && write(p[1], in, strlen(in)) < 0)
		perror("write config");
	close(p[1]);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "attach: %s %s failed\n", argv[0], timed ? "(timed)" : "");
		return -1;
	}
	return now_ms() - t0;
}

static int bench_cni(int n, const char *dir)
{
	double *att = calloc((size_t)n, sizeof(double)), *det = calloc((size_t)n, sizeof(double));
	char conf[1024], ns[64], nspath[96], id[64], e_cmd[32], e_id[96], e_ns[128];
	char *plugin[] = { "/usr/lib/cni/bridge", NULL };
	char *env[] = { e_cmd, e_id, e_ns, "CNI_IFNAME=eth0", "CNI_PATH=/usr/lib/cni",
			"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

	if (!att || !det)
		return 1;
	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"bridge\","
		 "\"bridge\":\"cni0\",\"isGateway\":true,\"ipMasq\":false,"
		 "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"%s\","
		 "\"ranges\":[[{\"subnet\":\"10.89.0.0/16\"}]],"
		 "\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}}", dir);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			char *add[] = { "/usr/sbin/ip", "netns", pass ? "del" : "add", ns, NULL };

			snprintf(ns, sizeof(ns), "cni%d", i);
			snprintf(nspath, sizeof(nspath), "/run/netns/%s", ns);
			snprintf(id, sizeof(id), "bench%d", i);
			snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", pass ? "DEL" : "ADD");
			snprintf(e_id, sizeof(e_id), "CNI_CONTAINERID=%s", id);
			snprintf(e_ns, sizeof(e_ns), "CNI_NETNS=%s", nspath);
			/* The runtime makes the netns (untimed), the plugin attaches it. */
			if (!pass && run_timed(add, NULL, NULL, false) < 0)
				return 1;
			(pass ? det : att)[i] = run_timed(plugin, env, conf, true);
			if ((pass ? det : att)[i] < 0)
				return 1;
			if (pass && run_timed(add, NULL, NULL, false) < 0)
				return 1;
		}
	}
	report("cni bridge", n, att, det);
	free(att);
	free(det);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 0;

	if (argc < 4 || n <= 0) {
		fprintf(stderr, "usage: attach berth N STATE_DIR [v4] [warm] | attach cni N DATA_DIR\n");
		return 2;
	}
	if (!strcmp(argv[1], "berth")) {
		bool v4only = false, warm = false;

		for (int i = 4; i < argc; i++) {
			v4only |= !strcmp(argv[i], "v4");
			warm |= !strcmp(argv[i], "warm");
		}
		return bench_berth(n, argv[3], !v4only, warm);
	}
	if (!strcmp(argv[1], "cni"))
		return bench_cni(n, argv[3]);
	fprintf(stderr, "attach: unknown mode '%s'\n", argv[1]);
	return 2;
}
