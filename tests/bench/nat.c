/* nat.c - benchmark: publishing ports through net/nat (one map element per
 * port on a long-lived nf_tables socket): the time of the 1st, 1,000th and
 * 10,000th publish, unpublish at 10,000, and replacing the whole table with
 * 10,000 ports in one batch (start-up). Run it inside a network namespace of
 * its own (tests/bench/nat.sh does: unshare --net). Prints a table and
 * "RESULT key value_us" lines for nat.sh. Usage: nat [N] */
#include "net/nat.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static double median(const double *v, int n)
{
	double w[100];

	memcpy(w, v, (size_t)n * sizeof(*v));
	qsort(w, (size_t)n, sizeof(*w), cmp_double);
	return w[n / 2];
}

static void port_of(struct nat_port *p, int i)
{
	memset(p, 0, sizeof(*p));
	p->host_port = (uint16_t)(10000 + i);
	p->container_port = 80;
	p->proto = IPPROTO_TCP;
	ip_from_v4(&p->addr4, 0x0a580000u + 2 + (uint32_t)i);     /* 10.88.0.2 + i */
	snprintf(p->owner, sizeof(p->owner), "c%d", i);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	double *lat = calloc((size_t)n + 1, sizeof(*lat)), t0, load, del, sum = 0;
	struct nat *t, *t2;
	struct nat_port p;
	struct err e = { 0 };

	if (!lat || n < 1000 || n > 50000) {
		fprintf(stderr, "usage: nat [N between 1000 and 50000]\n");
		return 2;
	}
	if (nat_open(&t, NULL, NULL, NULL, &e) < 0 || nat_sync(t, &e) < 0) {
		fprintf(stderr, "nat: %s\n", e.msg);
		return 1;
	}
	for (int i = 1; i <= n; i++) {
		port_of(&p, i);
		t0 = now_us();
		if (nat_port_add(t, &p, &e) < 0) {
			fprintf(stderr, "nat: publish %d: %s\n", i, e.msg);
			return 1;
		}
		lat[i] = now_us() - t0;
		sum += lat[i];
	}
	port_of(&p, n);
	t0 = now_us();
	if (nat_port_del(t, &p, &e) < 0) {
		fprintf(stderr, "nat: unpublish: %s\n", e.msg);
		return 1;
	}
	del = now_us() - t0;
	if (argc > 2 && !strcmp(argv[2], "keep")) {  /* leave the table to look at */
		nat_close(t, true);
		return 0;
	}
	nat_close(t, false);

	/* start-up: n ports known, one batch replaces the (empty) table */
	if (nat_open(&t2, NULL, NULL, NULL, &e) < 0) {
		fprintf(stderr, "nat: %s\n", e.msg);
		return 1;
	}
	for (int i = 1; i <= n; i++) {
		port_of(&p, i);
		nat_port_add(t2, &p, NULL);
	}
	t0 = now_us();
	if (nat_sync(t2, &e) < 0) {
		fprintf(stderr, "nat: load %d ports: %s\n", n, e.msg);
		return 1;
	}
	load = now_us() - t0;
	nat_close(t2, false);

	/* each mark: that publish, and the median of the 100 up to it (one
	 * sample alone is at the mercy of a scheduler hiccup) */
	printf("berth (net/nat, one nf_tables batch per publish on a long-lived socket)\n");
	printf("  %-28s %10s %14s\n", "operation", "time", "median of 100");
	for (int mark = 1; mark <= n; mark = mark == 1 ? 1000 : mark * 10) {
		int lo = mark > 100 ? mark - 99 : 1;
		double med = median(lat + lo, mark - lo + 1);

		printf("  publish port #%-13d %8.3f ms %11.3f ms\n", mark, lat[mark] / 1000, med / 1000);
		printf("RESULT publish_%d %.1f\n", mark, med);
	}
	printf("  %-28s %8.3f ms\n", "mean publish", sum / n / 1000);
	printf("  unpublish with %-12d %8.3f ms\n", n, del / 1000);
	printf("  load %d at start-up %6s %8.3f ms (one batch)\n", n, "", load / 1000);
	printf("RESULT mean %.1f\nRESULT unpublish %.1f\nRESULT load %.1f\n", sum / n, del, load);
	free(lat);
	return 0;
}
