/* ipam.c - benchmark: store/ IPAM allocations/s and releases/s for a /24, a
 * /16 and an IPv6 /64, with and without an fsync per commit. Prints a table
 * and, for tests/bench/ipam.sh, "RESULT case mode n alloc_per_s release_per_s"
 * lines. Usage: ipam DIR (an empty scratch directory). */
#include "store/store.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE 10000
#define CHURN 1000

struct bench_case {
	const char *name, *subnet;
	int af;
	int n;                      /* live allocations: LIVE, or as many as fit */
};

static const struct bench_case cases[] = {
	{ "/24", "10.60.0.0/24", AF_INET, 253 },
	{ "/16", "10.61.0.0/16", AF_INET, LIVE },
	{ "v6/64", "fd61::/64", AF_INET6, LIVE },
};

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[(int)(p * (n - 1))];
}

static int run(const char *dir, const struct bench_case *c, bool fsync_on)
{
	static double lat[LIVE];
	static char names[LIVE][16];    /* the live owners */
	struct store_network net = { .name = "bench" };
	struct store_pool *pool = c->af == AF_INET ? &net.v4 : &net.v6;
	char path[600];
	struct ip_addr got;
	struct store *s;
	struct err e;
	double t0, fill, churn = 0, rel, p50, p99;

	snprintf(path, sizeof(path), "%s/%s-%s", dir, c->name[0] == '/' ? c->name + 1 : c->name,
		 fsync_on ? "full" : "normal");
	if (store_open(&s, path, &e) < 0 || ip_prefix_parse(c->subnet, &pool->subnet, &e) < 0 ||
	    store_network_put(s, &net, &e) < 0)
		goto fail;
	store_ipam_fsync(s, fsync_on);

	/* Fill to n live allocations, one transaction each. */
	t0 = now_us();
	for (int i = 0; i < c->n; i++) {
		double t = now_us();
		snprintf(names[i], sizeof(names[i]), "c%d", i);
		if (ipam_allocate(s, "bench", c->af, names[i], NULL, &got, &e) < 0)
			goto fail;
		lat[i] = now_us() - t;
	}
	fill = now_us() - t0;
	p50 = pct(lat, c->n, 0.50);
	p99 = pct(lat, c->n, 0.99);

	/* At n live: release one, allocate a new owner (the walk wraps round
	 * the full /24 here: its worst case). */
	for (int i = 0; i < CHURN; i++) {
		char *o = names[i % c->n];
		if (ipam_release(s, "bench", o, &e) < 0)
			goto fail;
		snprintf(o, sizeof(names[0]), "n%d", i);
		double t = now_us();
		if (ipam_allocate(s, "bench", c->af, o, NULL, &got, &e) < 0)
			goto fail;
		churn += now_us() - t;
	}

	/* Release everything. */
	t0 = now_us();
	for (int i = 0; i < c->n; i++) {
		if (ipam_release(s, "bench", names[i], &e) != 1)
			goto fail;
	}
	rel = now_us() - t0;
	store_close(s);

	printf("  %-6s %-7s %6d %10.0f %8.1f %8.1f %14.0f %10.0f\n", c->name,
	       fsync_on ? "fsync" : "no-sync", c->n, c->n / fill * 1e6, p50, p99,
	       CHURN / churn * 1e6, c->n / rel * 1e6);
	printf("RESULT %s %s %d %.1f %.1f\n", c->name, fsync_on ? "full" : "normal", c->n,
	       c->n / fill * 1e6, c->n / rel * 1e6);
	return 0;
fail:
	fprintf(stderr, "ipam bench %s: %s\n", c->name, e.msg);
	store_close(s);
	return 1;
}

int main(int argc, char **argv)
{
	int ret = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
		return 2;
	}
	printf("berth IPAM (store/, one SQLite transaction per call)\n");
	printf("  fsync: synchronous=FULL, every commit survives power loss (the default)\n");
	printf("  no-sync: synchronous=NORMAL, every commit survives kill -9 (host-local's guarantee)\n");
	printf("  %-6s %-7s %6s %10s %8s %8s %14s %10s\n", "range", "commit", "live", "alloc/s",
	       "p50 us", "p99 us", "alloc/s@live", "release/s");
	for (int sync = 1; sync >= 0; sync--)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			ret |= run(argv[1], &cases[i], sync);
	return ret;
}
